"""What an MLM loss is measured against: the loss of the best predictor that uses no context.

BERT's masking (:func:`declutr.data.collate.mask_tokens`) shows the model 80% of the chosen tokens as ``[MASK]``, 10%
as a random token and 10% as themselves. A predictor without context predicts a ``[MASK]`` from the corpus's token
frequencies, at the unigram entropy ``H``; at a visible token it can bet on that very token being the answer, which
is right half the time or more. :func:`context_free_loss` is the expected loss of the best such predictor: a loss
between it and ``H`` is learnt by copying, not from the context.
"""

from __future__ import annotations

import numpy as np

from declutr.data.collate import MASK_SHARE, RANDOM_SHARE


def context_free_loss(counts, vocab_size: int, mask_share: float = MASK_SHARE,
                      random_share: float = RANDOM_SHARE) -> float:
    """Expected MLM loss (nats) of the best predictor that sees only the chosen position's input token, for answers
    drawn with the frequencies ``counts`` (one per id) and random replacements drawn uniformly from ``vocab_size`` ids
    (the rest of the chosen tokens, ``1 - mask_share - random_share``, stay as they are).

    With ``u = random_share / V`` and ``e(x) = keep p(x) + u`` (how likely a visible ``x`` is), the answer to a
    visible ``x`` is ``x`` itself with posterior ``p(x) (keep + u) / e(x)`` and another ``y`` with ``u p(y) / e(x)``;
    the expected loss, summed over ``x`` and ``y`` in closed form, is added to ``mask_share * H`` for the masked ones.
    """
    keep = 1.0 - mask_share - random_share
    p = np.zeros(max(vocab_size, len(counts)), dtype=np.float64)
    p[: len(counts)] = np.asarray(counts, dtype=np.float64) / np.sum(counts)
    seen = p > 0
    surprise = np.zeros_like(p)  # -p(y) log p(y): each id's share of H
    surprise[seen] = -p[seen] * np.log(p[seen])
    entropy = surprise.sum()
    u = random_share / vocab_size
    evidence = keep * p + u
    own = np.zeros_like(p)  # the answer is the visible token itself (nothing visible when every chosen token is masked)
    if keep + u > 0:
        own[seen] = -p[seen] * (keep + u) * np.log(p[seen] * (keep + u) / evidence[seen])
    others = u * (entropy - surprise) + u * (1 - p) * np.log(evidence / u) if u > 0 else np.zeros_like(p)
    return float(mask_share * entropy + own.sum() + others.sum())
