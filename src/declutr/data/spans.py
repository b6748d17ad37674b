"""Anchor / positive span sampling on token ids, as in DeCLUTR (Giorgi et al., 2021, section 3.1).

All arithmetic is on token positions: a span is a half-open ``(start, end)`` slice of a document's ids,
never decoded back to text. ``data.sampler.strategy`` names one of :data:`POSITIVES`, the functions that place a
positive relative to its anchor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from declutr.config.settings import MAX_SPAN_LEN, MIN_SPAN_LEN, NUM_ANCHORS, NUM_POSITIVES, STRATEGY
from declutr.data.sampler import Span, SpanSample


def span_length(rng: np.random.Generator, a: float, b: float, shortest: int, longest: int) -> int:
    """``int(Beta(a, b) * (longest - shortest) + shortest)``: one draw of ``rng.beta``."""
    return int(rng.beta(a, b) * (longest - shortest) + shortest)


def overlapping_positive(anchor: Span, num_tokens: int, min_len: int, max_len: int, rng: np.random.Generator) -> Span:
    """The paper's: length ``int(Beta(2, 4) * (max - min) + min)``, start uniform in
    ``[max(0, a_start - len), min(a_end, N - len)]``, so the positive may be adjacent to, overlap, sit inside or
    contain its anchor, never with a gap between."""
    a_start, a_end = anchor
    length = span_length(rng, 2, 4, min_len, max_len)
    low, high = max(0, a_start - length), min(a_end, num_tokens - length)
    start = int(rng.integers(low, high + 1))
    return start, start + length


def adjacent_positive(anchor: Span, num_tokens: int, min_len: int, max_len: int, rng: np.random.Generator) -> Span:
    """Length as :func:`overlapping_positive`'s; ends exactly where the anchor starts or starts exactly where it
    ends (either side, uniformly, where it fits)."""
    a_start, a_end = anchor
    length = span_length(rng, 2, 4, min_len, max_len)
    # Anchors sit inside a block of a document of >= 2 blocks, so one side always has room for
    # max_span_len tokens; clip only in case the positive would run off both ends.
    length = min(length, max(a_start, num_tokens - a_end))
    sides = [s for s, ok in ((a_start - length, a_start - length >= 0), (a_end, a_end + length <= num_tokens)) if ok]
    start = sides[int(rng.integers(len(sides)))]
    return start, start + length


def subsumed_positive(anchor: Span, num_tokens: int, min_len: int, max_len: int, rng: np.random.Generator) -> Span:
    """Inside the anchor, its length ``int(Beta(2, 4) * (anchor_len - min) + min)``: drawn over
    ``[min, anchor length]`` as the reference does (not clipped from ``[min, max]``, which made about one positive
    in ten the anchor itself). ``num_tokens`` and ``max_len`` are not needed."""
    a_start, a_end = anchor
    length = span_length(rng, 2, 4, min_len, a_end - a_start)
    start = int(rng.integers(a_start, a_end - length + 1))
    return start, start + length


PositiveStrategy = Callable[[Span, int, int, int, np.random.Generator], Span]
# data.sampler.strategy -> the function placing a positive: (anchor, num_tokens, min_span_len, max_span_len, rng).
POSITIVES: dict[str, PositiveStrategy] = {
    "overlap": overlapping_positive,
    "adjacent": adjacent_positive,
    "subsumed": subsumed_positive,
}
STRATEGIES = tuple(POSITIVES)


@dataclass(frozen=True)
class SpanSampler:
    """Samples ``num_anchors`` non-overlapping anchors and ``num_positives`` positives per anchor.

    Anchor lengths are ``int(Beta(4, 2) * (max - min) + min)`` (skewed long), positive lengths
    ``int(Beta(2, 4) * (max - min) + min)`` (skewed short); ``strategy`` picks where the positives lie
    (:data:`POSITIVES`). The settings are checked by the config schema's entries
    (:func:`declutr.config.schema.check_arguments`), from a config or from Python alike.
    """

    num_anchors: int = 2
    num_positives: int = 1
    min_span_len: int = 32
    max_span_len: int = 512
    strategy: str = "overlap"

    length_setting = MAX_SPAN_LEN
    has_positives = True

    def __post_init__(self) -> None:
        # The schema's own check (a sampler built in Python has no config check before it); imported here because
        # the schema imports STRATEGIES from this module.
        from declutr.config.schema import check_arguments

        check_arguments({NUM_ANCHORS: self.num_anchors, NUM_POSITIVES: self.num_positives,
                         MIN_SPAN_LEN: self.min_span_len, MAX_SPAN_LEN: self.max_span_len, STRATEGY: self.strategy})

    @property
    def min_doc_tokens(self) -> int:
        """Shortest document that can be sampled: ``num_anchors * max_span_len * 2`` tokens."""
        return self.num_anchors * self.max_span_len * 2

    def requirement(self) -> str:
        """What a document needs to be sampled, and the settings that set it."""
        return (f"at least num_anchors * max_span_len * 2 = {self.min_doc_tokens} tokens: use longer documents, or "
                f"lower {MAX_SPAN_LEN} / {NUM_ANCHORS}")

    def sample(self, num_tokens: int, rng: np.random.Generator) -> SpanSample | None:
        """Spans for a document of ``num_tokens`` ids, or ``None`` if it is shorter than ``min_doc_tokens``."""
        if num_tokens < self.min_doc_tokens:
            return None
        anchors = self._anchors(num_tokens, rng)
        positive = POSITIVES[self.strategy]
        positives = [[positive(a, num_tokens, self.min_span_len, self.max_span_len, rng)
                      for _ in range(self.num_positives)] for a in anchors]
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
            length = span_length(rng, 4, 2, self.min_span_len, self.max_span_len)
            start = block * self.max_span_len + int(rng.integers(self.max_span_len - length + 1))
            anchors.append((start, start + length))
        return anchors
