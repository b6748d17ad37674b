"""Embed each distinct sentence once per evaluation run, whatever tasks ask for it again."""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from declutr.eval.task import EmbedFn, as_numpy


class CachedEmbedder:
    """Wraps an embed function: new sentences are embedded in one call (one length-sorted pass), known ones
    are read back. Build one per evaluation of a model: the cache is only valid for fixed weights."""

    def __init__(self, embed: EmbedFn) -> None:
        self.embed = embed
        self._rows: dict[str, int] = {}
        self._blocks: list[np.ndarray] = []
        self._table: np.ndarray | None = None
        self.embedded = 0  # distinct sentences embedded so far
        self.seconds = 0.0  # time spent inside the embed function

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        """Embeddings ``(len(texts), dim)`` in the order of ``texts``."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        new = list(dict.fromkeys(t for t in texts if t not in self._rows))
        if new:
            start = time.perf_counter()
            self._blocks.append(as_numpy(self.embed(new), np.float32))  # float32: the cache can hold 100k+ rows
            self.seconds += time.perf_counter() - start
            self._rows.update((text, self.embedded + i) for i, text in enumerate(new))
            self.embedded += len(new)
            self._table = None
        if self._table is None:
            self._table = np.concatenate(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
            self._blocks = [self._table]
        return self._table[[self._rows[t] for t in texts]]

    @property
    def sentences_per_s(self) -> float:
        return self.embedded / self.seconds if self.seconds else float("nan")
