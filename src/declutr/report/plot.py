"""One PNG per varied setting: each score against the setting's values, mean with ± std error bars over seeds,
the untrained model(s) beside it as the baseline."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

from declutr.errors import DeclutrConfigError
from declutr.report.aggregate import Group, baseline_groups, group_runs, is_numeric
from declutr.report.collect import Run
from declutr.report.table import metric_label, setting_labels

MAX_LINES = 6  # more combinations of the other settings than this (a random search): plain points, no lines


def plot_setting(runs: Sequence[Run], key: str, keys: Sequence[str], metrics: Sequence[str], path: Path,
                 title: str) -> Path:
    """Plot ``metrics`` (one panel each) against ``key``; the other varied ``keys`` make one series per combination
    (past ``MAX_LINES`` combinations, one series of all groups). Points are joined by lines only along a numeric
    setting; a categorical one (strategy, objective, model) gets unjoined points."""
    plt = _pyplot()
    labels = setting_labels(keys)
    others = [k for k in keys if k != key]
    groups = group_runs(runs, [key, *others])
    values = list(dict.fromkeys(g.settings[key] for g in groups))
    numeric = is_numeric(values)
    position = {v: float(v) if numeric else i for i, v in enumerate(values) if v is not None}
    baselines = baseline_groups(runs)
    series = _series(groups, others, labels)
    lines = len(series) <= MAX_LINES
    if not lines:
        series = {"settings tried": list(groups)}

    fig, axes = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
    for ax, metric in zip(axes[0], metrics):
        for name, members in series.items():
            points = [(position[g.settings[key]], g.stat(metric)) for g in members if g.settings[key] is not None]
            points = [(x, s) for x, s in points if s is not None]
            if points:
                ax.errorbar([x for x, _ in points], [s.mean for _, s in points], yerr=[s.std for _, s in points],
                            marker="o", capsize=3, linestyle="-" if lines and numeric else "none",
                            label=name or "after training")
        _draw_baselines(ax, baselines, metric, key, position)
        ax.set_title(metric_label(metric))
        ax.set_xlabel(labels[key])
        ax.set_ylabel("score × 100")
        if numeric and len(position) > 1 and min(position.values()) > 0 \
                and max(position.values()) / min(position.values()) >= 50:
            ax.set_xscale("log")
        ax.set_xticks(list(position.values()), [str(v) for v in position])
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(title)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def training_curve(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    """``(step, value)`` of ``metric``, by step, from a run's CSV logs (``<run>/csv/version_*/metrics.csv``, a resumed
    run's versions joined). A step logged by several versions (a run resumed from a checkpoint before the step it
    stopped at redoes the steps between) keeps the latest version's value."""
    by_step: dict[int, float] = {}
    versions = Path(run_dir).glob("csv/version_*/metrics.csv")
    for metrics in sorted(versions, key=lambda path: _version_number(path.parent.name)):
        with open(metrics, newline="", encoding="utf-8") as f:
            by_step |= {int(row["step"]): float(row[metric]) for row in csv.DictReader(f) if row.get(metric)}
    return sorted(by_step.items())


def _version_number(folder: str) -> int:
    """``version_12`` -> 12 (numeric order: version_10 follows version_9); any other name first."""
    number = folder.removeprefix("version_")
    return int(number) if number.isdigit() else -1


def plot_training_curve(points: Sequence[tuple[int, float]], path: Path, title: str, ylabel: str,
                        references: Sequence[tuple[str, float]] = ()) -> Path | None:
    """``(step, value)`` points (:func:`training_curve`) as a line, with a horizontal line per ``(label, value)``
    reference; ``None`` if there are no points."""
    if not points:
        return None
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot([step for step, _ in points], [value for _, value in points])
    for (label, value), style in zip(references, ("--", ":", "-.")):
        ax.axhline(value, color="grey", linestyle=style, linewidth=1, label=label)
    if references:
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("step")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _series(groups: Sequence[Group], others: Sequence[str], labels: dict[str, str]) -> dict[str, list[Group]]:
    """Groups split by the values of the other varied settings: ``"lr=1e-4, P=2" -> [groups]``."""
    out: dict[str, list[Group]] = {}
    for group in groups:
        name = ", ".join(f"{labels[k]}={group.settings[k]}" for k in others)
        out.setdefault(name, []).append(group)
    return out


def _draw_baselines(ax, baselines: Sequence[Group], metric: str, key: str, position: dict) -> None:
    """Before-training scores: points at each model when the plotted setting is the model, else dashed lines."""
    stats = [(base.settings["model"], base.stat(metric, baseline=True)) for base in baselines]
    stats = [(model, s) for model, s in stats if s is not None]
    if key == "model":
        points = [(position[model], s) for model, s in stats if model in position]
        if points:
            ax.errorbar([x for x, _ in points], [s.mean for _, s in points], yerr=[s.std for _, s in points],
                        marker="s", linestyle="none", color="gray", capsize=3, label="before training")
        return
    for model, s in stats:
        ax.axhline(s.mean, linestyle="--", color="gray", label=f"before training ({model})")


def _pyplot():
    try:
        import matplotlib
    except ImportError as err:
        raise DeclutrConfigError("The report's plots need matplotlib: pip install -e '.[sweeps]'.") from err
    matplotlib.use("Agg")  # files only: no display needed
    import matplotlib.pyplot as plt

    return plt
