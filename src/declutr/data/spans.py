"""Anchor / positive span sampling on token ids, as in DeCLUTR (Giorgi et al., 2021, section 3.1).

All arithmetic is on token positions: a span is a half-open ``(start, end)`` slice of a document's ids,
never decoded back to text.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from declutr.errors import DeclutrConfigError

STRATEGIES = ("overlap", "adjacent", "subsumed")

Span = tuple[int, int]


@dataclass(frozen=True)
class SpanSample:
    """``anchors[i]`` is a ``(start, end)`` slice; ``positives[i]`` holds the P slices paired with it."""

    anchors: list[Span]
    positives: list[list[Span]]


@dataclass(frozen=True)
class SpanSampler:
    """Samples ``num_anchors`` non-overlapping anchors and ``num_positives`` positives per anchor.

    Anchor lengths are ``int(Beta(4, 2) * (max - min) + min)`` (skewed long), positive lengths
    ``int(Beta(2, 4) * (max - min) + min)`` (skewed short). Strategies for the positives:

    - ``overlap`` (the paper's): start uniform in ``[max(0, a_start - len), min(a_end, N - len)]``, so the
      positive may be adjacent to, overlap, sit inside or contain its anchor, never with a gap between.
    - ``adjacent``: ends exactly where the anchor starts or starts exactly where it ends.
    - ``subsumed``: inside the anchor, its length ``int(Beta(2, 4) * (anchor_len - min) + min)``: drawn over
      ``[min, anchor length]`` as the reference does (not clipped from ``[min, max]``, which made about one
      positive in ten the anchor itself).
    """

    num_anchors: int = 2
    num_positives: int = 1
    min_span_len: int = 32
    max_span_len: int = 512
    strategy: str = "overlap"

    LENGTH_SETTING = "data.sampler.max_span_len"  # the setting that bounds a sequence's length
    has_positives = True

    def __post_init__(self) -> None:
        if self.num_anchors < 1 or self.num_positives < 1:
            raise DeclutrConfigError(
                f"data.sampler.num_anchors={self.num_anchors} and data.sampler.num_positives={self.num_positives} must both "
                "be >= 1."
            )
        if not 1 <= self.min_span_len <= self.max_span_len:
            raise DeclutrConfigError(
                f"data.sampler.min_span_len={self.min_span_len} must be between 1 and data.sampler.max_span_len="
                f"{self.max_span_len}: "
                "lower min_span_len or raise max_span_len."
            )
        if self.strategy not in STRATEGIES:
            raise DeclutrConfigError(f"Unknown data.sampler.strategy={self.strategy!r}; use one of {STRATEGIES}.")

    @property
    def min_doc_tokens(self) -> int:
        """Shortest document that can be sampled: ``num_anchors * max_span_len * 2`` tokens."""
        return self.num_anchors * self.max_span_len * 2

    def requirement(self) -> str:
        """What a document needs to be sampled, and the settings that set it."""
        return (f"at least num_anchors * max_span_len * 2 = {self.min_doc_tokens} tokens: use longer documents, or "
                "lower data.sampler.max_span_len / data.sampler.num_anchors")

    def _length(self, rng: np.random.Generator, a: float, b: float, longest: int | None = None) -> int:
        """``int(Beta(a, b) * (longest - min) + min)``, ``longest`` defaulting to ``max_span_len``."""
        longest = self.max_span_len if longest is None else longest
        return int(rng.beta(a, b) * (longest - self.min_span_len) + self.min_span_len)

    def sample(self, num_tokens: int, rng: np.random.Generator) -> SpanSample | None:
        """Spans for a document of ``num_tokens`` ids, or ``None`` if it is shorter than ``min_doc_tokens``."""
        if num_tokens < self.min_doc_tokens:
            return None
        anchors = self._anchors(num_tokens, rng)
        positives = [[self._positive(a, num_tokens, rng) for _ in range(self.num_positives)] for a in anchors]
        return SpanSample(anchors, positives)

    def _anchors(self, num_tokens: int, rng: np.random.Generator) -> list[Span]:
        # Cut the document into max_span_len blocks; each anchor lies inside one block, so anchors never
        # overlap. Like the reference, a drawn block's neighbours leave the preferred pool too (which keeps
        # anchors apart); when that pool runs dry (A >= 4 with a minimum-length document) any undrawn block
        # serves, which still guarantees disjoint anchors.
        num_blocks = num_tokens // self.max_span_len
        preferred = list(range(num_blocks))
        undrawn = set(preferred)
        anchors = []
        for _ in range(self.num_anchors):
            pool = preferred or sorted(undrawn)
            block = pool[rng.integers(len(pool))]
            undrawn.discard(block)
            preferred = [b for b in preferred if abs(b - block) > 1]
            length = self._length(rng, 4, 2)
            start = block * self.max_span_len + int(rng.integers(self.max_span_len - length + 1))
            anchors.append((start, start + length))
        return anchors

    def _positive(self, anchor: Span, num_tokens: int, rng: np.random.Generator) -> Span:
        a_start, a_end = anchor
        if self.strategy == "subsumed":
            length = self._length(rng, 2, 4, longest=a_end - a_start)
            start = int(rng.integers(a_start, a_end - length + 1))
            return start, start + length
        length = self._length(rng, 2, 4)
        if self.strategy == "adjacent":
            # Anchors sit inside a block of a document of >= 2 blocks, so one side always has room for
            # max_span_len tokens; clip only in case the positive would run off both ends.
            length = min(length, max(a_start, num_tokens - a_end))
            sides = [s for s, ok in ((a_start - length, a_start - length >= 0), (a_end, a_end + length <= num_tokens)) if ok]
            start = sides[int(rng.integers(len(sides)))]
        else:
            low, high = max(0, a_start - length), min(a_end, num_tokens - length)
            start = int(rng.integers(low, high + 1))
        return start, start + length
