"""``task=train``: DeCLUTR continued pretraining, with STS-B before/after and the trained encoder saved."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import lightning as L
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from declutr.callbacks.document_log import DocumentLog
from declutr.callbacks.interrupt import CheckpointOnInterrupt
from declutr.callbacks.throughput import TokenThroughput
from declutr.checkpoint_io import load_checkpoint
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.embedding import embed_texts
from declutr.errors import DeclutrConfigError
from declutr.eval.sts import STSBenchmark
from declutr.export import training_record, write_export
from declutr.instantiate import build
from declutr.model.encoder import load_tokenizer
from declutr.validation import check_corpus_has_usable_document, check_spans_fit_model


def run(cfg: DictConfig) -> dict:
    if cfg.get("seed") is not None:
        L.seed_everything(cfg.seed, workers=True)
    # Everything that can be known wrong is checked before the model is loaded.
    tokenizer = load_tokenizer(cfg.model.encoder.name_or_path)
    mlm_probability = cfg.data.mlm_probability if cfg.model.mlm_weight > 0 else 0.0
    datamodule: DeCLUTRDataModule = build(cfg.data, tokenizer=tokenizer, mlm_probability=mlm_probability)
    check_spans_fit_model(datamodule.sampler, tokenizer, cfg.model.encoder)
    check_corpus_has_usable_document(datamodule)
    if cfg.get("ckpt_path"):
        load_checkpoint(cfg.ckpt_path)  # a missing or corrupt checkpoint fails now, naming the file
    evaluators = _final_evaluators(cfg)

    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values()] + [CheckpointOnInterrupt()]
    if cfg.get("log_documents"):
        callbacks.append(DocumentLog(Path(cfg.paths.output_dir) / "documents.tsv"))
    loggers = [build(c) for c in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    module = build(cfg.model, tokenizer=tokenizer, _convert_="all")
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    before = _evaluate(module, evaluators, cfg) if trainer.is_global_zero else {}
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"), weights_only=True)
    except SIGTERMException:
        raise SystemExit(143) from None  # the checkpoint was saved by CheckpointOnInterrupt
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
            "nonfinite_steps": module.nonfinite_steps}


def _final_evaluators(cfg: DictConfig) -> dict[str, STSBenchmark]:
    options = cfg.get("evaluate")
    if not options or not options.enabled:
        return {}
    tasks = {f"stsb_{split}": STSBenchmark(options.stsb_dir, split) for split in options.splits}
    missing = [str(path) for task in tasks.values() for path in task.missing()]
    if missing:
        raise DeclutrConfigError(f"STS-B file(s) {', '.join(missing)} not found: set paths.data_dir (or DECLUTR_DATA_DIR) "
                                 "to the data folder, or evaluate.enabled=false.")
    return tasks


def _evaluate(module, evaluators: dict, cfg: DictConfig) -> dict[str, float]:
    embed = partial(embed_texts, module.body, module.tokenizer, batch_size=cfg.evaluate.batch_size)
    return {name: task.evaluate(embed)[0].value for name, task in evaluators.items()}


def _save_encoder(module, tokenizer, target: Path, cfg: DictConfig, steps: int, results: dict) -> Path:
    """The trained encoder as one folder for Hugging Face, sentence-transformers and ``declutr.Encoder``, with a
    model card (base model, corpus, steps, config, ``results``); written atomically (see ``write_export``)."""
    return write_export(module.encoder, tokenizer, target, training_record(cfg, steps, results), overwrite=True)


def _print_summary(before, after, datamodule, trainer, model_dir, throughput) -> None:
    lines = ["", f"Trained {trainer.global_step} steps. {datamodule.accounting.summary()}"]
    if after:
        lines.append(f"{'STS-B Spearman x100':<24}{'before':>8}{'after':>8}")
        lines += [f"  {name:<22}{before.get(name, float('nan')):>8.2f}{value:>8.2f}" for name, value in after.items()]
    if throughput:
        lines.append(f"Training throughput: {throughput.mean_tokens_per_s:,.0f} tokens/s")
    checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
    if checkpoint:
        lines.append(f"Best checkpoint: {checkpoint}")
    lines.append(f"Trained encoder (Hugging Face + sentence-transformers folder): {model_dir}")
    print("\n".join(lines))
