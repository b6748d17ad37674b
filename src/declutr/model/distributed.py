"""Cross-device negatives: gather embeddings from every process, keeping gradients on the local slice."""

from __future__ import annotations

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def all_gather_with_grad(local: torch.Tensor) -> torch.Tensor:
    """``(n_local, ...)`` on every rank -> ``(n_global, ...)`` in rank order, identical on all ranks.

    Rows from other ranks are constants; this rank's rows are ``local`` itself, so gradients flow back
    only into what this rank computed (each rank's backward then yields its share of the global-batch
    gradient, see :func:`declutr.model.module.DeCLUTRModule.compute_loss`). Ranks may hold different
    numbers of rows (a skipped document, the stream's last batch): rows are padded for the collective.
    """
    world = world_size()
    if world == 1:
        return local
    rank = dist.get_rank()
    size = torch.tensor([local.shape[0]], device=local.device)
    sizes = [torch.zeros_like(size) for _ in range(world)]
    dist.all_gather(sizes, size)
    longest = int(max(s.item() for s in sizes))
    padded = local.new_zeros((longest, *local.shape[1:]))
    padded[: local.shape[0]] = local.detach()
    gathered = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(gathered, padded)
    parts = [local if r == rank else part[: int(s.item())] for r, (part, s) in enumerate(zip(gathered, sizes))]
    return torch.cat(parts)


def all_reduce_sum(value: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of a (gradient-free) tensor; the tensor itself when not distributed."""
    if world_size() == 1:
        return value
    value = value.detach().clone()
    dist.all_reduce(value)
    return value


def on_every_rank(flag: torch.Tensor) -> bool:
    """Whether a boolean scalar is true on every rank: one collective and one host sync, so that ranks
    take a decision (skip a step, stop) together, never one rank alone."""
    if world_size() == 1:
        return bool(flag)
    value = flag.detach().to(torch.int32).reshape(1)
    dist.all_reduce(value, op=dist.ReduceOp.MIN)
    return bool(value)
