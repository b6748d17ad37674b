"""``DocumentStream``: an ``IterableDataset`` from corpus files to anchor/positive token-id examples.

Documents are streamed (never all in memory), sharded round-robin over (distributed rank x DataLoader
worker) so each document is read by exactly one reader per epoch, shuffled (file order per epoch plus
a shuffle buffer), tokenised once (or read as ids from token-id shards, see ``token_shards``), and cut
into spans by a :class:`~declutr.data.sampler.Sampler`. Documents too short to sample and bad input are skipped
and counted by ``(reason, file)``; the counts ride along with the examples so the training loop can log them.

Resuming is exact: each example carries its reader (``shard``) and its ``position`` in that reader's
sequence of documents, and a stream given ``start_positions`` skips (without tokenising) the
documents already consumed. Span draws are seeded per document, so skipping changes nothing else.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import IterableDataset, get_worker_info

from declutr.data.documents import read_documents
from declutr.data.hub_dataset import HubDataset
from declutr.data.sampler import Sampler
from declutr.data.token_shards import TokenShard
from declutr.tokenizer import tokenize_document

SKIPPED_SHORT = "too_short"


class _RoundRobin:
    """Stateful ``keep()``: true for every ``num_shards``-th candidate document, starting at ``shard``."""

    def __init__(self, shard: int, num_shards: int) -> None:
        self.shard, self.num_shards, self.index = shard, num_shards, -1

    def __call__(self) -> bool:
        self.index += 1
        return self.index % self.num_shards == self.shard


class DocumentStream(IterableDataset):
    """Yields ``{"doc": key, "shard": s, "position": i, "anchors": [ids], "positives": [[ids] * P] * A,
    "skipped": Counter}``.

    ``sources`` are corpus files (read as text and tokenised) or :class:`TokenShard` s (read as ids); a
    document gets the same key, ids and spans either way. ``ids`` are 1-D ``int64`` numpy arrays without
    special tokens (the collator adds those). What is skipped after a reader's last real example is counted on
    that example, so under DDP no rank meets a batch without anchors while the others train; an example with no
    anchors, carrying only skip counts, comes from a reader that found no usable document at all.
    ``start_positions`` maps a shard to the number of its documents to skip (resuming mid-epoch), and ``worker_offset`` rotates which DataLoader worker reads
    which shard, so the resumed loader's first batch comes from the shard whose turn it was (workers take
    turns batch by batch); both apply to the epoch they were given for only.
    """

    def __init__(
        self,
        sources: Sequence[Path | TokenShard],
        tokenizer,
        sampler: Sampler,
        text_field: str = "text",
        text_split: str = "file",
        shuffle: bool = True,
        shuffle_buffer: int = 64,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        start_positions: Mapping[int, int] | None = None,
        worker_offset: int = 0,
    ) -> None:
        self.sources = list(sources)
        self.tokenizer = tokenizer
        self.sampler = sampler
        self.text_field, self.text_split = text_field, text_split
        self.shuffle, self.shuffle_buffer = shuffle, max(1, shuffle_buffer)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        # In shared memory, so that persistent DataLoader workers (copies of this object) see set_epoch().
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()
        self.set_epoch(0, start_positions, worker_offset)

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int, start_positions: Mapping[int, int] | None = None, worker_offset: int = 0) -> None:
        """New file order and span draws each epoch; ``start_positions`` and ``worker_offset`` say where this
        epoch resumes (nothing: from its start). Call before the DataLoader iterator is created."""
        self._epoch.fill_(epoch)
        self.resume_epoch, self.start_positions, self.worker_offset = epoch, dict(start_positions or {}), worker_offset

    def _shard(self, worker_offset: int) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (info.num_workers, (info.id + worker_offset) % info.num_workers) if info else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def documents(self, skipped: Counter, epoch: int, shard: int,
                  num_shards: int) -> Iterator[tuple[str, str | np.ndarray]]:
        """Reader ``shard``'s documents (texts, or ids from token shards) in ``epoch``'s order, shuffle buffer included."""
        sources = list(self.sources)
        if self.shuffle:  # the same permutation on every reader, so the round-robin stays a partition
            np.random.default_rng([self.seed, epoch]).shuffle(sources)
        keep = _RoundRobin(shard, num_shards)
        docs = (doc for i, source in enumerate(sources)
                for doc in self._read(source, skipped, keep, i % num_shards == shard))
        if not self.shuffle:
            yield from docs
            return
        rng = np.random.default_rng([self.seed, epoch, shard, 1])
        buffer: list[tuple[str, str | np.ndarray]] = []
        for doc in docs:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(doc)
                continue
            i = int(rng.integers(len(buffer)))
            buffer[i], doc = doc, buffer[i]
            yield doc
        rng.shuffle(buffer)
        yield from buffer

    def _read(self, source: Path | TokenShard, skipped: Counter, keep: Callable[[], bool],
              reports_file_errors: bool) -> Iterator[tuple[str, str | np.ndarray]]:
        if isinstance(source, TokenShard | HubDataset):
            return source.documents(skipped, keep, reports_file_errors)
        return read_documents(source, self.text_field, self.text_split, skipped, keep, reports_file_errors)

    def tokenize(self, text: str) -> np.ndarray:
        return np.asarray(tokenize_document(self.tokenizer, text), dtype=np.int64)

    def __iter__(self) -> Iterator[dict]:
        epoch = self.epoch
        resuming = epoch == self.resume_epoch  # (a persistent worker's copy keeps the positions it started with)
        shard, num_shards = self._shard(self.worker_offset if resuming else 0)
        skipped: Counter = Counter()
        start = self.start_positions.get(shard, 0) if resuming else 0
        documents = self.documents(skipped, epoch, shard, num_shards)
        for _ in islice(documents, start):  # already trained on before the resume: read, not tokenised
            pass
        skipped.clear()  # (and already counted then)
        pending = None  # each real example is held back until the next, which may have trailing skips to carry
        for position, (key, document) in enumerate(documents, start):
            ids = self.tokenize(document) if isinstance(document, str) else document
            # Seeded by the document itself: the same spans however the corpus is sharded or resumed.
            rng = np.random.default_rng([self.seed, epoch, zlib.crc32(key.encode())])
            spans = self.sampler.sample(len(ids), rng)
            if spans is None:
                skipped[SKIPPED_SHORT, key.rsplit(":", 1)[0]] += 1
                continue
            if pending is not None:
                yield pending
            pending = {
                "doc": key,
                "shard": shard,
                "position": position,
                "anchors": [ids[s:e] for s, e in spans.anchors],
                "positives": [[ids[s:e] for s, e in group] for group in spans.positives],
                "skipped": Counter(skipped),
            }
            skipped.clear()  # (the same object documents() counts into)
        if pending is not None:  # skips after the last real example ride on it: no batch is ever anchor-less ...
            pending["skipped"].update(skipped)
            yield pending
        elif skipped:  # ... unless this reader found no usable document at all
            yield {"doc": None, "shard": shard, "position": None, "anchors": [], "positives": [],
                   "skipped": Counter(skipped)}


def seed_worker(worker_id: int) -> None:
    """``worker_init_fn`` of a :class:`DocumentStream` loader: seeds python, numpy and torch in each worker from
    (seed, epoch, rank, worker), so what is random there (MLM masking in the collator) differs between workers
    and ranks and repeats from run to run (torch's default derives it from the main process's RNG state)."""
    stream = get_worker_info().dataset
    seed = int(np.random.SeedSequence([stream.seed, stream.epoch, stream.rank, worker_id]).generate_state(1)[0])
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
