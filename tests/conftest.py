"""Fixtures shared by every test: the real MiniLM tokenizer, a small prepared corpus, composed Hydra configs (helpers:
tests/helpers/)."""

from __future__ import annotations

import os
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

from declutr.config.resolvers import _minilm_path
from declutr.data.prepare import prepare_corpus
from tests.helpers.configs import compose_config
from tests.helpers.paths import STATE_UNION

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def pytest_configure(config):
    """pytest-randomly shuffles the order only: its reseeding of random and numpy with the run's seed as each test
    starts would override :func:`seeded_rngs`, so a test's numbers would change with the order's seed."""
    if hasattr(config.option, "randomly_reset_seed"):  # (absent under -p no:randomly)
        config.option.randomly_reset_seed = False


@pytest.fixture(autouse=True)
def seeded_rngs():
    """Every test starts from the same global RNG state (random, numpy, torch), whatever ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tokenizer():
    from declutr.tokenizer import load_tokenizer

    return load_tokenizer(_minilm_path())


@pytest.fixture
def make_config(tmp_path):
    """``make_config(*overrides)``: a composed config writing into a fresh temporary run folder."""

    def make(*overrides: str) -> DictConfig:
        return compose_config(list(overrides), tmp_path / "run")

    yield make
    GlobalHydra.instance().clear()


@pytest.fixture(scope="session")
def prepared_corpus(tokenizer, tmp_path_factory) -> Path:
    """The 65 State of the Union addresses prepared with ``token_ids`` into 9 shards of up to 8 documents
    (read-only for the tests: copy it to change it)."""
    root = tmp_path_factory.mktemp("prepared")
    shutil.copytree(STATE_UNION, root / "raw" / "nltk_state_union")
    prepare_corpus(root / "raw", root / "corpus", tokenizer, min_tokens=100, shard_size=8, token_ids=True)
    return root / "corpus"
