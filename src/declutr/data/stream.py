"""``DocumentStream``: an ``IterableDataset`` from corpus files to anchor/positive token-id examples.

Documents are streamed (never all in memory), sharded round-robin over (distributed rank x DataLoader
worker) so each document is read by exactly one reader per epoch, shuffled (file order per epoch plus
a shuffle buffer), tokenised once, and cut into spans by a :class:`SpanSampler`. Documents too short
to sample and bad input are skipped and counted by ``(reason, file)``; the counts ride along with the
examples so the training loop can log them.

Resuming is exact: each example carries its reader (``shard``) and its ``position`` in that reader's
sequence of documents, and a stream built with ``start_positions`` skips (without tokenising) the
documents already consumed. Span draws are seeded per document, so skipping changes nothing else.
"""

from __future__ import annotations

from collections import Counter
import zlib
from collections.abc import Iterator, Mapping, Sequence
from itertools import islice
from pathlib import Path

import numpy as np
from torch.utils.data import IterableDataset, get_worker_info

from declutr.data.documents import read_documents
from declutr.data.spans import SpanSampler

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

    ``ids`` are 1-D ``int64`` numpy arrays without special tokens (the collator adds those). An example
    with no anchors carries only the counts of what was skipped after the last real example.
    ``start_positions`` maps a shard to the number of its documents to skip (resuming mid-epoch), and
    ``worker_offset`` rotates which DataLoader worker reads which shard, so the resumed loader's first
    batch comes from the shard whose turn it was (workers take turns batch by batch).
    """

    def __init__(
        self,
        files: Sequence[Path],
        tokenizer,
        sampler: SpanSampler,
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
        self.files = list(files)
        self.tokenizer = tokenizer
        self.sampler = sampler
        self.text_field, self.text_split = text_field, text_split
        self.shuffle, self.shuffle_buffer = shuffle, max(1, shuffle_buffer)
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        self.start_positions = dict(start_positions or {})
        self.worker_offset = worker_offset

    def set_epoch(self, epoch: int) -> None:
        """New file order and span draws each epoch; call before the DataLoader iterator is created."""
        if epoch != self.epoch:
            self.start_positions, self.worker_offset = {}, 0
        self.epoch = epoch

    def _shard(self) -> tuple[int, int]:
        info = get_worker_info()
        workers, worker = (info.num_workers, (info.id + self.worker_offset) % info.num_workers) if info else (1, 0)
        return self.rank * workers + worker, self.world_size * workers

    def documents(self, skipped: Counter) -> Iterator[tuple[str, str]]:
        """This reader's documents, in this epoch's order (shuffle buffer included)."""
        shard, num_shards = self._shard()
        files = list(self.files)
        if self.shuffle:  # the same permutation on every reader, so the round-robin stays a partition
            np.random.default_rng([self.seed, self.epoch]).shuffle(files)
        keep = _RoundRobin(shard, num_shards)
        docs = (doc for i, path in enumerate(files)
                for doc in read_documents(path, self.text_field, self.text_split, skipped, keep, i % num_shards == shard))
        if not self.shuffle:
            yield from docs
            return
        rng = np.random.default_rng([self.seed, self.epoch, shard, 1])
        buffer: list[tuple[str, str]] = []
        for doc in docs:
            if len(buffer) < self.shuffle_buffer:
                buffer.append(doc)
                continue
            i = int(rng.integers(len(buffer)))
            buffer[i], doc = doc, buffer[i]
            yield doc
        rng.shuffle(buffer)
        yield from buffer

    def tokenize(self, text: str) -> np.ndarray:
        ids = self.tokenizer(text, add_special_tokens=False, return_attention_mask=False, verbose=False)["input_ids"]
        return np.asarray(ids, dtype=np.int64)

    def __iter__(self) -> Iterator[dict]:
        shard, _ = self._shard()
        skipped: Counter = Counter()
        start = self.start_positions.get(shard, 0)
        documents = self.documents(skipped)
        for _ in islice(documents, start):  # already trained on before the resume: read, not tokenised
            pass
        skipped.clear()  # (and already counted then)
        for position, (key, text) in enumerate(documents, start):
            ids = self.tokenize(text)
            # Seeded by the document itself: the same spans however the corpus is sharded or resumed.
            rng = np.random.default_rng([self.seed, self.epoch, zlib.crc32(key.encode())])
            spans = self.sampler.sample(len(ids), rng)
            if spans is None:
                skipped[SKIPPED_SHORT, key.rsplit(":", 1)[0]] += 1
                continue
            yield {
                "doc": key,
                "shard": shard,
                "position": position,
                "anchors": [ids[s:e] for s, e in spans.anchors],
                "positives": [[ids[s:e] for s, e in group] for group in spans.positives],
                "skipped": Counter(skipped),
            }
            skipped.clear()  # (the same object documents() counts into)
        if skipped:
            yield {"doc": None, "shard": shard, "position": None, "anchors": [], "positives": [],
                   "skipped": Counter(skipped)}

