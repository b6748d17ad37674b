"""Anchor/positive span pairs for scoring a trained encoder, picked without the training code's span sampler (so a
regression there cannot change how a model is scored): the paper's overlap rule at fixed lengths."""

import numpy as np

Span = tuple[int, int]


def overlapping_pair(num_tokens: int, rng: np.random.Generator, anchor_len: int = 64,
                     positive_len: int = 32) -> tuple[Span, Span] | None:
    """``(anchor, positive)`` half-open token slices: an anchor of ``anchor_len`` tokens, then a positive of
    ``positive_len`` tokens starting uniformly anywhere from right before the anchor (ending where it starts) to right
    after it (starting where it ends), so it overlaps it, lies inside it or touches it. ``None`` for a text too short
    to hold both ends."""
    if num_tokens < anchor_len + 2 * positive_len:
        return None
    anchor = int(rng.integers(positive_len, num_tokens - anchor_len - positive_len + 1))
    positive = int(rng.integers(anchor - positive_len, anchor + anchor_len + 1))
    return (anchor, anchor + anchor_len), (positive, positive + positive_len)
