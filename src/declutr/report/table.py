"""The report's tables: results by varied setting (mean ± std over seeds, baselines first), every run, failures."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence

from declutr.report.aggregate import Group, Stat
from declutr.report.collect import Run
from declutr.report.results import OK

METRIC_LABELS = {"stsb_dev": "STS-B dev", "stsb_test": "STS-B test", "sts_avg": "STS avg",
                 "transfer_avg": "transfer avg"}


def metric_label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def setting_labels(keys: Sequence[str]) -> dict[str, str]:
    """Short column names: the last part of each key (``data.sampler.num_anchors`` -> ``num_anchors``,
    ``experiment/objective`` -> ``objective``), the whole key where two would share a name."""
    short = {key: key.replace("/", ".").rsplit(".", 1)[-1] for key in keys}
    return {key: name if list(short.values()).count(name) == 1 else key for key, name in short.items()}


def present_metrics(runs: Sequence[Run], metrics: Sequence[str]) -> list[str]:
    """The ``metrics`` that at least one run has a score for, in the given order."""
    return [m for m in metrics if any(m in run.scores() for run in runs)]


def results_table(groups: Sequence[Group], baselines: Sequence[Group], keys: Sequence[str],
                  metrics: Sequence[str]) -> str:
    """Baseline rows (each base model before training), then one row per group of varied settings."""
    labels = setting_labels(keys)
    header = ["", *(labels[k] for k in keys), "n", *(metric_label(m) for m in metrics)]
    rows = []
    for base in baselines:
        cells = [base.settings["model"] if k == "model" else "" for k in keys]
        stats = [base.stat(m, baseline=True) for m in metrics]
        n = max((s.n for s in stats if s), default=0)
        rows.append([f"before training ({base.settings['model']})", *cells, str(n), *map(format_stat, stats)])
    for group in groups:
        failed = len(group.runs) - len(group.finished)
        n = f"{len(group.finished)}" + (f" ({failed} failed)" if failed else "")
        rows.append([_trained(group), *(group.settings[k] or "—" for k in keys), n,
                     *(format_stat(group.stat(m)) for m in metrics)])
    return markdown_table(header, rows)


def runs_table(runs: Sequence[Run], keys: Sequence[str], metrics: Sequence[str]) -> str:
    """Every run: its settings, status, each score as ``before → after`` where a baseline exists, steps, time."""
    labels = setting_labels(keys)
    header = ["job", *(labels[k] for k in keys), "status", *(metric_label(m) for m in metrics), "steps", "minutes"]
    rows = []
    for run in runs:
        scores, before = run.scores(), run.baseline()
        cells = [_score_change(before.get(m), scores.get(m)) for m in metrics]
        result = run.result
        rows.append([run.name, *(run.overrides.get(k, "—") for k in keys), run.status, *cells,
                     str(result.steps) if result and result.steps is not None else "—",
                     f"{result.seconds / 60:.1f}" if result and result.seconds else "—"])
    return markdown_table(header, rows)


def failures_table(runs: Sequence[Run]) -> str:
    """Runs that failed or never finished, with their overrides, the error and where its traceback is."""
    header = ["job", "status", "overrides", "error", "traceback"]
    rows = []
    for run in runs:
        if run.status == OK:
            continue
        result = run.result
        error = result.error if result and result.error else "no results.json: killed, or still running"
        trace = f"{run.name}/{result.traceback_file}" if result and result.traceback_file else "—"
        overrides = ", ".join(f"{k}={v}" for k, v in run.overrides.items())
        rows.append([run.name, run.status, overrides, _one_line(error), trace])
    return markdown_table(header, rows)


def runs_csv(runs: Sequence[Run], metrics: Sequence[str]) -> str:
    """One row per run: job, status, every override, scores before and after training, steps, seconds, error."""
    keys = list(dict.fromkeys(key for run in runs for key in run.overrides))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["job", "status", *keys, *(f"before_{m}" for m in metrics), *metrics, "steps", "seconds", "error"])
    for run in runs:
        result = run.result
        before, after = run.baseline(), run.scores()
        writer.writerow([run.name, run.status, *(run.overrides.get(k, "") for k in keys),
                         *(_number(before.get(m)) for m in metrics), *(_number(after.get(m)) for m in metrics),
                         result.steps if result and result.steps is not None else "",
                         f"{result.seconds:.1f}" if result and result.seconds else "",
                         result.error if result and result.error else ""])
    return buffer.getvalue()


def _trained(group: Group) -> str:
    steps = group.steps()
    if not steps:
        return "not trained"
    return f"after {steps[0]} steps" if len(steps) == 1 else f"after {steps[0]}–{steps[-1]} steps"


def format_stat(stat: Stat | None) -> str:
    """``mean ± std`` (just the mean for one value), ``—`` for none."""
    if stat is None:
        return "—"
    return f"{stat.mean:.2f} ± {stat.std:.2f}" if stat.n > 1 else f"{stat.mean:.2f}"


def _score_change(before: float | None, after: float | None) -> str:
    if after is None:
        return "—"
    return f"{before:.2f} → {after:.2f}" if before is not None else f"{after:.2f}"


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table; ``|`` inside cells escaped."""
    escape = lambda cell: str(cell).replace("|", "\\|")  # noqa: E731
    lines = ["| " + " | ".join(map(escape, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(escape, row)) + " |" for row in rows]
    return "\n".join(lines)
