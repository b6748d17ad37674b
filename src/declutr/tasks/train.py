"""``task=train``: DeCLUTR continued pretraining, with STS-B before/after and the trained encoder saved.

Every run ends by writing ``<run>/results.json`` (:mod:`declutr.report.results`): its key settings and scores, or
its error. In a multirun a failed job is recorded and returns instead of raising, so the sweep's other jobs still
run; the sweep's end lists the failures and exits non-zero (:class:`declutr.report.sweep_summary.SweepSummary`).
A single run raises as before (a configuration error leaves no run folder: ``run.py`` removes it).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import lightning as L
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.strategies import FSDPStrategy
from lightning.pytorch.utilities import rank_zero_only
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from declutr.callbacks.document_log import DocumentLog
from declutr.callbacks.embedding_eval import evaluate_module
from declutr.callbacks.interrupt import CheckpointOnInterrupt
from declutr.callbacks.throughput import TokenThroughput
from declutr.config.instantiate import build
from declutr.data.checks import check_corpus_has_usable_document, check_objective_fits_sampler
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.errors import DeclutrConfigError
from declutr.eval.suite import EvalSuite
from declutr.eval.task import EvalTask
from declutr.export import training_record, write_export
from declutr.files.checkpoints import load_checkpoint
from declutr.model.huggingface import check_encoder_source, check_spans_fit_model
from declutr.report.git_commit import git_commit
from declutr.report.results import FAILED, OK, RunResult, write_failure, write_result
from declutr.tokenizer import load_tokenizer

log = logging.getLogger(__name__)

# What results.json records of a run's resolved config (the full config is in <run>/.hydra/config.yaml).
KEY_SETTINGS = {
    "encoder": "model.encoder.name_or_path", "random_init": "model.encoder.random_init",
    "num_anchors": "data.sampler.num_anchors", "num_positives": "data.sampler.num_positives",
    "strategy": "data.sampler.strategy", "min_span_len": "data.sampler.min_span_len",
    "max_span_len": "data.sampler.max_span_len", "contrastive_weight": "model.contrastive_weight",
    "mlm_weight": "model.mlm_weight", "temperature": "model.temperature", "lr": "model.optimizer.lr",
    "documents_per_step": "data.batch_size", "max_steps": "trainer.max_steps", "seed": "seed",
}


def run(cfg: DictConfig) -> dict:
    start = time.perf_counter()
    context = _context(cfg)
    try:
        outcome = _train(cfg, context)
    except Exception as err:
        _finish_wandb(exit_code=1)
        multirun = HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN
        # A single run's configuration error leaves no folder behind (run.py removes it): nothing is written then.
        if rank_zero_only.rank == 0 and (multirun or not isinstance(err, DeclutrConfigError)):
            path = write_failure(cfg.paths.output_dir, err, seconds=time.perf_counter() - start, **context)
            if multirun:
                log.error("Job failed (recorded in %s; the sweep goes on): %s: %s", path, type(err).__name__, err)
        if not multirun:
            raise
        return {"objective": None, "status": FAILED, "error": f"{type(err).__name__}: {err}"}
    _finish_wandb(exit_code=0)
    if outcome:  # global rank zero
        write_result(cfg.paths.output_dir, RunResult(
            status=OK, before=outcome["before"], after=outcome["after"], steps=outcome["steps"],
            nonfinite_steps=outcome["nonfinite_steps"], seconds=time.perf_counter() - start,
            tokens_per_s=outcome["tokens_per_s"], **context))
    return outcome


def _train(cfg: DictConfig, context: dict) -> dict:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    # Everything that can be known wrong is checked before the model is loaded.
    check_encoder_source(cfg.model.encoder)
    tokenizer = load_tokenizer(cfg.model.encoder.name_or_path)
    datamodule = build_datamodule(cfg, tokenizer)
    check_objective_fits_sampler(datamodule.sampler, cfg.model)
    check_spans_fit_model(datamodule.sampler, tokenizer, cfg.model.encoder)
    check_corpus_has_usable_document(datamodule)
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path)  # a missing or corrupt checkpoint fails now, naming the file
    evaluators = _final_evaluators(cfg)

    callbacks = [build(c) for c in _callback_nodes(cfg)] + [CheckpointOnInterrupt()]
    if cfg.get("log_documents"):
        callbacks.append(DocumentLog(Path(cfg.paths.output_dir) / "documents.tsv"))
    loggers = [build(c) for c in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    module = build(cfg.model, tokenizer=tokenizer, _convert_="all")
    for logger in loggers:
        if isinstance(logger, WandbLogger) and trainer.is_global_zero:  # to find and filter runs in the dashboard
            logger.experiment.tags = (*logger.experiment.tags, *_tags(context))
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    before = _evaluate(module, evaluators, cfg) if trainer.is_global_zero else {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    except SIGTERMException:
        raise SystemExit(143) from None  # the checkpoint was saved by CheckpointOnInterrupt
    if isinstance(trainer.strategy, FSDPStrategy):
        module = _unsharded(module, trainer, cfg, tokenizer)
    if not trainer.is_global_zero:
        return {}
    after = _evaluate(module, evaluators, cfg)
    for logger in loggers:
        logger.log_metrics({f"test/{k}": v for k, v in after.items()}, step=trainer.global_step)
    model_dir = _save_encoder(module, tokenizer, Path(cfg.paths.output_dir) / "model", cfg, trainer.global_step,
                              {"before training": before, "after training": after})
    throughput = next((c for c in callbacks if isinstance(c, TokenThroughput)), None)
    _print_summary(before, after, datamodule, trainer, model_dir, throughput)
    return {"objective": after.get("stsb_dev"), "before": before, "after": after, "model_dir": str(model_dir),
            "tokens_per_s": throughput.mean_tokens_per_s if throughput else None,
            "documents": datamodule.accounting.documents, "skipped": dict(datamodule.accounting.by_reason()),
            "nonfinite_steps": module.nonfinite_steps, "steps": trainer.global_step}


def build_datamodule(cfg: DictConfig, tokenizer) -> DeCLUTRDataModule:
    """The training data of ``cfg``; anchors are masked for MLM only when the MLM loss is on."""
    mlm_probability = cfg.data.mlm_probability if cfg.model.mlm_weight > 0 else 0.0
    return build(cfg.data, tokenizer=tokenizer, mlm_probability=mlm_probability)


def _callback_nodes(cfg: DictConfig) -> list[DictConfig]:
    """The callbacks to build; one without ``_target_`` holds only settings an experiment layered over a group
    that lacks that callback (``experiment=smoke callbacks=none``): named here, before Lightning trips on it."""
    nodes = cfg.get("callbacks") or {}
    orphans = [name for name, node in nodes.items() if "_target_" not in node]
    if orphans:
        raise DeclutrConfigError(
            f"callbacks.{orphans[0]} has settings but no _target_: the experiment tunes a callback that this callbacks "
            "group does not have (e.g. experiment/scale/* with callbacks=none). Keep callbacks=default, or remove "
            f"those settings with ~callbacks.{orphans[0]}.")
    return list(nodes.values())


def _context(cfg: DictConfig) -> dict:
    """What identifies a run in a sweep's report: its key settings (``None`` for any that cannot be resolved:
    the run may be failing on exactly that), experiment, ablation axis and code version."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    settings = {"model": choices.get("model")}
    settings |= {name: OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
                 for name, key in KEY_SETTINGS.items()}
    return {"settings": settings, "experiment": choices.get("experiment"),
            "axis": OmegaConf.select(cfg, "report.axis", throw_on_resolution_failure=False), "git_commit": git_commit()}


def _tags(context: dict) -> list[str]:
    """W&B tags: ``experiment:<name>``, ``axis:<axis>``, ``commit:<sha>``, each only when known."""
    return [f"{name}:{context[key]}" for name, key in (("experiment", "experiment"), ("axis", "axis"),
                                                       ("commit", "git_commit")) if context[key]]


def _finish_wandb(exit_code: int) -> None:
    """Close this job's W&B run, so the next job of a multirun starts its own (Lightning's WandbLogger would
    otherwise log into the open one) and a failed job shows as failed in the dashboard."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        wandb.finish(exit_code=exit_code)


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


def _save_encoder(module, tokenizer, target: Path, cfg: DictConfig, steps: int, results: dict) -> Path:
    """The trained encoder as one folder for Hugging Face, sentence-transformers and ``declutr.Encoder``, with a
    model card (base model, corpus, steps, config, ``results``); written atomically (see ``write_export``)."""
    return write_export(module.encoder, tokenizer, target, training_record(cfg, steps, results), overwrite=True)


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
