"""NT-Xent against a slow, obviously-correct reference; MLM loss edge cases."""

import math

import pytest
import torch

from declutr.model.losses import masked_lm_loss, nt_xent_loss


def reference_nt_xent(anchors, positives, temperature):
    """Loop over the 2n directed pairs: -log(exp(s(i, pos)) / sum over k != i of exp(s(i, k)))."""
    z = torch.cat([anchors, positives]).double()
    n = anchors.shape[0]
    total = 0.0
    for i in range(2 * n):
        partner = i + n if i < n else i - n
        cos = lambda a, b: float(z[a] @ z[b] / (z[a].norm() * z[b].norm()))  # noqa: E731
        denominator = sum(math.exp(cos(i, k) / temperature) for k in range(2 * n) if k != i)
        total += -math.log(math.exp(cos(i, partner) / temperature) / denominator)
    return total / (2 * n)


@pytest.mark.parametrize("n, dim, temperature, seed", [(1, 4, 0.05, 0), (2, 8, 0.05, 1), (7, 16, 0.5, 2), (16, 32, 0.05, 3)])
def test_matches_reference(n, dim, temperature, seed):
    gen = torch.Generator().manual_seed(seed)
    anchors, positives = torch.randn(n, dim, generator=gen), torch.randn(n, dim, generator=gen)
    assert nt_xent_loss(anchors, positives, temperature).item() == pytest.approx(
        reference_nt_xent(anchors, positives, temperature), rel=1e-4, abs=1e-5)


def test_identical_pairs_far_from_others_give_near_zero_loss():
    anchors = torch.eye(4) * 3
    assert nt_xent_loss(anchors, anchors.clone(), 0.05).item() < 1e-6


def test_gradient_flows_to_both_sides():
    anchors = torch.randn(5, 8, requires_grad=True)
    positives = torch.randn(5, 8, requires_grad=True)
    nt_xent_loss(anchors, positives).backward()
    assert anchors.grad.abs().sum() > 0 and positives.grad.abs().sum() > 0


def test_mlm_loss_is_zero_without_masked_tokens_and_keeps_the_graph():
    logits = torch.randn(0, 10, requires_grad=True)
    loss = masked_lm_loss(logits, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0


def test_similarities_stay_fp32_under_bf16_autocast():
    """bf16-mixed runs matmuls in bf16; at temperature 0.05 that would quantise the logits in steps of ~0.08."""
    gen = torch.Generator().manual_seed(0)
    anchors, positives = (torch.randn(32, 64, generator=gen).bfloat16() for _ in range(2))
    expected = nt_xent_loss(anchors.float(), positives.float(), 0.05)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = nt_xent_loss(anchors, positives, 0.05)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)
