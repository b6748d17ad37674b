"""Sweep folders laid out exactly as a multirun leaves them: ``<job>/.hydra/{config,overrides}.yaml`` written as
Hydra writes them, ``results.json`` written by the same function ``task=train`` uses."""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from declutr.report.results import OK, RunResult, write_failure, write_result


def add_job(sweep: Path, name: str, overrides: list[str], status: str | None = OK, task: str = "train",
            model: str = "minilm", before: dict | None = None, after: dict | None = None, steps: int = 50,
            axis: str | None = "strategy") -> Path:
    """One job folder; ``status`` ``None`` leaves it without results (a killed or running job)."""
    folder = sweep / name
    (folder / ".hydra").mkdir(parents=True)
    OmegaConf.save(OmegaConf.create({"task": task, "seed": 42}), folder / ".hydra" / "config.yaml")
    OmegaConf.save(OmegaConf.create(overrides), folder / ".hydra" / "overrides.yaml")
    context = {"settings": {"model": model}, "experiment": f"ablation/{axis}" if axis else None, "axis": axis,
               "git_commit": "abc1234"}
    if status == OK:
        write_result(folder, RunResult(status=OK, before=before or {}, after=after or {}, steps=steps, seconds=90.0,
                                       **context))
    elif status is not None:
        try:
            raise RuntimeError("out of memory")
        except RuntimeError as err:
            write_failure(folder, err, status=status, seconds=3.0, **context)
    return folder
