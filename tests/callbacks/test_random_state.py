"""A resumed run draws the random numbers (dropout, python, numpy) an uninterrupted run draws: same losses, same
weights, bit for bit; each rank's generators are saved in the one checkpoint rank 0 writes."""

import random
from types import SimpleNamespace

import lightning as L
import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from lightning.pytorch.callbacks import ModelCheckpoint
from torch.utils.data import DataLoader, TensorDataset

from declutr.callbacks.random_state import RandomState, collect, every_rank, restore
from tests.helpers.distributed import free_port

STEPS, BATCHES = 10, 4  # 4 batches an epoch: epochs end at steps 4 and 8


class Dropout(L.LightningModule):
    """A small network with dropout that also draws from python's and numpy's generators at every step, on the
    same batch each step: what it computes depends on the weights and the random numbers only."""

    def __init__(self) -> None:
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.Dropout(0.5), torch.nn.Linear(16, 1))
        self.losses: dict[int, tuple[float, float]] = {}

    def training_step(self, batch, batch_idx):
        loss = self.net(batch[0]).pow(2).mean()
        self.losses[self.global_step + 1] = (loss.item(), random.random() + float(np.random.rand()))
        return loss

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def fit(module: Dropout, folder, callbacks: list, ckpt_path=None) -> Dropout:
    """Trains ``module`` to ``STEPS`` steps on a loader without workers (a new iterator, so a draw from torch's
    generator, each epoch), saving a checkpoint at every step."""
    saver = ModelCheckpoint(dirpath=folder, filename="{step}", every_n_train_steps=1, save_top_k=-1)
    trainer = L.Trainer(max_steps=STEPS, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[*callbacks, saver])
    loader = DataLoader(TensorDataset(torch.linspace(-1, 1, 8).expand(4 * BATCHES, 8)), batch_size=4)
    trainer.fit(module, loader, ckpt_path=ckpt_path, weights_only=True)
    return module


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    L.seed_everything(0)
    folder = tmp_path_factory.mktemp("uninterrupted")
    return fit(Dropout(), folder, [RandomState()]), folder


@pytest.mark.parametrize("step", [6, 4], ids=["mid-epoch", "end of an epoch"])
def test_a_resumed_run_computes_what_an_uninterrupted_run_computes(tmp_path, uninterrupted, step):
    reference, folder = uninterrupted
    torch.rand(3), random.random(), np.random.rand()  # whatever a new process draws before the resumed step
    resumed = fit(Dropout(), tmp_path, [RandomState()], ckpt_path=folder / f"step={step}.ckpt")
    assert resumed.losses == {s: v for s, v in reference.losses.items() if s > step}
    for name, weight in reference.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], weight), name


def test_without_the_callback_a_resumed_run_draws_other_numbers(tmp_path, uninterrupted):
    """The control: the losses above differ because of the random state alone."""
    reference, folder = uninterrupted
    resumed = fit(Dropout(), tmp_path, [], ckpt_path=folder / "step=6.ckpt")
    assert resumed.losses[7] != reference.losses[7]


def test_a_state_survives_a_weights_only_checkpoint_and_repeats_every_draw(tmp_path):
    state = collect()
    first = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2))
    torch.save({"rng_states": [state]}, tmp_path / "state.pt")
    restore(torch.load(tmp_path / "state.pt", weights_only=True)["rng_states"][0])
    again = (random.random(), np.random.rand(), np.random.randn(), torch.rand(2))
    assert first[:3] == again[:3] and torch.equal(first[3], again[3])


def test_a_checkpoint_without_random_states_warns_and_changes_nothing():
    callback = RandomState()
    with pytest.warns(UserWarning, match="no random state for rank 0"):
        callback.on_load_checkpoint(SimpleNamespace(global_rank=0), None, {})
    before = torch.get_rng_state()
    callback.on_train_batch_start(None, None, None, 0)
    assert torch.equal(torch.get_rng_state(), before)


def _gather(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    torch.manual_seed(rank)
    states = every_rank(SimpleNamespace(world_size=world), collect())
    if rank == 0:
        torch.save(states, out)
    dist.destroy_process_group()


@pytest.mark.slow
def test_each_rank_saves_its_own_state(tmp_path):
    out = str(tmp_path / "states.pt")
    mp.spawn(_gather, args=(2, free_port(), out), nprocs=2, join=True)
    states = torch.load(out, weights_only=True)
    for rank, state in enumerate(states):
        torch.manual_seed(rank)
        assert torch.equal(state["torch"], torch.get_rng_state())
