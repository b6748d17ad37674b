"""Learning-rate schedules: linear warm-up and decay, and the reference's slanted triangular."""

import pytest

from declutr.model.schedules import schedule, slanted_triangular, warmup_linear_decay


def test_warmup_then_linear_decay():
    factor = warmup_linear_decay(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0) and factor(60) == pytest.approx(0.5) and factor(110) == 0.0


def test_slanted_triangular_rises_from_lr_over_ratio_to_lr_then_falls_back():
    factor = slanted_triangular(total_steps=1000, cut_frac=0.1, ratio=32)
    assert factor(0) == pytest.approx(1 / 32) and factor(100) == pytest.approx(1.0)
    assert factor(50) == pytest.approx((1 + 0.5 * 31) / 32)  # halfway up
    assert factor(550) == pytest.approx((1 + 0.5 * 31) / 32)  # halfway down
    assert factor(1000) == pytest.approx(1 / 32)
    assert all(factor(s) <= factor(s + 1) for s in range(100)) and all(factor(s) >= factor(s + 1) for s in range(100, 999))


def test_the_setting_picks_the_schedule():
    assert schedule("linear", 110, 10 / 110)(60) == pytest.approx(0.5)
    assert schedule("slanted_triangular", 1000, 0.1, 32)(0) == pytest.approx(1 / 32)
    with pytest.raises(ValueError, match="cosine"):
        schedule("cosine", 10, 0.1)
