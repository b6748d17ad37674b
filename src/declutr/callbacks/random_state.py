"""Training's random numbers (dropout, above all) saved in every checkpoint and put back on resume: a resumed run
draws what the uninterrupted run drew, so it computes the same losses and ends with the same weights."""

from __future__ import annotations

import random
import warnings

import lightning as L
import numpy as np
import torch

CHECKPOINT_KEY = "rng_states"  # a list: the state of each rank, by global rank


def collect() -> dict:
    """This process's generators: python's ``random``, numpy's global one, torch's CPU one and, once CUDA is in use,
    every CUDA device's. Held as tuples, lists and tensors, so a checkpoint stays loadable with ``weights_only``."""
    name, key, position, has_gauss, gauss = np.random.get_state()
    state = {"python": random.getstate(), "numpy": (name, key.tolist(), position, has_gauss, gauss),
             "torch": torch.get_rng_state()}
    if torch.cuda.is_initialized():  # (asking earlier would start CUDA in a run that never uses it)
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore(state: dict) -> None:
    """Sets this process's generators to ``state`` (from :func:`collect`)."""
    random.setstate(state["python"])
    name, key, position, has_gauss, gauss = state["numpy"]
    np.random.set_state((name, np.array(key, dtype=np.uint32), position, has_gauss, gauss))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        for device, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)


def every_rank(trainer: L.Trainer, state: dict) -> list[dict]:
    """Each rank's ``state``, by global rank. Only rank 0 writes the checkpoint, and every rank draws its own
    dropout masks; Lightning saves a checkpoint on every rank together, so the gather meets on all of them."""
    if trainer.world_size == 1:
        return [state]
    states: list = [None] * trainer.world_size
    torch.distributed.all_gather_object(states, state)
    return states


class RandomState(L.Callback):
    """Saves each rank's random generators (:func:`collect`) in every checkpoint, as they are when it is taken (after
    the step's optimizer update and whatever ran at that step's end, periodic evaluation included), and restores them
    right before the first step of a resumed run: after everything a resumed run does first and the uninterrupted run
    did not (seeding, building the module, evaluating it, loading the checkpoint, making the DataLoader's iterator,
    which draws its workers' base seed from torch's generator).

    A loader without persistent workers (``data.num_workers=0``) makes an iterator, so that draw, at every epoch
    start too: after a checkpoint taken at an epoch's last step, the resumed run would draw it once more than the
    uninterrupted run, or before the restore. So the generators as an epoch starts are also put back before its first
    step, keeping the draw out of training's random numbers in every run.

    DataLoader workers need nothing: they draw only from generators seeded by the documents and batches they read
    (``declutr.data.stream``, ``declutr.data.collate``).
    """

    def __init__(self) -> None:
        self._pending: dict | None = None  # the state to restore before the next step

    def on_save_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        # The generators the next step starts from: a state still to be restored, if one is (a checkpoint taken
        # before a resumed run's first step).
        state = self._pending if self._pending is not None else collect()
        checkpoint[CHECKPOINT_KEY] = every_rank(trainer, state)

    def on_load_checkpoint(self, trainer: L.Trainer, module: L.LightningModule, checkpoint: dict) -> None:
        states = checkpoint.get(CHECKPOINT_KEY) or []
        if trainer.global_rank < len(states):
            self._pending = states[trainer.global_rank]
        else:
            warnings.warn(f"The checkpoint holds no random state for rank {trainer.global_rank} (it was written "
                          "before they were saved, or by fewer ranks): from here on, dropout draws other numbers "
                          "than an uninterrupted run's.", stacklevel=2)

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if self._pending is None:  # a resumed run's first epoch keeps the checkpoint's
            self._pending = collect()

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        if self._pending is not None:
            restore(self._pending)
            self._pending = None
