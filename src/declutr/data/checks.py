"""Start-up checks of the data settings, run before a model is loaded: a bad setting fails in seconds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from declutr.data.accounting import totals_by_reason
from declutr.errors import DeclutrConfigError


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
        f"No usable document in {_corpus(datamodule)} ({counts}). Each document needs "
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


def _corpus(datamodule) -> str:
    """How the user named the corpus: its data.files, or data.hf_dataset."""
    if datamodule.files:
        return f"data.files={[str(f) for f in datamodule.files][:5]}"
    return "data.hf_dataset=" + ", ".join(repr(source.name) for source in datamodule.sources)
