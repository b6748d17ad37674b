"""Fixtures shared by every test: the real MiniLM tokenizer, composed Hydra configs (helpers: tests/helpers/)."""

from __future__ import annotations

import os
import random

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from declutr.resolvers import _minilm_path
from tests.helpers.configs import compose_config

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(autouse=True)
def seeded_rngs():
    """Every test starts from the same global RNG state (random, numpy, torch), whatever ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tokenizer():
    from declutr.model.encoder import load_tokenizer

    return load_tokenizer(_minilm_path())


@pytest.fixture
def make_config(tmp_path):
    """``make_config(*overrides)``: a composed config writing into a fresh temporary run folder."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run")

    yield make
    GlobalHydra.instance().clear()
