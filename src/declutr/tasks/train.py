"""``task=train``: DeCLUTR continued pretraining, with STS-B before/after and the trained encoder saved."""

from __future__ import annotations

import os
import shutil
from functools import partial
from pathlib import Path

import lightning as L
from omegaconf import DictConfig, OmegaConf

from declutr.callbacks.throughput import TokenThroughput
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.embedding import embed_texts
from declutr.eval.sts import STSBEvaluator
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
    evaluators = _final_evaluators(cfg)

    callbacks = [build(c) for c in (cfg.get("callbacks") or {}).values()]
    loggers = [build(c) for c in (cfg.get("logger") or {}).values()]
    trainer: L.Trainer = build(cfg.trainer, callbacks=callbacks, logger=loggers or False)
    module = build(cfg.model, tokenizer=tokenizer, _convert_="all")
    for logger in loggers:
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))

    before = _evaluate(module, evaluators, cfg) if trainer.is_global_zero else {}
    trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.get("ckpt_path"))
    if not trainer.is_global_zero:
        return {}
    after = _evaluate(module, evaluators, cfg)
    for logger in loggers:
        logger.log_metrics({f"test/{k}": v for k, v in after.items()}, step=trainer.global_step)
    model_dir = _save_encoder(module, tokenizer, Path(cfg.paths.output_dir) / "model")
    throughput = next((c for c in callbacks if isinstance(c, TokenThroughput)), None)
    _print_summary(before, after, module, trainer, model_dir, throughput)
    return {"objective": after.get("stsb_dev"), "before": before, "after": after, "model_dir": str(model_dir),
            "tokens_per_s": throughput.mean_tokens_per_s if throughput else None}


def _final_evaluators(cfg: DictConfig) -> dict[str, STSBEvaluator]:
    options = cfg.get("evaluate")
    if not options or not options.enabled:
        return {}
    return {f"stsb_{split}": STSBEvaluator(options.stsb_dir, split) for split in options.splits}


def _evaluate(module, evaluators: dict, cfg: DictConfig) -> dict[str, float]:
    embed = partial(embed_texts, module.body, module.tokenizer, batch_size=cfg.evaluate.batch_size)
    return {name: evaluator(embed)["stsb_spearman"] for name, evaluator in evaluators.items()}


def _save_encoder(module, tokenizer, target: Path) -> Path:
    """``save_pretrained`` into a temporary folder, then swap it in: a crash never leaves half a model."""
    tmp = target.with_name(f".{target.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    module.encoder.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)
    os.replace(tmp, target)
    return target


def _print_summary(before, after, module, trainer, model_dir, throughput) -> None:
    lines = ["", f"Trained {trainer.global_step} steps on {module.documents_seen} documents."]
    if after:
        lines.append(f"{'STS-B Spearman x100':<24}{'before':>8}{'after':>8}")
        lines += [f"  {name:<22}{before.get(name, float('nan')):>8.2f}{value:>8.2f}" for name, value in after.items()]
    if throughput:
        lines.append(f"Training throughput: {throughput.mean_tokens_per_s:,.0f} tokens/s")
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(module.skipped.items())) or "none"
    lines.append(f"Skipped documents: {skipped}")
    checkpoint = getattr(trainer.checkpoint_callback, "best_model_path", "") if trainer.checkpoint_callback else ""
    if checkpoint:
        lines.append(f"Best checkpoint: {checkpoint}")
    lines.append(f"Trained encoder (Hugging Face format): {model_dir}")
    print("\n".join(lines))
