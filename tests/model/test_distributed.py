"""Two real processes (gloo, CPU) give the same loss and gradients as one process on the global batch, and
take the non-finite-step decision together."""

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from declutr.model.distributed import all_gather_with_grad, on_every_rank
from tests.helpers.distributed import free_port, global_batch, gradients, make_module, rows
from tests.helpers.model import assert_same_gradients


def _rank(rank: int, world: int, port: int, mlm_weight: float, split: list[int], grad_cache: int | None,
          out: str, scale_fix: bool = True) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    module, batch = make_module(mlm_weight, grad_cache, scale_fix), global_batch()
    bounds = [0, *np.cumsum(split)]
    loss, metrics = module.compute_loss(rows(batch, slice(bounds[rank], bounds[rank + 1])))
    loss.backward()
    grads = gradients(module)
    for grad in grads.values():  # what DDP does: average the gradients over ranks
        dist.all_reduce(grad)
        grad /= world
    if rank == 0:
        torch.save({"metrics": {k: v.detach() for k, v in metrics.items()}, "grads": grads}, out)
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("mlm_weight, split, grad_cache", [(1.0, [3, 3], None), (0.0, [3, 3], None),
                                                         (1.0, [4, 2], None), (1.0, [4, 2], 3)],
                         ids=["contrastive+mlm", "contrastive only", "uneven ranks", "grad cache"])
def test_two_processes_match_one_process_on_the_global_batch(tmp_path, mlm_weight, split, grad_cache):
    """With GradCache, each rank recomputes its own chunks; the reference is one process without it."""
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_rank, args=(2, free_port(), mlm_weight, split, grad_cache, out), nprocs=2, join=True)
    distributed = torch.load(out, weights_only=True)
    single = make_module(mlm_weight)
    loss, metrics = single.compute_loss(global_batch())
    loss.backward()
    for name, value in metrics.items():
        if name.startswith("train/padding"):
            continue  # each rank's own padding, not a global-batch value
        assert distributed["metrics"][name].item() == pytest.approx(value.item(), rel=1e-5), name
    assert_same_gradients(distributed["grads"], gradients(single), rel=1e-4, floor=1e-6)


@pytest.mark.slow
def test_without_scale_fix_the_contrastive_gradient_is_one_over_the_world_size(tmp_path):
    """model.scale_fix=false reproduces the paper's multi-GPU runs: the same loss, half the gradient on 2 ranks."""
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_rank, args=(2, free_port(), 0.0, [3, 3], None, out, False), nprocs=2, join=True)
    distributed = torch.load(out, weights_only=True)
    single = make_module(0.0)
    loss, metrics = single.compute_loss(global_batch())
    loss.backward()
    assert distributed["metrics"]["train/contrastive_loss"].item() == pytest.approx(
        metrics["train/contrastive_loss"].item(), rel=1e-5)
    halved = {name: grad / 2 for name, grad in gradients(single).items()}
    assert_same_gradients(distributed["grads"], halved, rel=1e-4, floor=1e-6)


def test_gather_is_the_identity_without_a_process_group():
    x = torch.randn(3, 4, requires_grad=True)
    assert all_gather_with_grad(x) is x


def _vote(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    loss = torch.tensor(float("nan") if rank == 0 else 1.0)  # each rank's loss holds its own MLM share
    votes = {"loss": on_every_rank(torch.isfinite(loss)),
             "one rank false": on_every_rank(torch.tensor(rank == 1)),
             "all true": on_every_rank(torch.tensor(True))}
    torch.save(votes, f"{out}.{rank}")
    dist.destroy_process_group()


@pytest.mark.slow
def test_a_non_finite_loss_on_one_rank_is_a_skip_on_every_rank(tmp_path):
    out = str(tmp_path / "votes")
    mp.spawn(_vote, args=(2, free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        assert torch.load(f"{out}.{rank}") == {"loss": False, "one rank false": False, "all true": True}


def test_the_vote_without_a_process_group():
    assert on_every_rank(torch.tensor(True)) and not on_every_rank(torch.tensor(False))
