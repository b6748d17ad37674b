"""The schema of the whole config: every numeric and choice setting with its type and allowed range, and the rules
between settings. ``run.py`` checks a config against it once, before any model or data is loaded, and reports
every violation together in one ``Configuration error``, each with its dotted key, its value, what is allowed and
a fix. The YAML files in ``conf/`` keep the values and their comments; this module holds only what is allowed.

A setting absent from a config (e.g. ``data.sampler.window_len`` under ``data/sampler=spans``) is not checked.
Beyond the settings, no number anywhere in the config may be infinite or NaN, and no node may hold a key that what
it is passed to does not take (:mod:`declutr.config.keys`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from declutr.config.keys import entries, unknown_keys
from declutr.data.spans import STRATEGIES
from declutr.data.token_shards import DATA_FORMATS
from declutr.errors import DeclutrConfigError
from declutr.model.embedding import LONG_TEXTS
from declutr.model.inference_precision import PRECISIONS as INFERENCE_PRECISIONS
from declutr.model.schedules import SCHEDULES

INFERENCE_PRECISION_FIX = "the encoder's precision (auto: bfloat16 where the device has it natively)"  # eval, embed
ABSENT = object()  # OmegaConf.select's default for a key the config does not have
MIN_NEGATIVES = 8  # fewer negatives from other documents per anchor than this: a warning
BATCH_FACTORS = ("data.batch_size", "trainer.devices", "trainer.num_nodes")  # their product: documents a global batch
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Setting:
    """One setting: ``kind`` ``int`` or ``float`` within ``[low, high]`` (``low_open``/``high_open``: that bound itself
    refused; never infinite or NaN), or ``choice`` among ``choices``; ``nullable``: ``null`` allowed too; ``each``: a
    non-empty list (of exactly ``length`` items, if given) whose every item is checked; ``fix`` says what it means."""

    key: str
    kind: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple = ()
    nullable: bool = False
    each: bool = False
    length: int | None = None
    fix: str = ""

    def allowed(self) -> str:
        if self.kind == "choice":
            text = "one of " + ", ".join(str(c) for c in self.choices)
        else:
            low = "" if self.low is None else f"{'>' if self.low_open else '>='} {self.low:g}"
            high = "" if self.high is None else f"{'<' if self.high_open else '<='} {self.high:g}"
            text = f"{'an integer' if self.kind == 'int' else 'a finite number'}" + (
                f" {' and '.join(x for x in (low, high) if x)}" if low or high else "")
        if self.each:
            text = f"a list of {self.length or 'one or more'} items, each {text}"
        return text + (", or null" if self.nullable else "")

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, or ``None``."""
        if value is None:
            return None if self.nullable else "null is not allowed"
        if not self.each:
            return self._item_problem(value)
        if not isinstance(value, ListConfig | list | tuple):
            return "not a list"
        if not value or (self.length is not None and len(value) != self.length):
            return f"{len(value)} items"
        why = next(((i, w) for i, item in enumerate(value) if (w := self._item_problem(item))), None)
        return None if why is None else f"item {why[0]}: {why[1]}"

    def _item_problem(self, value: Any) -> str | None:
        if self.kind == "choice":
            return None if value in self.choices else "not a known choice"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return "not a number"
        if self.kind == "int" and not isinstance(value, int):
            return "not an integer"
        if math.isnan(value):
            return "not a number"
        if math.isinf(value):  # no upper bound would let inf through: it makes the loss constant or NaN
            return "not finite"
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return "too small"
        if self.high is not None and (value > self.high or (self.high_open and value == self.high)):
            return "too large"
        return None


def _int(key: str, low: float | None = None, high: float | None = None, nullable: bool = False, each: bool = False,
         fix: str = "") -> Setting:
    return Setting(key, "int", low, high, nullable=nullable, each=each, fix=fix)


def _float(key: str, low: float | None = None, high: float | None = None, low_open: bool = False,
           high_open: bool = False, nullable: bool = False, each: bool = False, length: int | None = None,
           fix: str = "") -> Setting:
    return Setting(key, "float", low, high, low_open, high_open, nullable=nullable, each=each, length=length, fix=fix)


def _choice(key: str, choices: tuple, nullable: bool = False, fix: str = "") -> Setting:
    return Setting(key, "choice", choices=tuple(choices), nullable=nullable, fix=fix)


PRECISIONS = ("64-true", "64", "32-true", "32", "16-mixed", "16", "bf16-mixed", "bf16", "16-true", "bf16-true")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")

SCHEMA: tuple[Setting, ...] = (
    _int("seed", 0, 2**32 - 1, nullable=True, fix="the random seed"),
    # data
    _int("data.batch_size", 1, fix="documents per step per device"),
    _int("data.seed", 0, 2**32 - 1, fix="the shuffling, span and masking seed (by default: seed)"),
    _float("data.mlm_probability", 0, 1, low_open=True, fix="the share of anchor tokens masked for MLM"),
    _int("data.num_workers", 0, fix="DataLoader worker processes (0: read in the main process)"),
    _int("data.prefetch_factor", 1, fix="batches each worker prepares ahead"),
    _int("data.shuffle_buffer", 0, fix="documents shuffled together (0: no shuffling)"),
    _float("data.max_bad_fraction", 0, 1, fix="the share of unreadable documents tolerated"),
    _choice("data.format", DATA_FORMATS, fix="how the corpus is stored"),
    _choice("data.text_split", ("file", "line", "paragraph"), fix="what one document is in a text file"),
    _int("data.sampler.num_anchors", 1, fix="anchors per document (A)"),
    _int("data.sampler.num_positives", 1, fix="positives per anchor (P)"),
    _int("data.sampler.min_span_len", 1, fix="the shortest span in tokens"),
    _int("data.sampler.max_span_len", 1, fix="the longest span in tokens"),
    _choice("data.sampler.strategy", STRATEGIES, fix="where positives are sampled relative to their anchor"),
    _int("data.sampler.window_len", 1, fix="tokens per MLM window"),
    _int("data.sampler.windows_per_document", 1, nullable=True, fix="windows per document (null: all of them)"),
    # model
    _float("model.temperature", 0, low_open=True, fix="the NT-Xent temperature (the paper: 0.05)"),
    _float("model.contrastive_weight", 0, fix="the weight of the contrastive loss (0: off)"),
    _float("model.mlm_weight", 0, fix="the weight of the MLM loss (0: off)"),
    _int("model.max_nonfinite_steps", 1, fix="non-finite steps in a row before the run stops"),
    _float("model.warmup_fraction", 0, 1, fix="the share of the steps with LR warm-up"),
    _choice("model.schedule", SCHEDULES, fix="the learning-rate schedule"),
    _float("model.schedule_ratio", 1, fix="slanted_triangular's peak lr over its lowest"),
    _int("model.grad_cache.chunk_size", 1, nullable=True, fix="GradCache's sequences per chunk (null: off)"),
    _float("model.optimizer.lr", 0, low_open=True, fix="the learning rate"),
    _float("model.optimizer.eps", 0, low_open=True, fix="AdamW's epsilon"),
    _float("model.optimizer.weight_decay", 0, fix="AdamW's weight decay"),
    _float("model.optimizer.betas", 0, 1, high_open=True, each=True, length=2,
           fix="AdamW's decay rates of its moment estimates, e.g. [0.9,0.999]"),
    _choice("model.encoder.attn_implementation", ("eager", "sdpa", "flash_attention_2"), nullable=True,
            fix="the attention kernels"),
    # trainer
    _int("trainer.max_steps", -1, fix="optimizer steps, also the LR schedule's length; -1: bounded by trainer.max_epochs"),
    _int("trainer.max_epochs", 1, nullable=True, fix="a bound on epochs (null: steps alone)"),
    _int("trainer.devices", 1, fix="processes or GPUs per node"),
    _int("trainer.num_nodes", 1, fix="nodes"),
    _int("trainer.accumulate_grad_batches", 1, fix="batches per optimizer step"),
    _int("trainer.log_every_n_steps", 1, fix="steps between logged points"),
    _float("trainer.gradient_clip_val", 0, nullable=True, fix="the gradient norm clipped to (0 or null: off)"),
    _choice("trainer.precision", PRECISIONS, fix="Lightning's precision"),
    _choice("trainer.accelerator", ACCELERATORS, fix="the hardware"),
    # callbacks
    _int("callbacks.stsb_dev.every_n_steps", 1, fix="steps between periodic evaluations"),
    _int("callbacks.stsb_dev.batch_size", 1, fix="sentences per forward pass"),
    _int("callbacks.stsb_dev.max_examples", 10, nullable=True, fix="examples per split (null: all)"),
    _int("callbacks.model_checkpoint.save_top_k", -1, fix="best checkpoints kept (-1: all, 0: none)"),
    _choice("callbacks.model_checkpoint.mode", ("max", "min"), fix="whether a higher monitored score is better"),
    _int("callbacks.model_checkpoint.every_n_train_steps", 0, nullable=True,
         fix="steps between checkpoints (by default: after each evaluation; 0: none by steps)"),
    _int("callbacks.span_log.batches", 1, fix="batches whose span lengths are logged"),
    _int("callbacks.span_log.examples", 0, fix="anchors shown as text"),
    _int("callbacks.progress_bar.refresh_rate", 0, fix="steps between progress-bar refreshes (0: off)"),
    # evaluation
    _int("eval.batch_size", 1, fix="sentences per forward pass (every evaluation)"),
    _int("eval.max_examples", 10, nullable=True, fix="examples per split (null: all)"),
    _int("eval.seed", 0, 2**32 - 1, fix="the subsampling and cross-validation seed"),
    _choice("eval.representation", ("last_layer", "word_embeddings"), fix="what is mean-pooled"),
    _int("eval.protocol.kfold", 2, fix="cross-validation folds"),
    _float("eval.protocol.c_values", 0, low_open=True, each=True, fix="the logistic-regression C grid"),
    _int("eval.protocol.seed", 0, 2**32 - 1, fix="the fold and solver seed (by default: eval.seed)"),
    _int("eval.protocol.max_iter", 1, fix="the solver's iterations"),
    _int("eval.protocol.n_jobs", 1, nullable=True, fix="processes fitting folds in parallel (null: one per core)"),
    _choice("eval.precision", INFERENCE_PRECISIONS, fix=INFERENCE_PRECISION_FIX),
    # embed, export, prepare, reproduce
    _int("embed.batch_size", 1, fix="texts per forward pass"),
    _int("embed.block_size", 1, fix="texts read and written at a time"),
    _int("embed.max_length", 2, nullable=True, fix="tokens per text (null: the model's limit)"),
    _choice("embed.long_texts", LONG_TEXTS, fix="what happens to texts longer than the window"),
    _choice("embed.precision", INFERENCE_PRECISIONS, fix=INFERENCE_PRECISION_FIX),
    _int("export.max_length", 2, nullable=True, fix="the exported window in tokens (null: the model's)"),
    _int("prepare.chunk_words", 1, fix="words per document chunk"),
    _int("prepare.min_tokens", 1, fix="the shortest document kept"),
    _int("prepare.shard_size", 1, fix="documents per shard"),
    _int("prepare.num_proc", 1, nullable=True, fix="processes that tokenise (null: the cores available)"),
    _int("reproduce.seeds", 0, 2**32 - 1, each=True, fix="the seeds every axis runs with"),
    _float("reproduce.learning_rates", 0, low_open=True, each=True, fix="the learning rates the lr stage tries"),
    _int("reproduce.lr_steps", 1, nullable=True, fix="steps of each lr probe (null: as long as the axes' runs)"),
    _int("reproduce.parallel", 1, fix="jobs at a time"),
)


def _span_lengths(cfg: DictConfig) -> list[str]:
    low, high = (OmegaConf.select(cfg, f"data.sampler.{k}_span_len", default=None) for k in ("min", "max"))
    if isinstance(low, int) and isinstance(high, int) and low > high:
        return [f"data.sampler.min_span_len={low} is above data.sampler.max_span_len={high}: the shortest span "
                f"must be <= the longest; set data.sampler.min_span_len<={high}."]
    return []


def _objective(cfg: DictConfig) -> list[str]:
    weights = [OmegaConf.select(cfg, f"model.{k}_weight", default=None) for k in ("contrastive", "mlm")]
    if all(isinstance(w, int | float) and not isinstance(w, bool) and w == 0 for w in weights):
        return ["model.contrastive_weight=0 and model.mlm_weight=0 leave nothing to train: set either above 0."]
    return []


def _chunk_sizes(cfg: DictConfig) -> list[str]:
    cache = OmegaConf.select(cfg, "model.grad_cache.chunk_size", default=None)
    chunk = OmegaConf.select(cfg, "model.chunk_size", default=None)
    if cache is not None and isinstance(chunk, int) and not isinstance(chunk, bool) and chunk != cache:
        return [f"model.chunk_size={chunk} with model.grad_cache.chunk_size={cache}: GradCache encodes in chunks of "
                f"its own size, so model.chunk_size would be ignored; set model.chunk_size=auto (or ={cache})."]
    return []


def _wandb_model_upload(cfg: DictConfig) -> list[str]:
    if OmegaConf.select(cfg, "logger.wandb.log_model", default=False) and \
            OmegaConf.select(cfg, "logger.wandb.offline", default=False):
        return ["logger.wandb.log_model=true with logger.wandb.offline=true: Lightning uploads models only online; "
                "set logger.wandb.offline=false (with WANDB_MODE=offline the run still stays on disk), or "
                "logger.wandb.log_model=false."]
    return []


def _run_length(cfg: DictConfig) -> list[str]:
    steps = OmegaConf.select(cfg, "trainer.max_steps", default=None)
    epochs = OmegaConf.select(cfg, "trainer.max_epochs", default=None)
    if steps == 0:
        return ["trainer.max_steps=0 trains nothing: set it to the number of optimizer steps (or -1 with "
                "trainer.max_epochs)."]
    if steps == -1 and epochs is None:
        return ["trainer.max_steps=-1 with trainer.max_epochs=null leaves the run unbounded (the corpus is a stream): "
                "set trainer.max_steps, or trainer.max_epochs."]
    return []


def _data_seed(cfg: DictConfig) -> list[str]:
    """The stream's generators take no null seed (``numpy.random.default_rng([None, epoch])`` raises)."""
    if OmegaConf.select(cfg, "data.seed", default=ABSENT) is None:  # null itself is refused: this follows seed=null
        return ["data.seed=null (it follows seed=null): the data stream seeds its shuffling, spans and masking "
                "with it; set seed (or data.seed) to an integer."]
    return []


def _contrastive_batch(cfg: DictConfig) -> tuple[int, int] | None:
    """``(documents in a global batch, anchors per document)`` when the contrastive loss is on, else ``None``.

    The NT-Xent of :func:`declutr.model.losses.nt_xent_loss` runs over the anchors (and mean positives) of every
    process's batch, gathered; gradient accumulation computes it per micro-batch and GradCache per batch, so
    neither adds documents to it."""
    weight = OmegaConf.select(cfg, "model.contrastive_weight", default=0)
    anchors = OmegaConf.select(cfg, "data.sampler.num_anchors", default=None)
    if not (weight > 0 and isinstance(anchors, int)):  # windows (MLM) have no anchors: checked with the sampler
        return None
    documents = math.prod(OmegaConf.select(cfg, key, default=1) for key in BATCH_FACTORS)
    return documents, anchors


def _batch_text(cfg: DictConfig) -> str:
    return " x ".join(f"{key}={OmegaConf.select(cfg, key, default=1)}" for key in BATCH_FACTORS)


def _one_document(cfg: DictConfig) -> list[str]:
    """In the NT-Xent each anchor's negatives are every other anchor and mean positive of the global batch: with one
    document they are all from the anchor's own document, and with one anchor there are none."""
    batch = _contrastive_batch(cfg)
    if batch is None or batch[0] > 1:
        return []
    anchors = batch[1]
    why = ("its one anchor (data.sampler.num_anchors=1) has no negative: the contrastive loss is exactly 0 at every "
           "step" if anchors == 1 else
           f"all {2 * (anchors - 1)} negatives of each anchor (the other anchors of its document and their positives) "
           "come from its own document: the contrastive loss only pushes apart spans of one document")
    return [f"{_batch_text(cfg)} puts one document in each step, and {why}. Raise data.batch_size (each anchor then "
            "has 2 x (documents - 1) x data.sampler.num_anchors negatives from other documents), or set "
            "model.contrastive_weight=0 to train MLM only."]


def _few_negatives(cfg: DictConfig) -> list[str]:
    """Fewer than ``MIN_NEGATIVES`` negatives from other documents per anchor: the loss runs, but learns little."""
    batch = _contrastive_batch(cfg)
    if batch is None or batch[0] < 2:
        return []
    documents, anchors = batch
    others = 2 * (documents - 1) * anchors
    if others >= MIN_NEGATIVES:
        return []
    return [f"{_batch_text(cfg)} = {documents} documents a step: each anchor has {others} negatives from other "
            f"documents (each one's {anchors} anchor(s) and their mean positives) and {2 * (anchors - 1)} from its "
            f"own, fewer than {MIN_NEGATIVES} from other documents: the contrastive task is easy and its signal weak. "
            "Raise data.batch_size (model.grad_cache.chunk_size fits a larger batch in the same memory)."]


RULES: tuple[Callable[[DictConfig], list[str]], ...] = (_span_lengths, _objective, _chunk_sizes, _run_length,
                                                        _wandb_model_upload, _data_seed, _one_document)
CAUTIONS: tuple[Callable[[DictConfig], list[str]], ...] = (_few_negatives,)  # allowed, but logged as warnings


def _interpolated(cfg: DictConfig, key: str) -> bool:
    parent, _, name = key.rpartition(".")
    node = OmegaConf.select(cfg, parent) if parent else cfg
    return isinstance(node, DictConfig) and OmegaConf.is_interpolation(node, name)


def _nonfinite(cfg: DictConfig) -> list[str]:
    """Every infinite or NaN number outside the settings (which check their own), e.g. ``+model.optimizer.x=inf``."""
    covered = {setting.key for setting in SCHEMA}
    return [f"{key}={value!r}: not a finite number; allowed: a finite number (an infinite or NaN setting makes what it "
            "enters constant or NaN; set it to a finite value)."
            for key, value in entries(cfg)
            if isinstance(value, float) and not math.isfinite(value) and re.sub(r"\[\d+\]$", "", key) not in covered]


def violations(cfg: DictConfig) -> list[str]:
    """Every setting of ``cfg`` outside the schema, every infinite or NaN number, every key that what its node is
    passed to does not take, and every broken rule between settings, one line each."""
    found = []
    for setting in SCHEMA:
        try:
            value = OmegaConf.select(cfg, setting.key, default=ABSENT)
        except Exception:  # noqa: BLE001 (an interpolation that cannot resolve: reported where it is used)
            continue
        if value is ABSENT or _interpolated(cfg, setting.key):  # an interpolated value is checked at its source
            continue
        why = setting.problem(value)
        if why:
            found.append(f"{setting.key}={value!r}: {why}; allowed: {setting.allowed()} ({setting.fix}).")
    found += _nonfinite(cfg) + unknown_keys(cfg)
    if not found:  # the rules assume settings of the right types
        for rule in RULES:
            found += rule(cfg)
    return found


def cautions(cfg: DictConfig) -> list[str]:
    """Settings that run, but probably not as intended, one line each."""
    return [line for caution in CAUTIONS for line in caution(cfg)]


def refusal(found: list[str]) -> str:
    """The message refusing a config: how many settings, then one line each."""
    return f"{len(found)} setting(s) refused:\n  - " + "\n  - ".join(found)


def validate(cfg: DictConfig) -> None:
    """Raise one :class:`DeclutrConfigError` listing every violation of ``cfg``, if any."""
    found = violations(cfg)
    if found:
        raise DeclutrConfigError(refusal(found))


def log_cautions(cfg: DictConfig) -> None:
    """Log each caution of a training config: once every check has passed (a refused run writes nothing, its log
    included), and never for the other tasks, which do not train."""
    for line in cautions(cfg):
        log.warning(line)
