"""The weights check behind every state called good: a checkpoint, a non-finite stop's last good state, an export.
The loss and gradient guard (:class:`~declutr.model.module.DeCLUTRModule`) cannot see weights that went non-finite
in an optimizer step (an infinite learning rate) or arrived that way (a damaged checkpoint)."""

from __future__ import annotations

import torch
from torch import nn

from declutr.errors import DeclutrNumericalError


def nonfinite_parameters(model: nn.Module) -> list[str]:
    """The names of ``model``'s parameters holding a NaN or an infinity (one host sync for all of them)."""
    named = [(name, param) for name, param in model.named_parameters() if param.numel()]
    if not named:
        return []
    finite = torch.stack([torch.isfinite(param.detach()).all() for _, param in named]).cpu()
    return [name for (name, _), ok in zip(named, finite.tolist(), strict=True) if not ok]


def check_finite_weights(model: nn.Module, what: str, step: int | None = None, checkpoint: str | None = None) -> None:
    """Raise :class:`DeclutrNumericalError` (``what`` says what was refused) if any weight is not finite; ``step``
    and ``checkpoint`` (the last good one, if known) go into the run's record."""
    bad = nonfinite_parameters(model)
    if not bad:
        return
    shown = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
    when = "" if step is None else f" at step {step}"
    good = f" The last good checkpoint is {checkpoint}." if checkpoint else ""
    error = DeclutrNumericalError(
        f"{what}: {len(bad)} weight tensor(s) hold NaN or infinite values ({shown}){when}.{good} Lower model.optimizer.lr (or set trainer.gradient_clip_val), and resume from a checkpoint saved "
        "before the run diverged.")
    error.step, error.checkpoint = step, checkpoint
    raise error
