"""Shared fixtures: the real shared data, the real MiniLM tokenizer, composed Hydra configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

import declutr.resolvers  # noqa: F401
from declutr.resolvers import _minilm_path
from tests.helpers.paths import DATA_DIR, ROOT

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tokenizer():
    from declutr.model.encoder import load_tokenizer

    return load_tokenizer(_minilm_path())


def compose_config(overrides: list[str], output_dir: Path) -> DictConfig:
    """The config ``run.py`` would see for these overrides, with a Hydra runtime so ``${hydra:...}`` resolves."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    with open_dict(cfg):
        cfg.hydra.runtime.output_dir = str(output_dir)
        cfg.paths.data_dir = str(DATA_DIR)
    HydraConfig.instance().set_config(cfg)
    with open_dict(cfg):
        del cfg["hydra"]  # as in run.py, where the job's config has no hydra node
    return cfg


@pytest.fixture
def make_config(tmp_path):
    """``make_config(*overrides)``: a composed config writing into a fresh temporary run folder."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run")

    yield make
    GlobalHydra.instance().clear()
