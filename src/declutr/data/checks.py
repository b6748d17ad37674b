"""Start-up checks of the data settings, run before a model is loaded: a bad setting fails in seconds. Each reads the
sampler through its interface (:class:`~declutr.data.sampler.Sampler`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from declutr.data.accounting import totals_by_reason
from declutr.data.sampler import MEMBERS, Sampler
from declutr.errors import DeclutrConfigError
from declutr.model.huggingface import model_max_tokens


def check_is_sampler(sampler) -> None:
    """What ``data.sampler`` builds has every member of :class:`~declutr.data.sampler.Sampler`: a sampler written for
    a new experiment that lacks one fails here, naming it, not in a DataLoader worker."""
    missing = [name for name in MEMBERS if not hasattr(sampler, name)]
    if missing:
        raise DeclutrConfigError(
            f"data.sampler builds a {type(sampler).__name__}, which lacks {', '.join(missing)}: a sampler needs every "
            f"member of declutr.data.sampler.Sampler ({', '.join(MEMBERS)}; see their docstrings, and "
            "declutr.data.windows.WindowSampler for a short example)."
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
        f"No usable document in {_corpus(datamodule)} ({counts}). Each document needs "
        f"{dataset.sampler.requirement()}."
    )


def check_objective_fits_sampler(sampler: Sampler, model: Mapping) -> None:
    """A sampler without positives (``data/sampler=windows``) leaves the contrastive objective nothing to contrast."""
    if not sampler.has_positives and model.get("contrastive_weight", 0) > 0:
        raise DeclutrConfigError(
            f"data.sampler={type(sampler).__name__} gives no positives, so model.contrastive_weight="
            f"{model['contrastive_weight']} has nothing to contrast: set model.contrastive_weight=0 (MLM only), or use "
            "data/sampler=spans."
        )


def check_spans_fit_model(sampler: Sampler, tokenizer, encoder: Mapping) -> None:
    """The sampler's longest span plus the special tokens fits the model's positions (``encoder``: the
    ``model.encoder`` settings, whose config gives the positions: :func:`~declutr.model.huggingface.model_max_tokens`)."""
    special = tokenizer.num_special_tokens_to_add(pair=False)
    limit = model_max_tokens(tokenizer, encoder)
    if sampler.max_span_len + special > limit:
        setting = sampler.length_setting
        raise DeclutrConfigError(
            f"{setting}={sampler.max_span_len} plus {special} special tokens exceeds the model's {limit} positions: "
            f"set {setting}<={limit - special}."
        )


def _corpus(datamodule) -> str:
    """How the user named the corpus: its data.files, or data.hf_dataset."""
    if datamodule.files:
        return f"data.files={[str(f) for f in datamodule.files][:5]}"
    return "data.hf_dataset=" + ", ".join(repr(source.name) for source in datamodule.sources)
