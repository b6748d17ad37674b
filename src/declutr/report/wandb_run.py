"""What identifies a training job's W&B run when the config leaves it to us: its name, group, job type and id.

A resumed job (``ckpt_path=<run>/checkpoints/last.ckpt``) gets the id of the run folder that holds the checkpoint,
so W&B continues the same run instead of opening a new one; a sweep's jobs share the experiment as their group.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

WANDB_TARGET = "lightning.pytorch.loggers.WandbLogger"


def run_folder(cfg: DictConfig) -> Path:
    """The folder whose W&B run this job continues: the checkpoint's run when resuming, else this job's."""
    checkpoint = cfg.get("ckpt_path")
    if checkpoint and Path(checkpoint).parent.name == "checkpoints":
        return Path(checkpoint).resolve().parent.parent
    return Path(cfg.paths.output_dir).resolve()


def run_id(folder: Path) -> str:
    """A W&B run id for a run folder: stable across resumes, distinct between folders."""
    return hashlib.sha1(str(folder).encode()).hexdigest()[:16]


def wandb_defaults(cfg: DictConfig, node: DictConfig, experiment: str | None) -> dict:
    """Values for the W&B logger settings left null in ``node``: name (the job's overrides), group (the experiment,
    else the sweep folder's name, else none), job type (the task) and id (from :func:`run_folder`)."""
    if node.get("_target_") != WANDB_TARGET:
        return {}
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    overrides = hydra.job.override_dirname if hydra else ""
    sweep = Path(hydra.sweep.dir).name if hydra and hydra.mode == RunMode.MULTIRUN else None
    chosen = {"name": overrides or None, "group": experiment or sweep, "job_type": cfg.get("task"),
              "id": run_id(run_folder(cfg))}
    return {key: value for key, value in chosen.items() if node.get(key) is None and value is not None}


def start_wandb_run(logger, tags: list[str]) -> None:
    """Add ``tags`` to a W&B logger's run, and make its ``val/*`` summaries the best value (higher is better:
    every score is a Spearman, accuracy or F1 x 100) rather than the last."""
    run = logger.experiment
    run.tags = (*run.tags, *tags)
    run.define_metric("val/*", summary="max")


def log_model_folder(logger, folder: Path, name: str) -> None:
    """With ``logger.wandb.log_model`` on, the exported model folder as a W&B ``model`` artifact."""
    if not getattr(logger, "_log_model", False):
        return
    import wandb

    artifact = wandb.Artifact(name=name, type="model", description="DeCLUTR encoder: Hugging Face + "
                              "sentence-transformers folder with its model card")
    artifact.add_dir(str(folder))
    logger.experiment.log_artifact(artifact)
