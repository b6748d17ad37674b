"""Non-finite losses: skipped and counted; too many in a row stop the run with the last good state saved."""

import lightning as L
import pytest
import torch
from transformers import AutoModel

from declutr.errors import DeclutrNumericalError
from declutr.files.checkpoints import load_checkpoint
from declutr.tasks.train import run
from tests.helpers.paths import STATE_UNION


class PoisonTemperature(L.Callback):
    """Fault injection: temperature 0 makes the NT-Xent logits infinite (and the loss NaN) at ``steps``."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = set(steps)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        module.hparams.temperature = 0.0 if trainer.global_step in self.steps else 0.05


FAST = ["model=tiny", f"data.files=[{STATE_UNION}]", "evaluate.enabled=false", "callbacks=none",
        "data.num_workers=0", "trainer.log_every_n_steps=1"]


def _poison(steps):
    return [f"+callbacks.poison._target_={__name__}.PoisonTemperature", f"+callbacks.poison.steps={steps}"]


def test_a_few_bad_steps_are_skipped_and_training_goes_on(make_config):
    cfg = make_config(*FAST, "trainer.max_steps=8", *_poison([2, 3, 4]))
    result = run(cfg)
    assert result["nonfinite_steps"] == 3
    weights = AutoModel.from_pretrained(f"{cfg.paths.output_dir}/model").state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_too_many_in_a_row_stop_with_the_last_good_state_saved(make_config):
    every_step = ["+callbacks.ckpt._target_=lightning.pytorch.callbacks.ModelCheckpoint",
                  "+callbacks.ckpt.every_n_train_steps=1", "+callbacks.ckpt.save_top_k=-1",
                  "+callbacks.ckpt.dirpath=${paths.output_dir}/every_step", "+callbacks.ckpt.filename='{step}'"]
    cfg = make_config(*FAST, "trainer.max_steps=20", "model.max_nonfinite_steps=3", *every_step,
                      *_poison(list(range(2, 20))))
    with pytest.raises(DeclutrNumericalError, match=r"3 steps in a row had a non-finite loss \(step.*nonfinite-stop\.ckpt"):
        run(cfg)
    saved = load_checkpoint(f"{cfg.paths.output_dir}/checkpoints/nonfinite-stop.ckpt")["state_dict"]
    last_good = load_checkpoint(f"{cfg.paths.output_dir}/every_step/step=2.ckpt")["state_dict"]
    assert saved.keys() == last_good.keys()
    for name, value in last_good.items():  # the skipped steps changed no weight
        assert torch.equal(saved[name], value) and torch.isfinite(value).all(), name


class PoisonGradient(L.Callback):
    """Fault injection: one gradient entry becomes infinite at ``steps``, the loss staying finite."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = set(steps)

    def on_before_optimizer_step(self, trainer, module, optimizer) -> None:  # after the backward, before clipping
        if trainer.global_step in self.steps:
            next(p for p in module.parameters() if p.grad is not None).grad.view(-1)[0] = float("inf")


@pytest.mark.parametrize("algorithm", ["norm", "value"])
def test_a_non_finite_gradient_is_caught_by_the_norm_whatever_the_clipping(make_config, algorithm):
    """The check reads the norm clipping computes; clipping by value (which would clamp an inf) comes after it."""
    cfg = make_config(*FAST, "trainer.max_steps=6", f"+trainer.gradient_clip_algorithm={algorithm}",
                      f"+callbacks.poison._target_={__name__}.PoisonGradient", "+callbacks.poison.steps=[2,3]")
    result = run(cfg)
    assert result["nonfinite_steps"] == 2
    weights = AutoModel.from_pretrained(f"{cfg.paths.output_dir}/model").state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_without_clipping_the_norm_is_still_checked(make_config):
    cfg = make_config(*FAST, "trainer.max_steps=6", "trainer.gradient_clip_val=null",
                      f"+callbacks.poison._target_={__name__}.PoisonGradient", "+callbacks.poison.steps=[2,3]")
    assert run(cfg)["nonfinite_steps"] == 2
