"""What identifies a job's W&B run when the config leaves it to us: its name, group, job type and id.

A resumed job (``ckpt_path=<run>/checkpoints/last.ckpt``) gets the id of the run folder that holds the checkpoint,
so W&B continues the same run, under the name it has, instead of opening a new one; an ablation's jobs share
``<axis>@<scale>`` as their group (other sweeps, their experiment), with the swept settings as tags; ``task=eval`` of
a trained model joins that model's group.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from declutr.report.results import read_result

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


def wandb_defaults(cfg: DictConfig, node: DictConfig, context: dict) -> dict:
    """Values for the W&B logger settings left null in ``node``: name (the job's overrides; a resumed run keeps the
    name its first attempt had), group (:func:`group`), job type (the task) and id (from :func:`run_folder`).
    ``context`` is the training run's (:func:`declutr.runs.context.run_context`; for ``task=eval``, that of the
    run that trained the evaluated model, so its evaluations join its group)."""
    if node.get("_target_") != WANDB_TARGET:
        return {}
    hydra = HydraConfig.get() if HydraConfig.initialized() else None
    sweep = Path(hydra.sweep.dir).name if hydra and hydra.mode == RunMode.MULTIRUN else None
    chosen = {"name": job_name(cfg), "group": group(context) or sweep, "job_type": cfg.get("task"),
              "id": run_id(run_folder(cfg))}
    return {key: value for key, value in chosen.items() if node.get(key) is None and value is not None}


def job_name(cfg: DictConfig) -> str | None:
    """A job's run name in any dashboard: its overrides (``data.sampler.num_anchors=4,seed=2``); a resumed job keeps
    the name its first attempt had; ``None`` without overrides."""
    overrides = _first_attempts_overrides(run_folder(cfg)) if cfg.get("ckpt_path") else None
    if overrides is None:
        overrides = HydraConfig.get().job.override_dirname if HydraConfig.initialized() else ""
    return overrides or None


def _first_attempts_overrides(folder: Path) -> str | None:
    """The overrides that named the W&B run of ``folder`` (a resumed run keeps that name, not its own command line's),
    from its ``.hydra/hydra.yaml``; ``None`` if it has none."""
    saved = folder / ".hydra" / "hydra.yaml"
    if not saved.is_file():
        return None
    return OmegaConf.select(OmegaConf.load(saved), "hydra.job.override_dirname", default=None)


def trained_context(model: str) -> dict:
    """The W&B context of the training run that made ``model`` (its run folder, its ``model/`` export or one of its
    checkpoints), from its ``results.json``: experiment, axis, scale, swept settings, commit; empty if it has none."""
    path = Path(model)
    folders = (path, path.parent, path.parent.parent) if path.exists() else ()
    record = next((result for folder in folders if (result := read_result(folder)) is not None), None)
    if record is None:
        return {}
    return {"experiment": record.experiment, "axis": record.axis, "scale": record.scale, "swept": record.swept,
            "git_commit": record.git_commit}


def group(context: dict) -> str | None:
    """A run's W&B group: ``<axis>@<scale>`` for an ablation (every setting of the axis, every seed, at one scale:
    one chart), else the experiment; ``None`` if neither is known."""
    axis, scale = context.get("axis"), context.get("scale")
    if axis:
        return f"{axis}@{scale}" if scale else axis
    return context.get("experiment")


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
