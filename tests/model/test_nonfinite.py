"""Non-finite losses: skipped and counted; too many in a row stop the run, naming the last good checkpoint; non-finite
or diverged weights are never saved or exported as good."""

from pathlib import Path

import lightning as L
import pytest
import torch
from transformers import AutoModel

from declutr.config.instantiate import build
from declutr.errors import DeclutrNumericalError
from declutr.files.checkpoints import load_checkpoint
from declutr.report.results import STOPPED_NONFINITE, read_result
from declutr.tasks.train import run
from declutr.tokenizer import load_tokenizer
from tests.helpers.paths import STATE_UNION


class PoisonTemperature(L.Callback):
    """Fault injection: temperature 0 makes the NT-Xent logits infinite (and the loss NaN) at ``steps``."""

    def __init__(self, steps: list[int]) -> None:
        self.steps = set(steps)

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        module.loss.temperature = 0.0 if trainer.global_step in self.steps else 0.05


FAST = ["model=tiny", f"data.files=[{STATE_UNION}]", "evaluate.enabled=false", "callbacks=none",
        "data.num_workers=0", "trainer.log_every_n_steps=1"]
# The default callbacks, checkpoints included, without the periodic evaluation and the progress bar.
FAST_WITH_CHECKPOINTS = [*(a for a in FAST if a != "callbacks=none"), "~callbacks.progress_bar", "~callbacks.span_log"]


def _poison(steps):
    return [f"+callbacks.poison._target_={__name__}.PoisonTemperature", f"+callbacks.poison.steps={steps}"]


def test_a_few_bad_steps_are_skipped_and_training_goes_on(make_config):
    cfg = make_config(*FAST, "trainer.max_steps=8", *_poison([2, 3, 4]))
    result = run(cfg)
    assert result["nonfinite_steps"] == 3
    weights = AutoModel.from_pretrained(f"{cfg.paths.output_dir}/model").state_dict()
    assert all(torch.isfinite(w).all() for w in weights.values())


def test_too_many_in_a_row_stop_naming_the_last_checkpoint_from_before_them(make_config):
    """Every step of the stretch started from the weights of step 2 and gave nothing finite: no checkpoint is written
    during it, none from those weights is called good, and the run's record says stopped_nonfinite."""
    every_step = ["callbacks.model_checkpoint.every_n_train_steps=1", "callbacks.model_checkpoint.save_top_k=-1",
                  "callbacks.model_checkpoint.filename='step{step}'", "callbacks.model_checkpoint.monitor=null"]
    cfg = make_config(*FAST_WITH_CHECKPOINTS, "trainer.max_steps=20", "model.max_nonfinite_steps=3", *every_step,
                      *_poison(list(range(2, 20))))
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    with pytest.raises(DeclutrNumericalError, match=r"3 steps in a row had a non-finite loss \(steps 3-5\), all from "
                       rf"the weights of step 2: they are not kept\. The last good checkpoint is {folder}/step1\.ckpt"):
        run(cfg)
    assert sorted(p.name for p in folder.glob("*.ckpt")) == ["last.ckpt", "step1.ckpt", "step2.ckpt"]
    assert load_checkpoint(folder / "last.ckpt")["global_step"] == 2  # nothing saved during the stretch
    result = read_result(cfg.paths.output_dir)
    assert (result.status, result.checkpoint, result.steps) == (STOPPED_NONFINITE, str(folder / "step1.ckpt"), 4)
    assert not (Path(cfg.paths.output_dir) / "model").exists()


class Diverge(L.Callback):
    """Fault injection: the weights become 1e30 after ``step``, as an optimizer step with a huge learning rate makes
    them (finite weights whose every loss is not)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            with torch.no_grad():
                for param in module.parameters():
                    param.fill_(1e30)


def test_a_diverged_run_is_never_saved_or_exported_as_good(make_config):
    every_2 = ["callbacks.model_checkpoint.every_n_train_steps=2", "callbacks.stsb_dev.every_n_steps=2",
               "callbacks.stsb_dev.max_examples=20"]
    cfg = make_config(*FAST_WITH_CHECKPOINTS, "trainer.max_steps=20", "model.max_nonfinite_steps=4", *every_2,
                      f"+callbacks.diverge._target_={__name__}.Diverge", "+callbacks.diverge.step=3")
    with pytest.raises(DeclutrNumericalError, match="4 steps in a row had a non-finite loss"):
        run(cfg)
    folder = Path(cfg.paths.output_dir) / "checkpoints"
    for path in folder.glob("*.ckpt"):  # only those from before the divergence, all finite
        checkpoint = load_checkpoint(path)
        assert checkpoint["global_step"] <= 2, path
        assert all(torch.isfinite(w).all() for w in checkpoint["state_dict"].values()), path
    assert read_result(cfg.paths.output_dir).status == STOPPED_NONFINITE
    assert not (Path(cfg.paths.output_dir) / "model").exists()


def test_non_finite_weights_are_never_written_to_a_checkpoint(make_config, tmp_path):
    cfg = make_config(*FAST, "trainer.max_steps=1")
    module = build(cfg.model, tokenizer=load_tokenizer(cfg.model.encoder.name_or_path), _convert_="all")
    with torch.no_grad():
        next(module.parameters()).view(-1)[0] = float("nan")
    with pytest.raises(DeclutrNumericalError, match=r"Checkpoint at step 0 not written: 1 weight tensor\(s\) hold "
                       r"NaN or infinite values \(encoder\.bert\.embeddings\.word_embeddings\.weight\)"):
        module.on_save_checkpoint({})


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
