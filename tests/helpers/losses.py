"""A slow, obviously correct NT-Xent to check the training code's loss against."""

import math

import torch


def reference_nt_xent(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> float:
    """Loop over the 2n directed pairs: -log(exp(s(i, pos)) / sum over k != i of exp(s(i, k))), s the cosine
    similarity over ``temperature``, in float64; row ``i`` of ``anchors`` and ``positives`` is a pair."""
    z = torch.cat([anchors, positives]).double()
    n = anchors.shape[0]
    total = 0.0
    for i in range(2 * n):
        partner = i + n if i < n else i - n
        cos = lambda a, b: float(z[a] @ z[b] / (z[a].norm() * z[b].norm()))  # noqa: E731
        denominator = sum(math.exp(cos(i, k) / temperature) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(i, partner) / temperature) / denominator)
    return total / (2 * n)
