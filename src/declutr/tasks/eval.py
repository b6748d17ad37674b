"""``task=eval``: the evaluation suite on any encoder, printed as one table and written as JSON + CSV.

``python run.py task=eval eval=all eval.model=outputs/train/<run>`` (a run folder, a ``.ckpt``, a Hugging Face
folder or name, a sentence-transformers folder); ``eval.random_init=true`` and ``eval.representation=word_embeddings``
evaluate the baselines of that model (its architecture at random init, seeded by ``seed``; its averaged input word
embeddings). The results go next to the model, or into this run's folder
when that is not a writable local folder (a hub name, a read-only install); ``eval.output_dir`` overrides both.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from declutr.config.instantiate import build
from declutr.encoder import Encoder
from declutr.errors import DeclutrConfigError
from declutr.eval.suite import EvalSuite, SuiteResult, format_table, rows, write_results
from declutr.model.inference_precision import autocast, resolve
from declutr.report.loggers import (
    build_loggers,
    check_loggers,
    close_wandb_run,
    finish_run,
    log_scores,
    run_tags,
    start_run,
)
from declutr.report.wandb_run import trained_context


def run(cfg: DictConfig) -> dict:
    options = cfg.eval
    check_loggers(cfg)  # an unwritable folder or a silent tracking server fails now, not after the evaluation
    suite = EvalSuite(build(options.tasks), options.max_examples, options.seed)
    if len(suite.skipped()) == len(suite.tasks):
        raise DeclutrConfigError("Every task of eval=" + options.name + " lacks its files: "
                                 + " ".join(s.message() for s in suite.skipped()))
    start = time.perf_counter()
    if options.random_init:
        torch.manual_seed(cfg.seed)  # the baseline's weights, repeatable
    # Raises DeclutrConfigError naming the source and what it accepts.
    encoder = Encoder(str(options.model), random_init=options.random_init, representation=options.representation)
    load_seconds = time.perf_counter() - start
    result, precision = evaluate(suite, encoder, options)
    stem = f"eval-{options.name}" + (f"-max{options.max_examples}" if options.max_examples else "") + _variant(options)
    metadata = {"model": encoder.source, "random_init": options.random_init, "representation": options.representation,
                "eval": options.name, "max_examples": options.max_examples,
                "protocol": OmegaConf.to_container(options.protocol, resolve=True) if "protocol" in options else None,
                "device": str(encoder.device), "precision": precision, "load_seconds": load_seconds}
    json_path, csv_path = write_results(result, _output_dir(options, cfg.paths.output_dir), stem, metadata)
    print(f"\nEvaluation of {encoder.source} (eval={options.name}, {precision} encoder"
          + (f", at most {options.max_examples} examples per split" if options.max_examples else "") + ")")
    print(format_table(result))
    print(f"Results: {json_path} and {csv_path}")
    _log_to_loggers(cfg, result, metadata)
    averages = result.averages()
    return {"objective": (averages.get("sts") or averages.get("transfer") or {}).get("score"),
            "scores": result.by_key(), "averages": averages, "json": str(json_path), "csv": str(csv_path)}


def evaluate(suite: EvalSuite, encoder: Encoder, options: DictConfig, progress: bool = True) -> tuple[SuiteResult, str]:
    """``suite`` on ``encoder``'s embeddings at ``eval.precision`` (resolved for its device) and ``eval.batch_size``;
    returns the result and the precision used."""
    precision = resolve(options.precision, encoder.device)
    with autocast(precision, encoder.device):
        result = suite.run(lambda texts: encoder.encode(texts, batch_size=options.batch_size), progress=progress)
    return result, precision


def _variant(options: DictConfig) -> str:
    """The file-name suffix of a baseline (``-random_init``, ``-word_embeddings``); empty for the model itself."""
    parts = ["random_init"] if options.random_init else []
    parts += [options.representation] if options.representation != "last_layer" else []
    return "".join(f"-{part}" for part in parts)


def _output_dir(options: DictConfig, run_dir: str) -> Path:
    """``eval.output_dir``, else the model's folder (a checkpoint's folder) if local and writable, else the run folder.
    A baseline's scores never go next to the model, where they would pass for the model's own."""
    if options.output_dir:
        return Path(options.output_dir)
    if _variant(options):
        return Path(run_dir)
    model = Path(str(options.model))
    folder = model if model.is_dir() else model.parent
    return folder if model.exists() and os.access(folder, os.W_OK) else Path(run_dir)


def _log_to_loggers(cfg: DictConfig, result, metadata: dict) -> None:
    """Every score, with the averages, and the results table to each logger of ``cfg.logger``
    (:func:`declutr.report.loggers.log_scores`: W&B summary keys and a Table; TensorBoard, MLflow and CSV metrics
    ``eval/<score>``), in a run of job type ``eval`` that joins the group (W&B) or experiment (MLflow) of the run
    that trained the model, with its tags plus ``eval:<name>``."""
    context = trained_context(str(cfg.eval.model))  # an evaluation of a trained model joins its run's group
    scores = {**result.by_key(), **{f"{group}_avg": average["score"] for group, average in result.averages().items()
                                    if average["score"] is not None}}
    for logger in build_loggers(cfg, context):
        start_run(logger, [*run_tags(context), f"eval:{cfg.eval.name}"])
        log_scores(logger, cfg.eval.name, scores, [list(row) for row in rows(result)], metadata["model"])
        finish_run(logger)
    close_wandb_run(exit_code=0)
