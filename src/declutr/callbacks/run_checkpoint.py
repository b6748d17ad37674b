"""The run's checkpoints (best and ``last.ckpt``): Lightning's ``ModelCheckpoint`` for run folders that move and runs
that diverge."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lightning.pytorch.callbacks import ModelCheckpoint

log = logging.getLogger(__name__)

PATH_KEYS = ("best_model_path", "kth_best_model_path", "last_model_path")


class RunCheckpoint(ModelCheckpoint):
    """``ModelCheckpoint`` (same settings) that

    - writes no checkpoint while the latest step was non-finite (:class:`~declutr.model.module.DeCLUTRModule` skips
      such steps): ``last.ckpt`` and the best checkpoint keep the last state whose step was finite;
    - resumed in a run folder that was moved or copied, takes over the checkpoints it finds there under their
      recorded names. Lightning ignores the records of a checkpoint saved in another folder, and so would write
      ``last-v1.ckpt`` beside the resumed ``last.ckpt`` and keep a stale best checkpoint beside a new one.
    """

    def on_train_batch_end(self, trainer, pl_module, *args: Any, **kwargs: Any) -> None:
        if getattr(pl_module, "nonfinite_in_a_row", 0):
            log.warning("No checkpoint at step %d: its step was not finite (last.ckpt keeps the last good state).",
                        trainer.global_step)
            return
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and saved != self.dirpath and self._moved_here(state_dict.get("last_model_path")):
            state_dict = self._rebased(state_dict, saved)
        super().load_state_dict(state_dict)

    def _moved_here(self, path: str | None) -> bool:
        """Whether the folder was moved or copied here: its last checkpoint is in this run's checkpoint folder."""
        return bool(path) and (Path(self.dirpath) / Path(path).name).is_file()

    def _rebased(self, state_dict: dict[str, Any], saved: str) -> dict[str, Any]:
        """``state_dict`` with every checkpoint path under ``saved`` moved into this run's checkpoint folder."""
        def here(path: str) -> str:
            return str(Path(self.dirpath) / Path(path).relative_to(saved)) if path and path.startswith(saved) else path

        state = {**state_dict, "dirpath": self.dirpath}
        state.update({key: here(state_dict[key]) for key in PATH_KEYS if key in state_dict})
        state["best_k_models"] = {here(path): score for path, score in state_dict.get("best_k_models", {}).items()}
        return state
