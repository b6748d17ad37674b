"""Checks run before a model is loaded, so a bad setting fails in seconds with a message naming the fix."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from transformers import AutoConfig

from declutr.data.accounting import totals_by_reason
from declutr.data.spans import SpanSampler
from declutr.errors import DeclutrConfigError


def model_max_tokens(tokenizer, encoder: Mapping) -> int:
    """Longest input (special tokens included) the encoder accepts."""
    config = AutoConfig.from_pretrained(str(encoder["name_or_path"]), **dict(encoder.get("config_overrides") or {}))
    limits = [getattr(config, "max_position_embeddings", None), tokenizer.model_max_length]
    return min(int(x) for x in limits if x is not None and x < 1_000_000)


def check_spans_fit_model(sampler: SpanSampler, tokenizer, encoder: Mapping) -> None:
    special = tokenizer.num_special_tokens_to_add(pair=False)
    limit = model_max_tokens(tokenizer, encoder)
    if sampler.max_span_len + special > limit:
        raise DeclutrConfigError(
            f"data.sampler.max_span_len={sampler.max_span_len} plus {special} special tokens exceeds the model's "
            f"{limit} positions: set data.sampler.max_span_len<={limit - special}."
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
        f"No usable document in data.files={[str(f) for f in datamodule.files][:5]} ({counts}). Each document needs at "
        f"least num_anchors * max_span_len * 2 = {dataset.sampler.min_doc_tokens} tokens: use longer documents, "
        "or lower data.sampler.max_span_len / data.sampler.num_anchors."
    )
