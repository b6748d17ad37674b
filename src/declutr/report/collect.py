"""The training runs of a sweep folder: each job's overrides, its outcome, and any evaluation-suite scores.

A job folder is one holding ``.hydra/config.yaml`` (Hydra writes it before the job starts, so jobs that failed or
never finished are found too). Its overrides come from ``.hydra/overrides.yaml``, its outcome from
``results.json`` (:mod:`declutr.report.results`), and transfer / STS scores from any ``eval-*.json`` that
``task=eval eval.model=<run>`` wrote into the run folder or its ``model/`` folder.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from omegaconf import OmegaConf

from declutr.report.results import RunResult, read_result

INCOMPLETE = "incomplete"  # no results.json: killed, or still running
# How a summary names each ending (declutr.report.results.STATUSES, then INCOMPLETE), in this order.
STATUS_WORDS = {"ok": "finished", "interrupted": "interrupted", "stopped_nonfinite": "stopped on non-finite values",
                "failed": "failed", INCOMPLETE: "never ended (killed, or still running)"}
AVERAGE_KEYS = {"sts": "sts_avg", "transfer": "transfer_avg"}


@dataclass(frozen=True)
class Run:
    """One training job of a sweep. ``overrides`` maps a key (``+`` prefixes dropped) to its value as typed."""

    path: Path
    name: str  # the job folder relative to the sweep folder, e.g. "3"
    overrides: dict[str, str]
    result: RunResult | None
    eval_scores: dict[str, float] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return self.result.status if self.result else INCOMPLETE

    def scores(self) -> dict[str, float]:
        """Scores after training: the final STS-B evaluation (``stsb_dev``, ``stsb_test``), then the suite's."""
        return {**(self.result.after if self.result else {}), **self.eval_scores}

    def baseline(self) -> dict[str, float]:
        """Scores of the model before training (``stsb_dev``, ``stsb_test``)."""
        return self.result.before if self.result else {}

    def base_model(self) -> str:
        """Names the untrained model: the ``model`` choice, else the encoder it loads."""
        settings = self.result.settings if self.result else {}
        return str(settings.get("model") or settings.get("encoder") or self.overrides.get("model", "?"))


def find_runs(sweep_dir: str | Path) -> list[Run]:
    """Every ``task=train`` job under ``sweep_dir``, in job order (numeric folder names sorted as numbers)."""
    sweep_dir = Path(sweep_dir)
    folders = [p.parent.parent for p in sweep_dir.rglob(".hydra/config.yaml")]
    runs = [_read_run(folder, sweep_dir) for folder in folders if _task(folder) == "train"]
    return sorted(runs, key=lambda run: [(0, int(part), "") if part.isdigit() else (1, 0, part)
                                         for part in Path(run.name).parts])


def status_counts(runs: Iterable[Run]) -> str:
    """How the runs ended, e.g. ``"2 finished, 1 interrupted, 0 failed"`` (finished and failed always shown)."""
    statuses = [run.status for run in runs]
    return ", ".join(f"{statuses.count(status)} {word}" for status, word in STATUS_WORDS.items()
                     if status in ("ok", "failed") or status in statuses)


def varied_keys(runs: Iterable[Run], average_over: Iterable[str] = ()) -> list[str]:
    """Override keys whose value differs between runs (a key some runs lack counts as differing), in the
    order they first appear, without those averaged over."""
    runs = list(runs)
    skip = set(average_over)
    keys = dict.fromkeys(key for run in runs for key in run.overrides if key not in skip)
    return [key for key in keys if len({run.overrides.get(key) for run in runs}) > 1]


def _task(folder: Path) -> str | None:
    return OmegaConf.load(folder / ".hydra" / "config.yaml").get("task")


def _read_run(folder: Path, sweep_dir: Path) -> Run:
    overrides_file = folder / ".hydra" / "overrides.yaml"
    typed = OmegaConf.to_container(OmegaConf.load(overrides_file)) if overrides_file.is_file() else []
    return Run(path=folder, name=folder.relative_to(sweep_dir).as_posix(), overrides=parse_overrides(typed),
               result=read_result(folder), eval_scores=read_eval_scores(folder))


def parse_overrides(overrides: Iterable[str]) -> dict[str, str]:
    """``["+a.b=1", "model=tiny", "~c"]`` -> ``{"a.b": "1", "model": "tiny", "c": "(deleted)"}``."""
    parsed = {}
    for override in overrides:
        key, sep, value = override.partition("=")
        if key.startswith("~"):
            parsed[key[1:]] = "(deleted)"
        else:
            parsed[key.lstrip("+")] = value if sep else ""
    return parsed


def read_eval_scores(run_dir: Path) -> dict[str, float]:
    """Scores of every ``eval-*.json`` in the run or its ``model/`` folder, keyed as ``task=eval`` logs them
    (``mr_accuracy``, ``stsb_spearman``, ...) plus ``sts_avg`` and ``transfer_avg``. Where files overlap, one
    evaluated on full splits wins over one capped by ``eval.max_examples``."""
    files = [path for folder in (run_dir, run_dir / "model") for path in sorted(folder.glob("eval-*.json"))]
    payloads = sorted((json.loads(path.read_text(encoding="utf-8")) for path in files),
                      key=lambda payload: payload.get("max_examples") is None)
    scores: dict[str, float] = {}
    for payload in payloads:
        scores |= {score["key"]: score["score"] for score in payload.get("scores", [])}
        scores |= {AVERAGE_KEYS[group]: average["score"] for group, average in payload.get("averages", {}).items()
                   if group in AVERAGE_KEYS and average.get("score") is not None}
    return scores
