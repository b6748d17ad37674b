"""AdamW as the reference implementation ran it: Hugging Face's former ``AdamW`` with ``correct_bias=False``.

``torch.optim.AdamW`` (the default, ``model.optimizer._target_``) always corrects Adam's moment estimates for
their zero initialisation. The reference's configs turned that off, which makes the first steps larger (about
``lr * (1 - beta1) / sqrt(1 - beta2)`` = 3.2 x lr per parameter with the default betas) and then converges to the
corrected update. Weight decay is decoupled and applied after the Adam step, as that optimizer did.

It updates one parameter at a time, as that optimizer did: the default node's ``foreach`` and ``fused`` (torch's
batched kernels) are accepted when ``null`` or ``false`` and refused when ``true``.
"""

from __future__ import annotations

import math

import torch

from declutr.errors import DeclutrConfigError


class ReferenceAdamW(torch.optim.Optimizer):
    """AdamW with optional bias correction (``correct_bias``); ``model.optimizer._target_`` selects it."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-6,
                 weight_decay: float = 0.0, correct_bias: bool = False, foreach: bool | None = None,
                 fused: bool | None = None) -> None:
        if lr <= 0 or eps <= 0 or not all(0 <= b < 1 for b in betas) or weight_decay < 0:
            raise DeclutrConfigError(
                f"ReferenceAdamW needs lr > 0, eps > 0, 0 <= betas < 1, weight_decay >= 0 (got model.optimizer.lr={lr}, "
                f"eps={eps}, betas={betas}, weight_decay={weight_decay}): correct these model.optimizer settings.")
        for name, value in (("foreach", foreach), ("fused", fused)):
            if value:
                raise DeclutrConfigError(
                    f"model.optimizer.{name}=true: ReferenceAdamW has no {name} kernel (it updates one parameter at "
                    f"a time, as the reference's AdamW did). Set model.optimizer.{name}=null, or use the default "
                    "model.optimizer._target_=torch.optim.AdamW.")
        super().__init__(params, {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                                  "correct_bias": correct_bias})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            beta1, beta2 = group["betas"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
                exp_avg.mul_(beta1).add_(p.grad, alpha=1 - beta1)
                exp_avg_sq.mul_(beta2).addcmul_(p.grad, p.grad, value=1 - beta2)
                step_size = group["lr"]
                if group["correct_bias"]:
                    t = state["step"]
                    step_size *= math.sqrt(1 - beta2**t) / (1 - beta1**t)
                p.addcdiv_(exp_avg, exp_avg_sq.sqrt().add_(group["eps"]), value=-step_size)
                if group["weight_decay"] > 0:
                    p.add_(p, alpha=-group["lr"] * group["weight_decay"])
        return loss
