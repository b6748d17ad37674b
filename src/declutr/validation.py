"""Checks run before a model is loaded, so a bad setting fails in seconds with a message naming the fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from pathlib import Path

from declutr.data.accounting import totals_by_reason
from declutr.data.spans import SpanSampler
from declutr.encoder import looks_local_path
from declutr.errors import DeclutrConfigError
from declutr.model.huggingface import encoder_config

# Architectures whose position ids start after the padding id (RoBERTa's), so max_position_embeddings - pad - 1 fit.
PADDING_OFFSET_POSITIONS = ("roberta", "roberta-prelayernorm", "xlm-roberta", "xlm-roberta-xl", "camembert")


def model_max_tokens(tokenizer, encoder: Mapping) -> int:
    """Longest input (special tokens included) the encoder accepts."""
    config = encoder_config(**encoder)
    positions = getattr(config, "max_position_embeddings", None)
    if positions is not None and config.model_type in PADDING_OFFSET_POSITIONS:
        positions -= config.pad_token_id + 1
    limits = [positions, tokenizer.model_max_length]
    return min(int(x) for x in limits if x is not None and x < 1_000_000)


def check_spans_fit_model(sampler: SpanSampler, tokenizer, encoder: Mapping) -> None:
    special = tokenizer.num_special_tokens_to_add(pair=False)
    limit = model_max_tokens(tokenizer, encoder)
    if sampler.max_span_len + special > limit:
        setting = sampler.LENGTH_SETTING
        raise DeclutrConfigError(
            f"{setting}={sampler.max_span_len} plus {special} special tokens exceeds the model's {limit} positions: "
            f"set {setting}<={limit - special}."
        )


def check_corpus_has_usable_document(datamodule) -> None:
    """Stream the corpus until one document can be sampled; fail with the skip counts if none can."""
    datamodule.setup("fit")
    dataset = datamodule.dataset
    skipped: Counter = Counter()
    for example in dataset:
        if example["anchors"]:
            return
        skipped.update(example["skipped"])
    by_reason = sorted(totals_by_reason(skipped).items())
    counts = ", ".join(f"{n} {reason}" for reason, n in by_reason) or "no documents at all"
    raise DeclutrConfigError(
        f"No usable document in data.files={[str(f) for f in datamodule.files][:5]} ({counts}). Each document needs "
        f"{dataset.sampler.requirement()}."
    )


def check_objective_fits_sampler(sampler, model: Mapping) -> None:
    """A sampler without positives (``data/sampler=windows``) leaves the contrastive objective nothing to contrast."""
    if not sampler.has_positives and model.get("contrastive_weight", 0) > 0:
        raise DeclutrConfigError(
            f"data.sampler={type(sampler).__name__} gives no positives, so model.contrastive_weight="
            f"{model['contrastive_weight']} has nothing to contrast: set model.contrastive_weight=0 (MLM only), or use "
            "data/sampler=spans."
        )


def check_encoder_source(encoder: Mapping) -> None:
    """``model.encoder.name_or_path`` that is meant as a local folder must hold a model (``config.json``): a base
    still to be trained, a typo or a run folder fail here, not deep inside Hugging Face's loader."""
    name = str(encoder["name_or_path"])
    path = Path(name).expanduser()
    if not (path.exists() or looks_local_path(name)):
        return  # a hub name
    if (path / "config.json").is_file():
        return
    hint = ""
    if (path / "model" / "config.json").is_file():
        hint = f" It is a run folder: use {path / 'model'}."
    elif path.name == "model" and (path.parent / "checkpoints" / "last.ckpt").is_file():
        hint = (f" Its run stopped before the end: resume it with ckpt_path={path.parent / 'checkpoints' / 'last.ckpt'}"
                " (and the run's own settings).")
    what = "does not exist" if not path.exists() else "is not a model folder (no config.json)"
    raise DeclutrConfigError(
        f"model.encoder.name_or_path={name} {what}.{hint} Pass a Hugging Face model name or a folder written by "
        "save_pretrained or by training (<run>/model); the miniature's base is made by "
        "`python run.py experiment=mlm_base`."
    )
