"""Every config in conf/ composes, and every one that can run here instantiates."""

import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from declutr.data.datamodule import DeCLUTRDataModule
from declutr.model.module import DeCLUTRModule
from tests.conftest import ROOT, STATE_UNION

GROUPS = {d.name: sorted(p.stem for p in d.glob("*.yaml")) for d in (ROOT / "conf").iterdir() if d.is_dir()}
OPTIONS = [(group, option) for group, options in sorted(GROUPS.items()) for option in options if group != "hydra"]
NEEDS_HUB = {("model", "distilroberta"), ("model", "roberta_base"),
             ("experiment", "declutr_small"), ("experiment", "declutr_base")}
NEEDS_GPU = {("trainer", "gpu"), ("trainer", "ddp")}


@pytest.mark.parametrize("group, option", OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes_and_resolves(make_config, group, option):
    cfg = make_config(f"{group}={option}")
    container = OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert container["task"] == "train"


@pytest.mark.parametrize("group, option", [o for o in OPTIONS if o not in NEEDS_HUB | NEEDS_GPU],
                         ids=[f"{g}={o}" for g, o in OPTIONS if (g, o) not in NEEDS_HUB | NEEDS_GPU])
def test_every_runnable_option_instantiates(make_config, tokenizer, group, option):
    overrides = [f"{group}={option}", f"data.files=[{STATE_UNION}]"]
    if group != "model":
        overrides.append("model=tiny")
    cfg = make_config(*overrides)
    assert isinstance(instantiate(cfg.data, tokenizer=tokenizer), DeCLUTRDataModule)
    assert isinstance(instantiate(cfg.model, tokenizer=tokenizer, _convert_="all"), DeCLUTRModule)
    callbacks = [instantiate(c) for c in (cfg.callbacks or {}).values()]
    loggers = [instantiate(c) for c in (cfg.logger or {}).values()]
    trainer = instantiate(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    assert trainer.max_steps == cfg.trainer.max_steps


def test_paper_experiments_set_the_paper_settings(make_config):
    small = make_config("experiment=declutr_small")
    assert small.model.encoder.name_or_path == "distilroberta-base"
    assert (small.data.sampler.num_anchors, small.data.sampler.num_positives) == (2, 2)
    assert (small.data.sampler.min_span_len, small.data.sampler.max_span_len) == (32, 510)
    assert small.model.temperature == 0.05 and small.model.optimizer.lr == 5e-5 and small.trainer.precision == "16-mixed"
    base = make_config("experiment=declutr_base")
    assert base.model.encoder.name_or_path == "roberta-base" and base.data.sampler.max_span_len == 510


def test_gpu_and_ddp_trainers(make_config):
    assert make_config("trainer=gpu").trainer.accelerator == "gpu"
    ddp = make_config("trainer=ddp").trainer
    assert ddp.strategy == "ddp" and ddp.devices == 2


def test_every_yaml_key_is_commented():
    for path in (ROOT / "conf").rglob("*.yaml"):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            stripped = line.strip()
            if not stripped or stripped.startswith(("#", "-")) or stripped.endswith(":") or "_target_" in stripped \
                    or stripped.startswith("_partial_"):
                continue
            assert "#" in line, f"{path.relative_to(ROOT)}:{number} has no comment: {line!r}"
