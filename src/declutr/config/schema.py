"""The schema of the whole config: every numeric and choice setting with its type and allowed range, and the rules
between settings. ``run.py`` checks a config against it once, before any model or data is loaded, and reports
every violation together in one ``Configuration error``, each with its dotted key, its value, what is allowed and
a fix. The YAML files in ``conf/`` keep the values and their comments; this module holds only what is allowed.

A setting absent from a config (e.g. ``data.sampler.window_len`` under ``data/sampler=spans``) is not checked.
Each range is written here once: a class built in Python rather than from a config applies the same entries with
:func:`check_arguments`, and repeats no bound in its own code. Setting paths that code elsewhere reads are named in
:mod:`declutr.config.settings`.
Beyond the settings, no number anywhere in the config may be infinite or NaN, and no node may hold a key that what
it is passed to does not take (:mod:`declutr.config.keys`).
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

from declutr.config.keys import entries, unknown_keys
from declutr.config.settings import (
    BATCH_SIZE,
    CHUNK_SIZE,
    CONTRASTIVE_WEIGHT,
    DATA_SEED,
    DEVICES,
    EVAL_MAX_EXAMPLES,
    GRAD_CACHE_CHUNK_SIZE,
    LR,
    MAX_EPOCHS,
    MAX_SPAN_LEN,
    MAX_STEPS,
    MIN_SPAN_LEN,
    MLM_WEIGHT,
    NUM_ANCHORS,
    NUM_NODES,
    NUM_POSITIVES,
    NUM_WORKERS,
    PROTOCOL_C_VALUES,
    PROTOCOL_KFOLD,
    PROTOCOL_N_JOBS,
    REPRODUCE_PARALLEL,
    SEED,
    STRATEGY,
    TEMPERATURE,
    WANDB_LOG_MODEL,
    WANDB_OFFLINE,
    WINDOW_LEN,
    WINDOWS_PER_DOCUMENT,
)
from declutr.data.spans import STRATEGIES
from declutr.data.token_shards import DATA_FORMATS
from declutr.errors import DeclutrConfigError
from declutr.model.embedding import LONG_TEXTS
from declutr.model.inference_precision import PRECISIONS as INFERENCE_PRECISIONS
from declutr.model.schedules import SCHEDULES
from declutr.model.word_embeddings import REPRESENTATIONS  # (not from declutr.encoder, which imports Lightning)

INFERENCE_PRECISION_FIX = "the encoder's precision (auto: bfloat16 where the device has it natively)"  # eval, embed
ABSENT = object()  # OmegaConf.select's default for a key the config does not have
MIN_NEGATIVES = 8  # fewer negatives from other documents per anchor than this: a warning
BATCH_FACTORS = (BATCH_SIZE, DEVICES, NUM_NODES)  # their product: documents a global batch
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
    _int(SEED, 0, 2**32 - 1, nullable=True, fix="the random seed"),
    # data
    _int(BATCH_SIZE, 1, fix="documents per step per device"),
    _int(DATA_SEED, 0, 2**32 - 1, fix="the shuffling, span and masking seed (by default: seed)"),
    _float("data.mlm_probability", 0, 1, low_open=True, fix="the share of anchor tokens masked for MLM"),
    _int(NUM_WORKERS, 0, fix="DataLoader worker processes (0: read in the main process)"),
    _int("data.prefetch_factor", 1, fix="batches each worker prepares ahead"),
    _int("data.shuffle_buffer", 0, fix="documents shuffled together (0: no shuffling)"),
    _float("data.max_bad_fraction", 0, 1, fix="the share of unreadable documents tolerated"),
    _choice("data.format", DATA_FORMATS, fix="how the corpus is stored"),
    _choice("data.text_split", ("file", "line", "paragraph"), fix="what one document is in a text file"),
    _int(NUM_ANCHORS, 1, fix="anchors per document (A)"),
    _int(NUM_POSITIVES, 1, fix="positives per anchor (P)"),
    _int(MIN_SPAN_LEN, 1, fix="the shortest span in tokens"),
    _int(MAX_SPAN_LEN, 1, fix="the longest span in tokens"),
    _choice(STRATEGY, STRATEGIES, fix="where positives are sampled relative to their anchor"),
    _int(WINDOW_LEN, 1, fix="tokens per MLM window"),
    _int(WINDOWS_PER_DOCUMENT, 1, nullable=True, fix="windows per document (null: all of them)"),
    # model
    _float(TEMPERATURE, 0, low_open=True, fix="the contrastive loss's temperature (the paper: 0.05)"),
    _float(CONTRASTIVE_WEIGHT, 0, fix="the weight of the contrastive loss (0: off)"),
    _float(MLM_WEIGHT, 0, fix="the weight of the MLM loss (0: off)"),
    _int("model.max_nonfinite_steps", 1, fix="non-finite steps in a row before the run stops"),
    _float("model.warmup_fraction", 0, 1, fix="the share of the steps with LR warm-up"),
    _choice("model.schedule", SCHEDULES, fix="the learning-rate schedule"),
    _float("model.schedule_ratio", 1, fix="slanted_triangular's peak lr over its lowest"),
    _int(GRAD_CACHE_CHUNK_SIZE, 1, nullable=True, fix="GradCache's sequences per chunk (null: off)"),
    _float(LR, 0, low_open=True, fix="the learning rate"),
    _float("model.optimizer.eps", 0, low_open=True, fix="AdamW's epsilon"),
    _float("model.optimizer.weight_decay", 0, fix="AdamW's weight decay"),
    _float("model.optimizer.betas", 0, 1, high_open=True, each=True, length=2,
           fix="AdamW's decay rates of its moment estimates, e.g. [0.9,0.999]"),
    _choice("model.encoder.attn_implementation", ("eager", "sdpa", "flash_attention_2"), nullable=True,
            fix="the attention kernels"),
    # trainer
    _int(MAX_STEPS, -1, fix="optimizer steps, also the LR schedule's length; -1: bounded by trainer.max_epochs"),
    _int(MAX_EPOCHS, 1, nullable=True, fix="a bound on epochs (null: steps alone)"),
    _int(DEVICES, 1, fix="processes or GPUs per node"),
    _int(NUM_NODES, 1, fix="nodes"),
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
    _int(EVAL_MAX_EXAMPLES, 10, nullable=True, fix="examples per split (null: all)"),
    _int("eval.seed", 0, 2**32 - 1, fix="the subsampling and cross-validation seed"),
    _choice("eval.representation", REPRESENTATIONS, fix="what is mean-pooled"),
    _int(PROTOCOL_KFOLD, 2, fix="cross-validation folds"),
    _float(PROTOCOL_C_VALUES, 0, low_open=True, each=True, fix="the logistic-regression C grid"),
    _int("eval.protocol.seed", 0, 2**32 - 1, fix="the fold and solver seed (by default: eval.seed)"),
    _int("eval.protocol.max_iter", 1, fix="the solver's iterations"),
    _int(PROTOCOL_N_JOBS, 1, nullable=True, fix="processes fitting folds in parallel (null: one per core)"),
    _choice("eval.precision", INFERENCE_PRECISIONS, fix=INFERENCE_PRECISION_FIX),
    # embed, export, prepare, tokenizer, reproduce
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
    _int("tokenizer.vocab_size", 6, fix="tokens in the vocabulary, its 5 special tokens included"),
    _int("tokenizer.min_frequency", 1, fix="how often a merge must occur in the corpus"),
    _int("reproduce.seeds", 0, 2**32 - 1, each=True, fix="the seeds every axis runs with"),
    _float("reproduce.learning_rates", 0, low_open=True, each=True, fix="the learning rates the lr stage tries"),
    _int("reproduce.lr_steps", 1, nullable=True, fix="steps of each lr probe (null: as long as the axes' runs)"),
    _int(REPRODUCE_PARALLEL, 1, fix="jobs at a time"),
)


def _span_lengths(cfg: DictConfig) -> list[str]:
    low, high = (OmegaConf.select(cfg, key, default=None) for key in (MIN_SPAN_LEN, MAX_SPAN_LEN))
    if isinstance(low, int) and isinstance(high, int) and low > high:
        return [f"{MIN_SPAN_LEN}={low} is above {MAX_SPAN_LEN}={high}: the shortest span must be <= the longest; "
                f"set {MIN_SPAN_LEN}<={high}."]
    return []


def _objective(cfg: DictConfig) -> list[str]:
    weights = [OmegaConf.select(cfg, key, default=None) for key in (CONTRASTIVE_WEIGHT, MLM_WEIGHT)]
    if all(isinstance(w, int | float) and not isinstance(w, bool) and w == 0 for w in weights):
        return [f"{CONTRASTIVE_WEIGHT}=0 and {MLM_WEIGHT}=0 leave nothing to train: set either above 0."]
    return []


def _chunk_sizes(cfg: DictConfig) -> list[str]:
    cache = OmegaConf.select(cfg, GRAD_CACHE_CHUNK_SIZE, default=None)
    chunk = OmegaConf.select(cfg, CHUNK_SIZE, default=None)
    if cache is not None and isinstance(chunk, int) and not isinstance(chunk, bool) and chunk != cache:
        return [f"{CHUNK_SIZE}={chunk} with {GRAD_CACHE_CHUNK_SIZE}={cache}: GradCache encodes in chunks of its own "
                f"size, so {CHUNK_SIZE} would be ignored; set {CHUNK_SIZE}=auto (or ={cache})."]
    return []


def _wandb_model_upload(cfg: DictConfig) -> list[str]:
    if OmegaConf.select(cfg, WANDB_LOG_MODEL, default=False) and OmegaConf.select(cfg, WANDB_OFFLINE, default=False):
        return [f"{WANDB_LOG_MODEL}=true with {WANDB_OFFLINE}=true: Lightning uploads models only online; set "
                f"{WANDB_OFFLINE}=false (with WANDB_MODE=offline the run still stays on disk), or "
                f"{WANDB_LOG_MODEL}=false."]
    return []


def _run_length(cfg: DictConfig) -> list[str]:
    steps = OmegaConf.select(cfg, MAX_STEPS, default=None)
    epochs = OmegaConf.select(cfg, MAX_EPOCHS, default=None)
    if steps == 0:
        return [f"{MAX_STEPS}=0 trains nothing: set it to the number of optimizer steps (or -1 with {MAX_EPOCHS})."]
    if steps == -1 and epochs is None:
        return [f"{MAX_STEPS}=-1 with {MAX_EPOCHS}=null leaves the run unbounded (the corpus is a stream): set "
                f"{MAX_STEPS}, or {MAX_EPOCHS}."]
    return []


def _data_seed(cfg: DictConfig) -> list[str]:
    """The stream's generators take no null seed (``numpy.random.default_rng([None, epoch])`` raises)."""
    if OmegaConf.select(cfg, DATA_SEED, default=ABSENT) is None:  # null itself is refused: this follows seed=null
        return [f"{DATA_SEED}=null (it follows {SEED}=null): the data stream seeds its shuffling, spans and masking "
                f"with it; set {SEED} (or {DATA_SEED}) to an integer."]
    return []


def _contrastive_batch(cfg: DictConfig) -> tuple[int, int] | None:
    """``(documents in a global batch, anchors per document)`` when the contrastive loss is on, else ``None``.

    The NT-Xent of :class:`declutr.model.losses.NTXentLoss` runs over the anchors (and mean positives) of every
    process's batch, gathered; gradient accumulation computes it per micro-batch and GradCache per batch, so
    neither adds documents to it."""
    weight = OmegaConf.select(cfg, CONTRASTIVE_WEIGHT, default=0)
    anchors = OmegaConf.select(cfg, NUM_ANCHORS, default=None)
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
    why = (f"its one anchor ({NUM_ANCHORS}=1) has no negative: the contrastive loss is exactly 0 at every step"
           if anchors == 1 else
           f"all {2 * (anchors - 1)} negatives of each anchor (the other anchors of its document and their positives) "
           "come from its own document: the contrastive loss only pushes apart spans of one document")
    return [f"{_batch_text(cfg)} puts one document in each step, and {why}. Raise {BATCH_SIZE} (each anchor then "
            f"has 2 x (documents - 1) x {NUM_ANCHORS} negatives from other documents), or set "
            f"{CONTRASTIVE_WEIGHT}=0 to train MLM only."]


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
            f"Raise {BATCH_SIZE} ({GRAD_CACHE_CHUNK_SIZE} fits a larger batch in the same memory)."]


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


def _out_of_range(cfg: DictConfig) -> list[str]:
    """Every setting of ``cfg`` outside its schema entry, one line each."""
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
    return found


def _broken_rules(cfg: DictConfig) -> list[str]:
    return [line for rule in RULES for line in rule(cfg)]


def violations(cfg: DictConfig) -> list[str]:
    """Every setting of ``cfg`` outside the schema, every infinite or NaN number, every key that what its node is
    passed to does not take, and every broken rule between settings, one line each."""
    found = _out_of_range(cfg) + _nonfinite(cfg) + unknown_keys(cfg)
    return found or _broken_rules(cfg)  # the rules assume settings of the right types


def check_arguments(values: Mapping[str, Any]) -> None:
    """The check of :func:`validate` for a class built in Python, which no config check precedes: ``values`` maps
    setting paths (:mod:`declutr.config.settings`) to the arguments that hold them, e.g.
    ``{PROTOCOL_KFOLD: kfold}``; raises the same refusal ``run.py`` gives, from the same schema entries and rules
    between settings, so each range is written once."""
    cfg = OmegaConf.create(flags={"allow_objects": True})
    for key, value in values.items():
        OmegaConf.update(cfg, key, value, force_add=True)
    found = _out_of_range(cfg) or _broken_rules(cfg)
    if found:
        raise DeclutrConfigError(refusal(found))


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
