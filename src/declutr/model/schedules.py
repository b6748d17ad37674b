"""Learning-rate schedules, as multipliers of the optimizer's lr per step (``torch.optim.lr_scheduler.LambdaLR``).

A multiplier is called with the optimizer step about to be taken, counted from 0 (LambdaLR's ``last_epoch``).
"""

from __future__ import annotations

from collections.abc import Callable

SCHEDULES = ("linear", "constant", "slanted_triangular")


def _rise(step: int, warmup_steps: int) -> float:
    """Linear warm-up: ``1/warmup_steps`` at the first step, 1 at step ``warmup_steps - 1`` (above 1 after it)."""
    return (step + 1) / max(1, warmup_steps)


def warmup_linear_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear from 0 to 1 over ``warmup_steps``, then linear to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return _rise(step, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


def warmup_constant(warmup_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear from 0 to 1 over ``warmup_steps``, then 1 (with no warm-up: 1 from the first step)."""

    def factor(step: int) -> float:
        return min(1.0, _rise(step, warmup_steps))

    return factor


def slanted_triangular(total_steps: int, cut_frac: float = 0.1, ratio: float = 32.0) -> Callable[[int], float]:
    """Howard & Ruder's slanted triangular multiplier as AllenNLP's ``slanted_triangular`` (the reference's) computes
    it for a run of known length: from ``1/ratio`` up to 1 over the first ``int(total_steps * cut_frac)`` steps,
    then linearly back down to ``1/ratio`` at the last step. AllenNLP sets the lr of optimizer step ``n`` (from 1)
    from ``n``: here step ``step`` (from 0) is its step ``step + 1``."""
    cut = int(total_steps * cut_frac)

    def factor(step: int) -> float:
        n = min(step + 1, total_steps)
        p = n / cut if n < cut else 1 - (n - cut) / max(1, total_steps - cut)  # cut = total_steps: rises to the end
        return (1 + p * (ratio - 1)) / ratio

    return factor


def schedule(name: str, total_steps: int, warmup_fraction: float, ratio: float = 32.0) -> Callable[[int], float]:
    """The multiplier ``model.schedule`` names; ``warmup_fraction`` is the rising share of the steps for each."""
    if name == "linear":
        return warmup_linear_decay(int(warmup_fraction * total_steps), total_steps)
    if name == "constant":
        return warmup_constant(int(warmup_fraction * total_steps))
    if name == "slanted_triangular":
        return slanted_triangular(total_steps, warmup_fraction, ratio)
    raise ValueError(f"Unknown schedule {name!r}: use one of {SCHEDULES}.")
