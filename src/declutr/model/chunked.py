"""Chunked encoding of a padded batch: rows sorted by length (less padding) and, optionally, each chunk's
activations recomputed in backward (GradCache: activation memory of one chunk, loss over the whole batch)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch.utils.checkpoint import checkpoint

ChunkFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass(frozen=True)
class ChunkPlan:
    """Which rows of a right-padded batch each encoder call takes, and how many columns it keeps.

    ``chunks`` holds ``(rows, width)``: ``rows`` indexes the batch (a slice when the batch is one chunk),
    ``width`` is the chunk's longest row, so trimming the columns beyond it drops padding only. ``inverse``
    maps the concatenated chunk outputs back to the batch's row order (``None`` when rows keep their order).
    ``paid`` is what the encoder pays: rows x columns summed over the calls.
    """

    chunks: list[tuple[torch.Tensor | slice, int]]
    inverse: torch.Tensor | None
    paid: int


def plan_chunks(attention_mask: torch.Tensor, chunk_size: int | None) -> ChunkPlan:
    """Chunks of at most ``chunk_size`` rows of ``attention_mask`` ``(rows, columns)``, longest rows first.

    ``None`` (or a size covering the batch) keeps the batch whole: one call, no reordering, no host sync.
    Otherwise the lengths are read once on the host (one sync) and sorted, so rows of similar length share
    a chunk and each chunk is padded only to its own longest row.
    """
    rows, columns = attention_mask.shape
    if chunk_size is None or chunk_size >= rows:
        return ChunkPlan([(slice(None), columns)], None, rows * columns)
    lengths = attention_mask.sum(1).tolist()
    order = sorted(range(rows), key=lambda row: -lengths[row])  # stable: equal lengths keep their order
    chunks = []
    for start in range(0, rows, chunk_size):
        part = order[start : start + chunk_size]
        chunks.append((torch.tensor(part, device=attention_mask.device), max(1, int(lengths[part[0]]))))
    inverse = torch.empty(rows, dtype=torch.long)
    inverse[order] = torch.arange(rows)
    return ChunkPlan(chunks, inverse.to(attention_mask.device), sum(len(r) * w for r, w in chunks))


def encode_in_chunks(
    fn: ChunkFn,
    plan: ChunkPlan,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    labels: torch.Tensor | None = None,
    recompute: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``fn(ids, mask, labels)`` -> ``(embeddings (rows, hidden), summed loss or None)`` on each chunk of
    ``plan``; returns the embeddings in the batch's row order and the sum of the chunks' losses.

    ``recompute=True`` is GradCache: each chunk runs under activation checkpointing, so its activations
    are freed after the forward and rebuilt, from its inputs and its forward's RNG state (dropout masks
    included), when the backward reaches it. The loss still sees every embedding of the batch at once and
    the step stays one backward, with gradients equal to the plain chunked computation. Anything ``fn``
    must not repeat in the recompute (collectives) is to be computed before and passed in by closure.
    """
    embeddings, loss = [], None
    for rows, width in plan.chunks:
        args = (input_ids[rows, :width], attention_mask[rows, :width], None if labels is None else labels[rows, :width])
        chunk, part = checkpoint(fn, *args, use_reentrant=False) if recompute else fn(*args)
        embeddings.append(chunk)
        if part is not None:
            loss = part if loss is None else loss + part
    joined = embeddings[0] if len(embeddings) == 1 else torch.cat(embeddings)
    return (joined if plan.inverse is None else joined[plan.inverse]), loss
