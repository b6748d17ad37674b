"""``task=report``: one sweep's runs as a markdown table and a plot per varied setting.

``python run.py task=report sweep_dir=multirun/<time>`` reads every training job of the sweep (its overrides, its
``results.json``, any ``eval-*.json``) and writes into ``<sweep_dir>/report/`` (or ``report.output_dir``):

- ``report.md``: the untrained model(s) as baseline rows, then one row per combination of the settings the sweep
  varied, each score as mean ± std over the runs that differ only in ``report.average_over`` (seeds); then every
  run (scores before → after) and the runs that failed or never finished, with their errors;
- ``<setting>.png`` per varied setting: the scores against its values, error bars over seeds, baselines drawn;
- ``runs.csv``: one row per run, for your own analysis.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from declutr.errors import DeclutrConfigError
from declutr.files.atomic import write_text_atomically
from declutr.report.aggregate import baseline_groups, group_runs
from declutr.report.collect import Run, find_runs, status_counts, varied_keys
from declutr.report.plot import plot_setting
from declutr.report.results import OK
from declutr.report.table import failures_table, present_metrics, results_table, runs_csv, runs_table, setting_labels


def run(cfg: DictConfig) -> dict:
    sweep_dir = _sweep_dir(cfg.get("sweep_dir"))
    runs = find_runs(sweep_dir)
    if not runs:
        raise DeclutrConfigError(f"sweep_dir={sweep_dir} holds no training runs (folders with .hydra/config.yaml "
                                 "of task=train): pass the folder a `python run.py -m ...` sweep wrote.")
    options = cfg.report
    output_dir = Path(options.output_dir) if options.output_dir else sweep_dir / "report"
    output_dir.mkdir(parents=True, exist_ok=True)
    keys = varied_keys(runs, options.average_over)
    metrics = present_metrics(runs, list(options.metrics))
    title = _title(runs)

    plots = [plot_setting(runs, key, keys, metrics, output_dir / f"{label}.png", title)
             for key, label in setting_labels(keys).items()] if metrics else []
    text = _document(sweep_dir, runs, keys, metrics, plots, title, list(options.average_over))
    report_path = output_dir / "report.md"
    write_text_atomically(report_path, text)
    write_text_atomically(output_dir / "runs.csv", runs_csv(runs, metrics))
    failed = [run.name for run in runs if run.status != OK]
    print(text)
    print(f"\nReport: {report_path}" + "".join(f"\nPlot: {p}" for p in plots))
    return {"report": str(report_path), "plots": [str(p) for p in plots], "runs": len(runs), "failed": failed}


def _sweep_dir(value) -> Path:
    if not value:
        raise DeclutrConfigError("task=report needs sweep_dir: python run.py task=report sweep_dir=multirun/<time>.")
    path = Path(str(value))
    if not path.is_dir():
        raise DeclutrConfigError(f"sweep_dir={value} is not a folder: pass the folder a `python run.py -m ...` sweep "
                                 "wrote (printed at its end, e.g. multirun/2024-05-01_12-00-00).")
    return path


def _title(runs: list[Run]) -> str:
    """The ablation axis (or experiment) the runs share, else a generic title."""
    for attribute in ("axis", "experiment"):
        names = {getattr(run.result, attribute) for run in runs if run.result}
        if len(names) == 1 and None not in names:
            return f"Ablation: {names.pop()}" if attribute == "axis" else f"Experiment {names.pop()}"
    return "Sweep"


def _document(sweep_dir: Path, runs: list[Run], keys: list[str], metrics: list[str], plots: list[Path],
              title: str, average_over: list[str]) -> str:
    finished = [run for run in runs if run.status == OK]
    commits = sorted({run.result.git_commit for run in runs if run.result and run.result.git_commit})
    lines = [f"# {title}", "",
             f"Sweep `{sweep_dir}`: {len(runs)} runs, {status_counts(runs)}"
             + (f"; code at {', '.join(commits)}" if commits else "") + ".",
             "Scores × 100 (Spearman for STS, accuracy for transfer): mean ± std over the runs that differ only in "
             f"{', '.join(average_over) or 'nothing'} (n = finished runs). Baseline rows: the models before training.",
             ""]
    if not metrics:
        lines += ["No run has a score yet.", ""]
    else:
        groups = group_runs(runs, keys)
        lines += [results_table(groups, baseline_groups(finished), keys, metrics), ""]
        lines += [f"![{p.stem}]({p.name})" for p in plots] + ([""] if plots else [])
    failed = [run for run in runs if run.status != OK]
    if failed:
        lines += ["## Failed or unfinished runs", "", failures_table(runs), ""]
    averaged = [key for key in average_over if any(key in run.overrides for run in runs)]
    lines += ["## Every run", "", runs_table(runs, keys + averaged, metrics), ""]
    return "\n".join(lines)
