"""ReferenceAdamW: the reference's AdamW without bias correction, and with it the usual Adam update."""

import pytest
import torch

from declutr.errors import DeclutrConfigError
from declutr.model.optimizers import ReferenceAdamW


def test_without_bias_correction_the_first_step_is_lr_times_one_minus_beta1_over_root_one_minus_beta2():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0, 3.0]))
    p.grad = torch.tensor([0.5, -0.25, 2.0])
    ReferenceAdamW([p], lr=1e-3, betas=(0.9, 0.999), eps=1e-12, correct_bias=False).step()
    moved = torch.tensor([1.0, -2.0, 3.0]) - p.detach()
    expected = 1e-3 * 0.1 / (0.001 ** 0.5) * torch.sign(torch.tensor([0.5, -0.25, 2.0]))  # 3.16 x lr, sign of the grad
    assert torch.allclose(moved, expected, rtol=1e-4)  # float32 arithmetic


def test_with_bias_correction_it_is_adam_and_decay_is_decoupled():
    torch.manual_seed(0)
    ours, theirs = torch.nn.Parameter(torch.randn(5)), None
    theirs = torch.nn.Parameter(ours.detach().clone())
    a = ReferenceAdamW([ours], lr=1e-2, eps=1e-12, correct_bias=True)
    b = torch.optim.Adam([theirs], lr=1e-2, eps=1e-12)
    for step in range(5):
        grad = torch.randn(5, generator=torch.Generator().manual_seed(step))
        ours.grad, theirs.grad = grad.clone(), grad.clone()
        a.step(), b.step()
    assert torch.allclose(ours, theirs, rtol=1e-5, atol=1e-7)
    decayed = torch.nn.Parameter(torch.ones(2))
    decayed.grad = torch.zeros(2)
    ReferenceAdamW([decayed], lr=0.1, weight_decay=0.5).step()
    assert torch.allclose(decayed.detach(), torch.full((2,), 1 - 0.1 * 0.5))


def test_bad_settings_are_refused():
    with pytest.raises(DeclutrConfigError, match="lr > 0"):
        ReferenceAdamW([torch.nn.Parameter(torch.ones(1))], lr=0)


def test_the_default_nodes_foreach_and_fused_are_taken_when_off_and_refused_when_on():
    """conf/model/default.yaml passes foreach and fused to whichever optimizer model.optimizer._target_ names."""
    for off in (None, False):
        p = torch.nn.Parameter(torch.tensor([1.0]))
        p.grad = torch.tensor([1.0])
        ReferenceAdamW([p], lr=0.1, foreach=off, fused=off).step()
        assert p.item() < 1.0
    for name in ("foreach", "fused"):
        with pytest.raises(DeclutrConfigError, match=f"model.optimizer.{name}=true.*model.optimizer.{name}=null"):
            ReferenceAdamW([torch.nn.Parameter(torch.ones(1))], **{name: True})
