"""The reference's learning-rate schedule as its code computed it: AllenNLP 1.1's ``slanted_triangular`` scheduler
(allenai/allennlp v1.1.0, ``allennlp/training/learning_rate_schedulers/slanted_triangular.py``), ported line for
line for the first epoch without gradual unfreezing, and driven as its trainer drives it (``training/trainer.py``):
``step_batch(n)`` sets the lr of optimizer step ``n`` (from 1) just before that step."""

from __future__ import annotations


def allennlp_slanted_triangular_lrs(lr: float, steps: int, num_steps_per_epoch: int | None, num_epochs: int = 1,
                                    cut_frac: float = 0.1, ratio: int = 32) -> list[float]:
    """The lr of optimizer steps 1..``steps`` of the first epoch. ``num_steps_per_epoch=None`` is what AllenNLP's
    trainer passes when its data loader has no length (the reference's lazy dataset)."""

    def get_values(last_batch_num_total: int) -> float:
        # batch_num_total_epoch_end == [0] throughout the first epoch, so the "finished an epoch" branch never runs
        actual_num_steps_per_epoch = max(num_steps_per_epoch or 1, last_batch_num_total)
        num_steps = num_epochs * actual_num_steps_per_epoch  # frozen_steps = 0 without gradual unfreezing
        step = min(last_batch_num_total, num_steps)
        cut = int(num_steps * cut_frac)
        prop = step / cut if step < cut else 1 - (step - cut) / (num_steps - cut)
        return lr * (1 + prop * (ratio - 1)) / ratio

    return [get_values(n) for n in range(1, steps + 1)]
