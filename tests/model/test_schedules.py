"""Learning-rate schedules: linear warm-up and decay, warm-up then constant, and the reference's slanted triangular
(checked against AllenNLP's own computation, tests/helpers/allennlp_schedule.py)."""

import pytest
import torch

from declutr.model.schedules import schedule, slanted_triangular, warmup_constant, warmup_linear_decay
from tests.helpers.allennlp_schedule import allennlp_slanted_triangular_lrs


def lrs_of_steps(factor, lr: float, steps: int) -> list[float]:
    """The lr each of ``steps`` optimizer steps runs with under ``LambdaLR(factor)``, stepped after each, as
    Lightning steps a scheduler of ``interval: step``."""
    optimizer = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    used = []
    for _ in range(steps):
        used.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return used


def test_warmup_then_linear_decay():
    factor = warmup_linear_decay(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0) and factor(60) == pytest.approx(0.5) and factor(110) == 0.0


def test_warmup_then_constant():
    factor = warmup_constant(warmup_steps=10)
    assert factor(0) == pytest.approx(0.1) and factor(4) == pytest.approx(0.5)
    assert [factor(s) for s in (9, 10, 500, 10**6)] == [1.0, 1.0, 1.0, 1.0]
    assert [warmup_constant(0)(s) for s in range(5)] == [1.0] * 5  # no warm-up: the lr from the first step


@pytest.mark.parametrize("total, cut_frac", [(1000, 0.1), (20, 0.1), (7, 0.1), (50, 0.3)])
def test_slanted_triangular_is_allennlps_for_a_run_of_known_length(total, cut_frac):
    ours = lrs_of_steps(slanted_triangular(total, cut_frac, ratio=32), 5e-5, total)
    assert ours == pytest.approx(allennlp_slanted_triangular_lrs(5e-5, total, num_steps_per_epoch=total,
                                                                 cut_frac=cut_frac), rel=1e-12)


def test_slanted_triangular_rises_from_lr_over_ratio_to_lr_then_falls_back():
    factor = slanted_triangular(total_steps=1000, cut_frac=0.1, ratio=32)
    assert factor(0) == pytest.approx((1 + 31 / 100) / 32)  # AllenNLP's step 1 of a 100-step rise
    assert factor(99) == pytest.approx(1.0)  # the peak: step 100 counted from 1
    assert factor(549) == pytest.approx((1 + 0.5 * 31) / 32)  # halfway down
    assert factor(999) == pytest.approx(1 / 32) and factor(1000) == pytest.approx(1 / 32)  # the last step, and after
    assert all(factor(s) <= factor(s + 1) for s in range(99)) and all(factor(s) >= factor(s + 1) for s in range(99, 999))
    assert slanted_triangular(10, cut_frac=1.0)(9) == pytest.approx(1.0)  # warm-up over every step: rises to the end


def test_the_reference_runs_stuck_schedule_is_constant_lr_over_ratio_and_the_constant_schedule_restores_it():
    """With a lazy dataset AllenNLP's trainer passes num_steps_per_epoch=None, so at step n the schedule takes the
    run to be n steps long and sits at its end: lr / ratio from the first step (docs/fidelity.md)."""
    reference = allennlp_slanted_triangular_lrs(5e-5, 300, num_steps_per_epoch=None)
    assert reference == pytest.approx([5e-5 / 32] * 300, rel=1e-12)
    assert lrs_of_steps(schedule("constant", 300, 0.0), 5e-5 / 32, 300) == pytest.approx(reference, rel=1e-12)


def test_the_setting_picks_the_schedule():
    assert schedule("linear", 110, 10 / 110)(60) == pytest.approx(0.5)
    assert schedule("constant", 100, 0.1)(4) == pytest.approx(0.5) and schedule("constant", 100, 0.1)(50) == 1.0
    assert schedule("slanted_triangular", 1000, 0.1, 32)(999) == pytest.approx(1 / 32)
    with pytest.raises(ValueError, match="cosine"):
        schedule("cosine", 10, 0.1)
