"""Configs composed from conf/ as ``run.py`` composes them."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import declutr.config.resolvers  # noqa: F401  (registers the resolvers conf/ interpolates)
from tests.helpers.paths import DATA_DIR, ROOT


def compose_hydra(*overrides: str) -> DictConfig:
    """The full config of ``run.py [-m] <overrides>``, the ``hydra`` node included (launcher, sweeper)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


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
