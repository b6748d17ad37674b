"""Configs composed from conf/ as ``run.py`` composes them."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf, open_dict

import declutr.config.resolvers  # noqa: F401  (registers the resolvers conf/ interpolates)
from declutr.config.primary import TASKS, config_name
from tests.helpers.paths import DATA_DIR, ROOT

# Overrides under which a setting is part of the composed config (most are there by default).
PRESENT_WITH = {"data.sampler.window_len": ("data/sampler=windows",),
                "data.sampler.windows_per_document": ("data/sampler=windows",),
                "eval.max_examples": ("task=eval",), "eval.protocol.c_values": ("task=eval", "eval=quick"),
                "eval.protocol.kfold": ("task=eval", "eval=quick"), "eval.protocol.max_iter": ("task=eval", "eval=quick"),
                "eval.protocol.n_jobs": ("task=eval", "eval=quick"),
                "trainer.num_nodes": ("trainer=ddp_cpu",), "logger.wandb.log_model": ("logger=wandb",),
                "logger.wandb.offline": ("logger=wandb",), "reproduce.lr_steps": ("task=reproduce",),
                "reproduce.parallel": ("task=reproduce",),
                "model.optimizer.betas": ("+model.optimizer.betas=[0.9,0.999]",)}  # torch's default, not in conf/


def compose_hydra(*overrides: str) -> DictConfig:
    """The full config of ``run.py [-m] <overrides>`` (``conf/<task>.yaml``), the ``hydra`` node included (launcher,
    sweeper)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name(list(overrides), ROOT / "conf"), overrides=list(overrides), return_hydra_config=True)


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``run.py`` would see for these overrides, with a Hydra runtime so ``${hydra:...}`` resolves."""
    cfg = compose_hydra(*overrides)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.paths.data_dir = str(DATA_DIR)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in run.py, where the job's config has no hydra node
    return cfg


def config_holding(key: str) -> DictConfig:
    """A copy of the job config (no ``hydra`` node) composed with the overrides under which ``key`` is part of it
    (:data:`PRESENT_WITH`; none for most settings). A key of a task's own section (``prepare.min_tokens``) is looked
    up in that task's config (``task=prepare``) when the training config does not hold it."""
    overrides = PRESENT_WITH.get(key, ())
    cfg = _job_config(overrides)
    section = key.split(".")[0]
    if (OmegaConf.select(cfg, key, default=_ABSENT, throw_on_resolution_failure=False) is _ABSENT and section in TASKS
            and not any(o.startswith("task=") for o in overrides)):
        cfg = _job_config((f"task={section}", *overrides))
    return cfg.copy()


_ABSENT = object()


@cache
def _job_config(overrides: tuple[str, ...]) -> DictConfig:
    cfg = compose_hydra(*overrides)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg
