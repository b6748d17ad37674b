"""How a run stops on SIGINT (Ctrl+C) and SIGTERM (schedulers, ``kill``): always as an interrupted run, never as a
finished one.

:class:`Interrupts` holds both signals for the whole run (:func:`declutr.runs.record.record_run` installs it).
Outside training a signal stops the run at once: nothing half-written is kept, since every file is written
atomically. During training (:class:`CheckpointOnInterrupt`) the first signal lets the current step finish; then
Lightning's SIGTERM path, which every rank agrees on, ends the loop and ``last.ckpt`` is saved. A second signal
stops at once, even mid-save (the previous ``last.ckpt`` stays intact). Either way the run ends with
:class:`~declutr.errors.DeclutrInterrupted`: recorded as ``interrupted`` in ``results.json``, nothing exported, exit
code 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import multiprocessing
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import lightning as L
from fsspec.core import url_to_fs
from lightning.pytorch.utilities.exceptions import SIGTERMException

from declutr.errors import DeclutrInterrupted

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupts:
    """SIGINT and SIGTERM handlers for one run (a context manager). ``trainer`` is set while training, when a first
    signal is deferred to the end of the step; ``step`` and ``checkpoint`` say where a stopped run can resume."""

    def __init__(self) -> None:
        self.received: str | None = None  # the first signal's name
        self.trainer: L.Trainer | None = None
        self.step: int | None = None
        self.checkpoint: str | None = None  # where last.ckpt goes (a path or an fsspec URL)
        self._previous: dict = {}

    def __enter__(self) -> Interrupts:
        if threading.current_thread() is threading.main_thread():  # Python runs signal handlers there only
            self._previous = {sig: signal.signal(sig, self._handle) for sig in SIGNALS}
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}
        if exc_type is DeclutrInterrupted:
            # DataLoader workers ignore SIGTERM (see declutr.data.datamodule), which is how Python's exit stops its
            # child processes: a stop that cut Lightning's teardown short would otherwise wait for them forever.
            for child in multiprocessing.active_children():
                child.kill()

    @contextmanager
    def ignored(self) -> Iterator[None]:
        """Signals ignored inside: the run's record is written whole however often Ctrl+C is pressed."""
        if not self._previous:
            yield
            return
        for sig in SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        try:
            yield
        finally:
            for sig in SIGNALS:
                signal.signal(sig, self._handle)

    def stopped(self, signal_name: str | None = None) -> DeclutrInterrupted:
        """The exception that ends the run, with the step reached and the checkpoint to resume from."""
        saved = self.checkpoint is not None and url_to_fs(self.checkpoint)[0].isfile(self.checkpoint)
        name = signal_name or self.received or "SIGTERM"
        return DeclutrInterrupted(name, self.step, self.checkpoint if saved else None)

    def _handle(self, signum, frame) -> None:
        name = signal.Signals(signum).name
        if self.trainer is None or self.received is not None:  # not training, or the second signal: stop now
            self.received = self.received or name
            raise self.stopped(name)
        self.received = name
        # Lightning checks this flag after every step, with every rank agreeing on it: Ctrl+C takes the same path.
        self.trainer._signal_connector.received_sigterm = True
        print(f"\n{name}: finishing step {self.trainer.global_step + 1}, then saving {self.checkpoint}. "
              f"Press Ctrl+C again to stop at once, without saving.", file=sys.stderr, flush=True)


class CheckpointOnInterrupt(L.Callback):
    """Defers a run's first SIGINT or SIGTERM to the end of the current step, then saves ``last.ckpt``; the run then
    stops with :meth:`stopped`. Resume with ``ckpt_path=<that file>``."""

    def __init__(self, interrupts: Interrupts) -> None:
        self.interrupts = interrupts

    def on_fit_start(self, trainer, module) -> None:
        folder = getattr(trainer.checkpoint_callback, "dirpath", None) or f"{trainer.default_root_dir}/checkpoints"
        self.interrupts.checkpoint = f"{str(folder).rstrip('/')}/last.ckpt"  # a string: the folder may be a URL
        self.interrupts.step = trainer.global_step
        self.interrupts.trainer = trainer

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        self.interrupts.step = trainer.global_step

    def on_exception(self, trainer, module, exception) -> None:
        self.interrupts.trainer = None  # from here on a signal stops at once
        if isinstance(exception, SIGTERMException):
            self._save(trainer)

    def on_fit_end(self, trainer, module) -> None:
        self.interrupts.trainer = None
        if self.interrupts.received:  # a signal during the last step: training ended, the run still stops
            self._save(trainer)

    def stopped(self) -> DeclutrInterrupted | None:
        """The interruption that ended training, or ``None`` if it ran to the end."""
        return self.interrupts.stopped() if self.interrupts.received else None

    def _save(self, trainer) -> None:
        self.interrupts.step = trainer.global_step
        try:
            trainer.save_checkpoint(self.interrupts.checkpoint)
        except DeclutrInterrupted:  # a second signal: the save is abandoned (atomic: the previous file stays)
            print(f"\nSave abandoned: {self.interrupts.checkpoint} is the one saved before, if any.", flush=True)
            return  # Lightning's teardown (DataLoader workers included) still runs, then the run stops
        print(f"\n{self.interrupts.received or 'SIGTERM'} at step {trainer.global_step}: saved "
              f"{self.interrupts.checkpoint}; resume with ckpt_path={self.interrupts.checkpoint}", flush=True)
