"""Save a resumable checkpoint when a run is stopped with SIGTERM (schedulers, ``kill``) or Ctrl+C."""

from __future__ import annotations

import signal
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException


class CheckpointOnInterrupt(L.Callback):
    """On SIGINT, finish the current step, save ``last.ckpt`` and stop; on SIGTERM (which Lightning turns
    into an exception after the current step) save it too. Resume with ``ckpt_path=<that file>``; a
    second Ctrl+C interrupts at once."""

    def __init__(self) -> None:
        self._interrupted = False
        self._previous_handler = None
        self.saved: Path | None = None

    def on_fit_start(self, trainer, module) -> None:
        if trainer.is_global_zero or trainer.world_size == 1:
            self._previous_handler = signal.signal(signal.SIGINT, self._on_sigint)

    def _on_sigint(self, signum, frame) -> None:
        self._interrupted = True
        signal.signal(signal.SIGINT, self._previous_handler or signal.default_int_handler)

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._interrupted:
            self._save(trainer, "SIGINT")
            trainer.should_stop = True

    def on_exception(self, trainer, module, exception) -> None:
        if isinstance(exception, SIGTERMException):
            self._save(trainer, "SIGTERM")

    def on_fit_end(self, trainer, module) -> None:
        if self._previous_handler is not None:
            signal.signal(signal.SIGINT, self._previous_handler)

    def _save(self, trainer, reason: str) -> None:
        folder = Path(getattr(trainer.checkpoint_callback, "dirpath", None) or Path(trainer.default_root_dir) / "checkpoints")
        self.saved = folder / "last.ckpt"
        trainer.save_checkpoint(self.saved)
        print(f"\n{reason} at step {trainer.global_step}: saved {self.saved}; resume with ckpt_path={self.saved}")
