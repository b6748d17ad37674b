"""Evaluation fixtures in the exact STS12-16 / SICK formats, built from the shared 25-line format samples,
and a tiny random encoder saved as a Hugging Face folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import torch
from omegaconf import OmegaConf

from declutr.config.resolvers import _minilm_path
from declutr.model.huggingface import load_masked_lm
from declutr.tokenizer import load_tokenizer
from tests.helpers.paths import DATA_DIR, ROOT

SAMPLES = DATA_DIR / "eval" / "format-samples"
STS12_SAMPLE = SAMPLES / "STS12-en-test"  # MSRpar: 25 pairs, every one with gold
STS16_SAMPLE = SAMPLES / "STS16-en-test"  # headlines: 25 pairs, only 2 with gold (empty lines = no gold)
SICK_SAMPLE = SAMPLES / "SICK_test_annotated.head25.txt"  # header + 24 pairs


def sts_year_subsets() -> dict[str, list[str]]:
    """``{"STS12-en-test": [subsets...], ...}`` as the shipped config lists them."""
    tasks = OmegaConf.load(ROOT / "conf" / "eval" / "sts.yaml").tasks
    return {f"{t.name}-en-test": list(t.subsets) for _, t in tasks.items_ex(resolve=False) if "subsets" in t}


def write_sts_dir(root: Path) -> Path:
    """A full-format STS12-16 folder: every subset of every year, copied from a format sample (``headlines``
    from STS16's, with its empty-gold lines; the others from STS12's MSRpar)."""
    for year, subsets in sts_year_subsets().items():
        (root / year).mkdir(parents=True)
        for subset in subsets:
            source, name = (STS16_SAMPLE, "headlines") if subset == "headlines" else (STS12_SAMPLE, "MSRpar")
            for kind in ("input", "gs"):
                shutil.copy(source / f"STS.{kind}.{name}.txt", root / year / f"STS.{kind}.{subset}.txt")
    return root


def write_sick_dir(root: Path) -> Path:
    root.mkdir(parents=True)
    shutil.copy(SICK_SAMPLE, root / "SICK_test_annotated.txt")
    return root


def write_tiny_model(target: Path) -> Path:
    """The architecture of ``model=tiny`` (random weights, seeded) with the MiniLM tokenizer, as an HF folder."""
    torch.manual_seed(0)
    overrides = OmegaConf.load(ROOT / "conf" / "model" / "tiny.yaml").encoder.config_overrides
    load_masked_lm(_minilm_path(), random_init=True, config_overrides=overrides).save_pretrained(target)
    load_tokenizer(_minilm_path()).save_pretrained(target)
    return target
