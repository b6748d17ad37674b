"""Learning-rate schedules, as multipliers of the optimizer's lr per step (``torch.optim.lr_scheduler.LambdaLR``)."""

from __future__ import annotations

from collections.abc import Callable

SCHEDULES = ("linear", "slanted_triangular")


def warmup_linear_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear from 0 to 1 over ``warmup_steps``, then linear to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def slanted_triangular(total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> Callable[[int], float]:
    """Howard & Ruder's slanted triangular multiplier (the reference's AllenNLP schedule): from ``1/ratio`` up to 1
    over the first ``cut_frac`` of the steps, then linearly back down to ``1/ratio`` at ``total_steps``."""
    cut = max(1, int(total_steps * cut_frac))

    def factor(step: int) -> float:
        p = step / cut if step < cut else max(0.0, 1 - (step - cut) / max(1, total_steps - cut))
        return (1 + p * (ratio - 1)) / ratio

    return factor


def schedule(name: str, total_steps: int, warmup_fraction: float, ratio: float = 32.0) -> Callable[[int], float]:
    """The multiplier ``model.schedule`` names; ``warmup_fraction`` is the rising share of the steps for both."""
    if name == "linear":
        return warmup_linear_decay(int(warmup_fraction * total_steps), total_steps)
    if name == "slanted_triangular":
        return slanted_triangular(total_steps, warmup_fraction, ratio)
    raise ValueError(f"Unknown schedule {name!r}: use one of {SCHEDULES}.")
