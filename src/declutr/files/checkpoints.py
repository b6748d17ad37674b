"""Checkpoints written atomically and read back safely."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from lightning.pytorch.plugins.io import TorchCheckpointIO

from declutr.errors import DeclutrConfigError
from declutr.files.atomic import atomic_path


class AtomicCheckpointIO(TorchCheckpointIO):
    """``torch.save`` into a temporary file beside the target, flushed to disk, then renamed over it: a
    crash or a full disk mid-write leaves the previous checkpoint intact, never half of a new one."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as tmp, open(tmp, "wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents with ``weights_only=True`` (no code from the file runs), or a clear error
    naming the file when it is missing, truncated or not a checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise DeclutrConfigError(f"Checkpoint {path} not found: check ckpt_path (runs keep theirs in <run>/checkpoints/).")
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except Exception as err:  # a cut-short zip, random bytes, a pickle with code in it, ...
        raise DeclutrConfigError(
            f"Cannot read checkpoint {path} ({type(err).__name__}: {str(err)[:200]}): it is corrupt or cut short. "
            "Use an earlier checkpoint of the run (e.g. the best one, or last.ckpt)."
        ) from None
