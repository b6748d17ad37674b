"""Contiguous windows for MLM pretraining, the way BERT and RoBERTa were pretrained: no anchors, no positives.

A document of ``N`` token ids is cut into ``N // window_len`` consecutive windows of exactly ``window_len`` ids,
starting at a random offset (so each epoch cuts it differently); ``windows_per_document`` keeps a random subset
of them, in document order (``None``: every window). The windows take the place of the anchors of a
:class:`~declutr.data.sampler.SpanSample` and have no positives, so only the MLM objective can use them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from declutr.config.settings import WINDOW_LEN, WINDOWS_PER_DOCUMENT
from declutr.data.sampler import SpanSample


@dataclass(frozen=True)
class WindowSampler:
    """``window_len`` tokens a window (without special tokens); at most ``windows_per_document`` per document. The
    settings are checked by the config schema's entries (:func:`declutr.config.schema.check_arguments`), from a config
    or from Python alike."""

    window_len: int = 126
    windows_per_document: int | None = None

    length_setting = WINDOW_LEN
    has_positives = False  # gives windows only: the contrastive objective has nothing to contrast

    def __post_init__(self) -> None:
        from declutr.config.schema import check_arguments  # (the schema imports the data package)

        check_arguments({WINDOW_LEN: self.window_len, WINDOWS_PER_DOCUMENT: self.windows_per_document})

    @property
    def max_span_len(self) -> int:
        """The longest sequence drawn (what must fit in the model's positions)."""
        return self.window_len

    @property
    def min_doc_tokens(self) -> int:
        """Shortest document that gives a window."""
        return self.window_len

    def requirement(self) -> str:
        """What a document needs to be sampled, and the settings that set it."""
        return f"at least {WINDOW_LEN} = {self.window_len} tokens: use longer documents, or lower {WINDOW_LEN}"

    def sample(self, num_tokens: int, rng: np.random.Generator) -> SpanSample | None:
        """The windows of a document of ``num_tokens`` ids, or ``None`` if it is shorter than one window."""
        count = num_tokens // self.window_len
        if count == 0:
            return None
        offset = int(rng.integers(num_tokens - count * self.window_len + 1))
        chosen = np.arange(count)
        if self.windows_per_document is not None and self.windows_per_document < count:
            chosen = np.sort(rng.choice(count, self.windows_per_document, replace=False))
        windows = [(offset + int(i) * self.window_len, offset + (int(i) + 1) * self.window_len) for i in chosen]
        return SpanSample(windows, [[] for _ in windows])
