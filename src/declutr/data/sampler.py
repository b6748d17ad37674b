"""The sampler interface: what turns a document's token count into the spans that training reads.

A sampler is anything with the members of :class:`Sampler`; ``data.sampler`` in the config names one
(``_target_``) and its settings. The two shipped are :class:`~declutr.data.spans.SpanSampler` (DeCLUTR's anchors and
positives) and :class:`~declutr.data.windows.WindowSampler` (contiguous MLM windows, no positives). Who uses what:

- :class:`~declutr.data.stream.DocumentStream` calls :meth:`Sampler.sample` once per document, with a generator
  seeded by the document, and skips (and counts as too short) a document it gets ``None`` for;
- the collator (:class:`~declutr.data.collate.DeCLUTRCollator`) reads the slices the stream cut: it takes P as the
  size of the first positive group, so every anchor of every document must get the same number of positives
  (0 when :attr:`Sampler.has_positives` is false);
- the start-up checks (:mod:`declutr.data.checks`) read :attr:`Sampler.has_positives`,
  :attr:`Sampler.max_span_len`, :attr:`Sampler.length_setting` and :meth:`Sampler.requirement` to name the setting
  and the fix when the sampler does not fit the objective, the model or the corpus.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

Span = tuple[int, int]


@dataclass(frozen=True)
class SpanSample:
    """``anchors[i]`` is a half-open ``(start, end)`` slice of the document's token ids (no special tokens);
    ``positives[i]`` holds the slices paired with it: the same number for every anchor, none without positives."""

    anchors: list[Span]
    positives: list[list[Span]]


@runtime_checkable
class Sampler(Protocol):
    """What the stream, the collator and the start-up checks need from a sampler (see the module's docstring)."""

    @property
    def has_positives(self) -> bool:
        """Whether each anchor gets positives; without them only the MLM objective has anything to train on, and
        ``model.contrastive_weight > 0`` is refused before training."""

    @property
    def max_span_len(self) -> int:
        """The longest span :meth:`sample` gives, in tokens without special tokens: with those it must fit the
        model's positions (checked before training)."""

    @property
    def length_setting(self) -> str:
        """The dotted config key that sets :attr:`max_span_len`, named in the error when spans are too long for the
        model (``data.sampler.max_span_len``)."""

    @property
    def min_doc_tokens(self) -> int:
        """The fewest token ids a document needs: :meth:`sample` gives ``None`` exactly below this."""

    def requirement(self) -> str:
        """What a document needs to be sampled and the settings that set it, for the error raised when no document
        of the corpus can be sampled (``at least ... tokens: use longer documents, or lower ...``)."""

    def sample(self, num_tokens: int, rng: np.random.Generator) -> SpanSample | None:
        """The spans of a document of ``num_tokens`` ids, drawn with ``rng`` only (the same generator state gives the
        same spans), or ``None`` if the document is shorter than :attr:`min_doc_tokens`."""


# The members a sampler must have, as named in the interface: what a new sampler lacking one is told.
MEMBERS = tuple(name for name in vars(Sampler) if not name.startswith("_"))
