"""Two real processes (gloo, CPU) give the same loss and gradients as one process on the global batch, and
take the non-finite-step decision together."""

import socket
from functools import partial

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from declutr.data.collate import DeCLUTRCollator
from declutr.model.distributed import all_gather_with_grad, on_every_rank
from declutr.model.encoder import load_tokenizer
from declutr.model.module import DeCLUTRModule
from declutr.resolvers import _minilm_path
from tests.model.test_module import TINY, assert_same_gradients

A, P = 2, 2  # anchors per document, positives per anchor


def make_module(mlm_weight: float, grad_cache: int | None = None) -> DeCLUTRModule:
    torch.manual_seed(0)
    module = DeCLUTRModule(TINY, optimizer=partial(torch.optim.AdamW), mlm_weight=mlm_weight,
                           grad_cache={"chunk_size": grad_cache})
    return module.eval()  # no dropout: the two computations must see identical activations


def global_batch(docs: int = 6) -> dict:
    rng = np.random.default_rng(0)
    span = lambda: rng.integers(1000, 20000, int(rng.integers(5, 40)))  # noqa: E731
    examples = [{"doc": f"d{i}", "shard": 0, "position": i, "skipped": {},
                 "anchors": [span() for _ in range(A)], "positives": [[span() for _ in range(P)] for _ in range(A)]}
                for i in range(docs)]
    torch.manual_seed(1)
    return DeCLUTRCollator(load_tokenizer(_minilm_path()), mlm_probability=0.15)(examples)


def rows(batch: dict, docs: slice) -> dict:
    """The part of a collated batch that holds documents ``docs`` (rows of anchors and of positives)."""
    a = slice(docs.start * A, docs.stop * A)
    p = slice(docs.start * A * P, docs.stop * A * P)
    part = {k: batch[k][a] for k in ("anchor_input_ids", "anchor_attention_mask", "mlm_labels")}
    part.update({k: batch[k][p] for k in ("positive_input_ids", "positive_attention_mask")})
    return {**part, "num_positives": P}


def gradients(module: DeCLUTRModule) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}


def _rank(rank: int, world: int, port: int, mlm_weight: float, split: list[int], grad_cache: int | None,
          out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    module, batch = make_module(mlm_weight, grad_cache), global_batch()
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("mlm_weight, split, grad_cache", [(1.0, [3, 3], None), (0.0, [3, 3], None),
                                                         (1.0, [4, 2], None), (1.0, [4, 2], 3)],
                         ids=["contrastive+mlm", "contrastive only", "uneven ranks", "grad cache"])
def test_two_processes_match_one_process_on_the_global_batch(tmp_path, mlm_weight, split, grad_cache):
    """With GradCache, each rank recomputes its own chunks; the reference is one process without it."""
    out = str(tmp_path / "rank0.pt")
    mp.spawn(_rank, args=(2, _free_port(), mlm_weight, split, grad_cache, out), nprocs=2, join=True)
    distributed = torch.load(out, weights_only=True)
    single = make_module(mlm_weight)
    loss, metrics = single.compute_loss(global_batch())
    loss.backward()
    for name, value in metrics.items():
        if name.startswith("train/padding"):
            continue  # each rank's own padding, not a global-batch value
        assert distributed["metrics"][name].item() == pytest.approx(value.item(), rel=1e-5), name
    assert_same_gradients(distributed["grads"], gradients(single), rel=1e-4, floor=1e-6)


def test_gather_is_the_identity_without_a_process_group():
    x = torch.randn(3, 4, requires_grad=True)
    assert all_gather_with_grad(x) is x


def _vote(rank: int, world: int, port: int, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    module = make_module(mlm_weight=1.0)
    for param in module.parameters():
        param.grad = torch.zeros_like(param)
    if rank == 0:  # as under FSDP, where each rank checks only the gradients of its own shard
        next(module.parameters()).grad.view(-1)[0] = float("nan")
    votes = {"gradients": on_every_rank(module._gradients_finite()),
             "one rank false": on_every_rank(torch.tensor(rank == 1)),
             "all true": on_every_rank(torch.tensor(True))}
    torch.save(votes, f"{out}.{rank}")
    dist.destroy_process_group()


def test_a_non_finite_gradient_on_one_rank_is_a_skip_on_every_rank(tmp_path):
    out = str(tmp_path / "votes")
    mp.spawn(_vote, args=(2, _free_port(), out), nprocs=2, join=True)
    for rank in (0, 1):
        assert torch.load(f"{out}.{rank}") == {"gradients": False, "one rank false": False, "all true": True}


def test_the_gradient_check_without_a_process_group():
    module = make_module(mlm_weight=1.0)
    assert on_every_rank(module._gradients_finite())  # no gradients yet
    for param in module.parameters():
        param.grad = torch.ones_like(param)
    assert on_every_rank(module._gradients_finite())
    list(module.parameters())[-1].grad[0] = float("inf")
    assert not on_every_rank(module._gradients_finite())
