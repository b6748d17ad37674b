"""``task=train``: DeCLUTR continued pretraining, in three steps. Build: every check that can fail before the model
loads (settings, encoder, checkpoint, data, evaluation files), then the data, callbacks, loggers, trainer and
model. Fit: the model scored before training, then trained; Ctrl+C or SIGTERM saves and stops. Finish: the trained
model checked, scored and exported, with a summary. Every run ends by writing ``<run>/results.json``, its scores or
its error (:mod:`declutr.runs.record`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import Logger
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig
from transformers import PreTrainedTokenizerBase

from declutr.callbacks.data_accounting import DataAccounting
from declutr.callbacks.document_log import DocumentLog
from declutr.callbacks.embedding_eval import evaluate_module
from declutr.callbacks.interrupt import CheckpointOnInterrupt
from declutr.callbacks.random_state import RandomState
from declutr.callbacks.throughput import TokenThroughput
from declutr.config.instantiate import build
from declutr.config.schema import log_cautions, validate
from declutr.config.settings import ENCODER
from declutr.data.checks import check_corpus_has_usable_document, check_objective_fits_sampler, check_spans_fit_model
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.errors import DeclutrConfigError
from declutr.eval.suite import EvalSuite
from declutr.eval.task import EvalTask
from declutr.export import training_record, write_export
from declutr.files.checkpoints import load_checkpoint
from declutr.files.run_folder import write_hydra_files
from declutr.model.finite import check_finite_weights
from declutr.model.huggingface import check_encoder_source, check_vocabulary_fits
from declutr.model.resume import check_resume
from declutr.report.loggers import build_loggers, finish_run, log_metrics, start_runs
from declutr.runs.record import record_run
from declutr.tokenizer import load_tokenizer

log = logging.getLogger(__name__)


def run(cfg: DictConfig) -> dict:
    """Train, evaluate and save, recorded in ``<run>/results.json`` (:func:`declutr.runs.record.record_run`)."""
    return record_run(cfg, _train)


def _train(cfg: DictConfig, context: dict) -> dict:
    training = _build(cfg, context)
    before = _fit(training)
    return _finish(training, before)


@dataclass(frozen=True)
class Inputs:
    """What a run reads, each checked before the model loads: the tokenizer, the training data and the final
    evaluation tasks."""

    tokenizer: PreTrainedTokenizerBase
    datamodule: DeCLUTRDataModule
    evaluators: dict[str, EvalTask]


@dataclass(frozen=True)
class Training:
    """Everything :func:`_build` made for one run."""

    cfg: DictConfig
    inputs: Inputs
    interrupt: CheckpointOnInterrupt
    throughput: TokenThroughput | None  # None without callbacks.throughput
    loggers: list[Logger]
    trainer: L.Trainer
    module: L.LightningModule


def _checked_inputs(cfg: DictConfig) -> Inputs:
    """Everything that can be known wrong is checked before the model is loaded: every setting first."""
    validate(cfg)
    check_encoder_source(cfg.model.encoder)
    tokenizer = load_tokenizer(cfg.model.encoder.name_or_path, setting=ENCODER)
    check_vocabulary_fits(tokenizer, cfg.model.encoder)
    if cfg.get("ckpt_path"):  # a missing, damaged or mismatched checkpoint fails now, naming the file and the fix
        check_resume(load_checkpoint(cfg.ckpt_path), cfg, tokenizer, cfg.ckpt_path)
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    datamodule = build_datamodule(cfg, tokenizer)
    check_objective_fits_sampler(datamodule.sampler, cfg.model)
    check_spans_fit_model(datamodule.sampler, tokenizer, cfg.model.encoder)
    check_corpus_has_usable_document(datamodule)
    return Inputs(tokenizer, datamodule, _final_evaluators(cfg))


def _build(cfg: DictConfig, context: dict) -> Training:
    """The checked inputs, then (every check passed: from here on the run writes into its folder) the callbacks,
    loggers, trainer and model, with each logger's run started."""
    inputs = _checked_inputs(cfg)
    log_cautions(cfg)
    interrupt = CheckpointOnInterrupt(context["interrupts"])
    callbacks = _callbacks(cfg, interrupt)
    loggers = build_loggers(cfg, context)  # an unwritable folder or a silent server fails here, before the model
    write_hydra_files(cfg.paths.output_dir, cfg)  # this run's config replaces a resumed one's (W&B took its name)
    trainer: L.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    module = build(cfg.model, tokenizer=inputs.tokenizer, _convert_="all")
    start_runs(loggers, cfg, context, trainer.is_global_zero)
    throughput = next((c for c in callbacks if isinstance(c, TokenThroughput)), None)
    return Training(cfg, inputs, interrupt, throughput, loggers, trainer, module)


def _callbacks(cfg: DictConfig, interrupt: CheckpointOnInterrupt) -> list[L.Callback]:
    """The configured callbacks, then the ones every run has, and the document log when ``log_documents`` is on."""
    callbacks = [build(c) for c in _callback_nodes(cfg)] + [DataAccounting(), interrupt, RandomState()]
    if cfg.get("log_documents"):
        callbacks.append(DocumentLog(Path(cfg.paths.output_dir) / "documents.tsv"))
    return callbacks


def _fit(training: Training) -> dict[str, float]:
    """The model's scores before training (global rank zero; logged at step 0 unless resumed, whose "before" is not
    the model before training), then ``trainer.fit``; a signal stops the run with ``last.ckpt`` saved. Returns the
    scores before."""
    cfg, trainer = training.cfg, training.trainer
    before = _evaluate(training.module, training.inputs.evaluators, cfg) if trainer.is_global_zero else {}
    if before and not cfg.get("ckpt_path"):
        log_metrics(training.loggers, {f"before/{k}": v for k, v in before.items()}, step=0)
    try:
        trainer.fit(training.module, datamodule=training.inputs.datamodule, ckpt_path=cfg.get("ckpt_path"),
                    weights_only=True)
    except SIGTERMException:  # Lightning's stop after a step, for our SIGINT or SIGTERM: last.ckpt is saved
        raise training.interrupt.stopped() from None
    if training.interrupt.stopped():  # a signal in the last step: trained to the end, yet stopped before export
        raise training.interrupt.stopped()
    return before


def _finish(training: Training, before: dict[str, float]) -> dict:
    """On global rank zero (the others return ``{}``): the trained weights checked, scored, exported with their model
    card, the loggers' runs finished and a summary printed; returns the outcome :func:`record_run` records."""
    cfg, trainer, inputs = training.cfg, training.trainer, training.inputs
    module = training.module
    if isinstance(trainer.strategy, FSDPStrategy):
        module = _unsharded(module, trainer, cfg, inputs.tokenizer)
    if not trainer.is_global_zero:
        return {}
    check_finite_weights(module, "The trained model is not exported", step=trainer.global_step)
    after = _evaluate(module, inputs.evaluators, cfg)
    log_metrics(training.loggers, {f"test/{k}": v for k, v in after.items()}, step=trainer.global_step)
    throughput = training.throughput
    record = training_record(cfg, trainer.global_step, {"before training": before, "after training": after},
                             seconds=throughput.train_seconds if throughput else None,
                             documents=inputs.datamodule.accounting.documents)
    model_dir = _save_encoder(module, inputs.tokenizer, Path(cfg.paths.output_dir) / "model", record)
    for logger in training.loggers:
        finish_run(logger, model_dir)
    _print_summary(before, after, inputs.datamodule, trainer, model_dir, throughput)
    return {"objective": after.get("stsb_dev"), "before": before, "after": after, "model_dir": str(model_dir),
            "tokens_per_s": throughput.mean_tokens_per_s if throughput else None,
            "earlier_seconds": throughput.resumed_seconds if throughput else 0.0,
            "documents": inputs.datamodule.accounting.documents,
            "skipped": dict(inputs.datamodule.accounting.by_reason()),
            "nonfinite_steps": module.nonfinite_steps, "steps": trainer.global_step}


def build_datamodule(cfg: DictConfig, tokenizer) -> DeCLUTRDataModule:
    """The training data of ``cfg``; anchors are masked for MLM only when the MLM loss is on."""
    mlm_probability = cfg.data.mlm_probability if cfg.model.mlm_weight > 0 else 0.0
    return build(cfg.data, tokenizer=tokenizer, mlm_probability=mlm_probability)


def _callback_nodes(cfg: DictConfig) -> list[DictConfig]:
    """The callbacks to build; one without ``_target_`` holds only settings an experiment layered over a group
    that lacks that callback (``experiment=scale/smoke callbacks=none``): named here, before Lightning trips on it."""
    nodes = cfg.get("callbacks") or {}
    orphans = [name for name, node in nodes.items() if "_target_" not in node]
    if orphans:
        raise DeclutrConfigError(
            f"callbacks.{orphans[0]} has settings but no _target_: the experiment tunes a callback that this callbacks "
            "group does not have (e.g. experiment/scale/* with callbacks=none). Keep callbacks=default, or remove "
            f"those settings with ~callbacks.{orphans[0]}.")
    return list(nodes.values())


def _unsharded(module, trainer: L.Trainer, cfg: DictConfig, tokenizer):
    """After FSDP training the module holds flat parameter shards: gather the full state dict (a collective,
    so every rank calls this) and load it into a fresh module on rank 0 for evaluation and export."""
    state = trainer.strategy.lightning_module_state_dict()
    if not trainer.is_global_zero:
        return module
    full = build(cfg.model, tokenizer=tokenizer, _convert_="all")
    full.load_state_dict(state)
    return full


def _final_evaluators(cfg: DictConfig) -> dict[str, EvalTask]:
    """The tasks of ``evaluate.tasks`` (null entries dropped), checked for their files before anything runs."""
    options = cfg.get("evaluate")
    if not options or not options.enabled:
        return {}
    tasks = {name: build(node) for name, node in (options.get("tasks") or {}).items() if node is not None}
    names = [task.name for task in tasks.values()]
    if len(set(names)) < len(names):
        raise DeclutrConfigError(f"evaluate.tasks report under the names {names}: give each task its own name "
                                 "(evaluate.tasks.<task>.name).")
    missing = [path for item in EvalSuite(tasks).skipped() for path in item.missing] if tasks else []
    if missing:
        raise DeclutrConfigError(f"Evaluation file(s) {', '.join(missing)} not found: set paths.data_dir (or "
                                 "DECLUTR_DATA_DIR) to the data folder, or evaluate.enabled=false.")
    return tasks


def _evaluate(module, evaluators: dict[str, EvalTask], cfg: DictConfig) -> dict[str, float]:
    """Each task's headline score, keyed by its name in ``evaluate.tasks`` (``results.json``'s before/after)."""
    if not evaluators:
        return {}
    result = evaluate_module(module, EvalSuite(evaluators), cfg.eval.batch_size)
    by_task = {score.task: score.value for score in result.scores if score.main}
    return {name: by_task[task.name] for name, task in evaluators.items()}


def _save_encoder(module, tokenizer, target: Path, record) -> Path:
    """The trained encoder as one folder for Hugging Face, sentence-transformers and ``declutr.Encoder``, with a
    model card made from ``record`` (:func:`declutr.export.training_record`); written atomically (see
    ``write_export``)."""
    return write_export(module.encoder, tokenizer, target, record, overwrite=True)


def _print_summary(before, after, datamodule, trainer, model_dir, throughput) -> None:
    lines = ["", f"Trained {trainer.global_step} steps. {datamodule.accounting.summary()}"]
    if after:
        lines.append(f"{'STS-B Spearman x100':<24}{'before':>8}{'after':>8}")
        lines += [f"  {name:<22}{before.get(name, float('nan')):>8.2f}{value:>8.2f}" for name, value in after.items()]
    if throughput and throughput.mean_tokens_per_s is not None:
        lines.append(f"Training throughput: {throughput.mean_tokens_per_s:,.0f} tokens/s")
    elif throughput:
        lines.append("Training throughput: not measured (the first step, which pays start-up costs, is never timed)")
    checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
    if checkpoint:
        lines.append(f"Best checkpoint: {checkpoint}")
    lines.append(f"Trained encoder (Hugging Face + sentence-transformers folder): {model_dir}")
    print("\n".join(lines))
