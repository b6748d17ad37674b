"""The write-up of ``task=reproduce``: tables over seeds with the untrained baselines, the paper's findings beside
what reproduces here, the base's MLM loss curve, every stage's wall time and the commands.

Verdicts compare means on STS-B test (the issue's and SimCSE's headline STS score): a difference larger than the
larger of the two standard deviations over seeds counts, a smaller one is "within noise".
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from declutr.config.settings import MAX_SPAN_LEN, NUM_ANCHORS, NUM_POSITIVES, STRATEGY
from declutr.data.mlm_reference import context_free_loss
from declutr.data.token_shards import corpus_token_counts, entropy_of_counts
from declutr.files.atomic import write_text_atomically
from declutr.report.aggregate import Group, Stat, group_runs
from declutr.report.collect import find_runs, read_eval_scores
from declutr.report.plot import plot_training_curve, training_curve
from declutr.report.results import OK, read_result
from declutr.report.table import format_stat, markdown_table

STAGES = ("base", "baselines", "lr", "axes", "transfer", "reports", "doc")
VERDICT_METRIC = "stsb_test"
# Report metric -> the key task=eval gives it (baselines are scored by eval=stsb and eval=quick).
EVAL_KEYS = {"stsb_dev": "stsb_dev_spearman", "stsb_test": "stsb_spearman", "transfer_avg": "transfer_avg"}
METRIC_NAMES = {"stsb_dev": "STS-B dev", "stsb_test": "STS-B test", "transfer_avg": "transfer avg (eval=quick)"}

BASELINE_LABELS = {
    "random_init": "random init (bert_mini, mean pooling)",
    "word_embeddings": "MLM base, averaged input word embeddings",
    "minilm_word_embeddings": "all-MiniLM-L6-v2, averaged input word embeddings",
    "mlm_base": "**MLM base** (bert_mini + MLM pretraining: every run's start)",
    "minilm": "all-MiniLM-L6-v2 as shipped (supervised ceiling: 1B sentence pairs)",
}


@dataclass(frozen=True)
class Axis:
    """How the write-up presents one ablation axis: its setting, value labels, the paper's finding and the
    comparisons ``(better, worse)`` that the finding predicts."""

    title: str
    key: str
    finding: str
    checks: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, str], ...] = ()

    def label(self, value: str) -> str:
        return dict(self.labels).get(value, value)


AXES = {
    "objective": Axis(
        "Objective (equal steps)", "experiment/objective",
        "Extending an MLM-pretrained encoder's pretraining with the contrastive objective lifts its embeddings a lot; "
        "contrastive + MLM beats either objective alone.",
        (("contrastive_mlm", "mlm"), ("contrastive_mlm", "contrastive")),
        (("contrastive_mlm", "contrastive + MLM (the paper's)"), ("contrastive", "contrastive only"),
         ("mlm", "MLM only"))),
    "anchors": Axis(
        "Anchors per document (A)", NUM_ANCHORS,
        "Sampling several anchors per document helps, by a large margin (A = 2 over A = 1).",
        (("2", "1"), ("4", "2"))),
    "positives": Axis(
        "Positives per anchor (P)", NUM_POSITIVES,
        "Sampling several positives per anchor helps, less than more anchors do.",
        (("2", "1"), ("4", "2"))),
    "strategy": Axis(
        "Positive sampling strategy", STRATEGY,
        "Overlapping views (a positive may be adjacent to, overlap, contain or sit inside its anchor) beat "
        "adjacent-only and subsumed-only positives.",
        (("overlap", "adjacent"), ("overlap", "subsumed"))),
    "span_length": Axis(
        "Longest span (tokens)", MAX_SPAN_LEN,
        "Longer spans (up to 512 tokens) learn better embeddings.",
        (("256", "128"), ("510", "256"))),
}


class Layout:
    """Where ``task=reproduce`` puts everything under its ``output_dir``."""

    def __init__(self, root: Path, base: Path | None = None) -> None:
        self.root = Path(root).resolve()
        # absolute as spelt, links kept: a base under the working folder shows as a relative path in the write-up
        self.base = Path(os.path.abspath(base)) if base is not None else self.root / "mlm_base"
        self.logs = self.root / "logs"

    def baseline(self, name: str) -> Path:
        return self.root / "baselines" / name

    def lr_run(self, lr: float) -> Path:
        return self.root / "lr" / f"{lr:g}"

    def axis(self, axis: str) -> Path:
        return self.root / "axes" / axis

    def report(self, axis: str) -> Path:
        return self.root / "reports" / axis

    def job_record(self, name: str) -> Path:
        return self.root / "jobs" / f"{name}.json"

    def jobs(self) -> list[dict]:
        folder = self.root / "jobs"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []


@dataclass(frozen=True)
class Row:
    label: str
    n: int
    stats: dict[str, Stat | None]


def write_reproduction(layout: Layout, doc: Path, options: dict) -> Path:
    """Writes ``doc`` (markdown) and its plots into ``doc``'s sibling folder of the same stem. ``options`` is
    ``reproduce``'s config; ``options["base"]["corpus"]``, the prepared corpus the base trained on, gives its MLM loss a
    reference (its unigram entropy)."""
    assets = doc.with_suffix("")
    assets.mkdir(parents=True, exist_ok=True)
    baselines = {name: baseline_row(layout, name) for name in options["baselines"]}
    baselines = {name: row for name, row in baselines.items() if row is not None}
    lines = [
        "# The paper in miniature",
        "",
        "Written by `python run.py task=reproduce` (`make reproduce`) from the runs under "
        f"`{options['output_dir']}`; rerun it to regenerate this page. A small BERT is pretrained here with "
        "MLM only (the paper's starting point: an MLM-pretrained encoder whose mean-pooled embeddings are poor), "
        "then its pretraining is extended with DeCLUTR (`experiment/scale=miniature`) along every ablation axis, "
        f"{len(options['seeds'])} seed{'s' if len(options['seeds']) != 1 else ''} per setting. Scores × 100: Spearman for STS-B, accuracy for transfer; "
        "mean ± standard deviation over seeds (n runs). Verdicts compare STS-B test means: a difference larger "
        "than the larger standard deviation counts, a smaller one is within noise.",
        "",
    ]
    lines += _base_section(layout, assets, doc, options["base"])
    lines += _lr_section(layout, options["learning_rates"])
    for axis in options["axes"]:
        if axis in AXES:
            lines += _axis_section(layout, axis, axis in options["transfer_axes"], baselines, assets, doc)
    lines += _times_section(layout)
    write_text_atomically(doc, "\n".join(lines) + "\n")
    return doc


def baseline_row(layout: Layout, name: str) -> Row | None:
    """A baseline's scores (``eval=stsb`` + ``eval=quick`` results in its folder), or ``None`` if never evaluated."""
    scores = read_eval_scores(layout.baseline(name))
    if not scores:
        return None
    stats = {metric: Stat.of([scores.get(key)]) for metric, key in EVAL_KEYS.items()}
    return Row(BASELINE_LABELS.get(name, name), 1, stats)


def axis_rows(layout: Layout, axis: str) -> list[tuple[str, Group]]:
    """``(value, group of finished runs over seeds)`` per value of the axis's setting, in sweep order."""
    runs = [run for run in find_runs(layout.axis(axis)) if run.status == OK]
    key = AXES[axis].key
    return [(group.settings[key], group) for group in group_runs(runs, [key])]


def verdict(better: Stat | None, worse: Stat | None) -> str:
    """``"+d (reproduces)"``, ``"+d (within noise)"`` or ``"-d (opposite)"`` for the predicted ``better > worse``."""
    if better is None or worse is None:
        return "not measured"
    if min(better.n, worse.n) < 2:
        return f"{better.mean - worse.mean:+.2f} (one seed: no spread to judge by)"
    difference = better.mean - worse.mean
    noise = max(better.std, worse.std)
    word = "reproduces" if difference > noise else "opposite" if difference < -noise else "within noise"
    return f"{difference:+.2f} ({word})"


def _axis_section(layout: Layout, axis: str, transfer: bool, baselines: dict[str, Row], assets: Path,
                  doc: Path) -> list[str]:
    spec = AXES[axis]
    metrics = ["stsb_dev", "stsb_test"] + (["transfer_avg"] if transfer else [])
    groups = axis_rows(layout, axis)
    if not groups:
        return [f"## {spec.title}", "", f"Not run yet: no finished run under `<out>/axes/{axis}`. `python run.py "
                f"task=reproduce` runs it (or `python run.py -m experiment=ablation/{axis} experiment/scale=miniature "
                "seed=<s>` by hand).", "", f"**The paper:** {spec.finding}", ""]
    rows = list(baselines.values())
    steps = sorted({run.result.steps for _, g in groups for run in g.finished})
    rows += [Row(f"{spec.label(value)} — after {', '.join(map(str, steps))} steps", len(group.finished),
                 {m: group.stat(m) for m in metrics}) for value, group in groups]
    finished = [run.result.settings for _, group in groups for run in group.finished]
    rates = sorted({settings.get("lr") for settings in finished} - {None})
    seeds = sorted({settings.get("seed") for settings in finished} - {None})
    commits = sorted({run.result.git_commit for _, group in groups for run in group.finished} - {None})
    lines = [f"## {spec.title}", "", f"Learning rate {', '.join(f'{lr:g}' for lr in rates) or 'not recorded'}, "
             f"seeds {', '.join(map(str, seeds)) or 'not recorded'}, code {', '.join(commits) or 'not recorded'}.",
             "", _table(rows, metrics), ""]
    for plot in sorted(layout.report(axis).glob("*.png")):
        target = assets / axis / plot.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(plot, target)
        lines += [f"![{axis}: {plot.stem}]({target.relative_to(doc.parent).as_posix()})", ""]
    by_value = {value: group.stat(VERDICT_METRIC) for value, group in groups}
    checks = [f"{spec.label(a)} vs {spec.label(b)}: {verdict(by_value.get(a), by_value.get(b))}"
              for a, b in spec.checks]
    lines += [f"**The paper:** {spec.finding}", "",
              f"**Here** (STS-B test): {'; '.join(checks)}.", ""]
    if axis == "objective":
        lines += _targets(by_value, baselines)
    return lines


def _targets(objective: dict[str, Stat | None], baselines: dict[str, Row]) -> list[str]:
    """The headline claims against the untrained references."""
    declutr = objective.get("contrastive_mlm")
    if declutr is None:
        return []
    lines = ["**Against the references** (STS-B test, contrastive + MLM):", ""]
    for name, target in (("mlm", "MLM only, equal steps"),):
        if objective.get(name):
            lines.append(f"- over {target}: {declutr.mean - objective[name].mean:+.2f}")
    for name in ("mlm_base", "random_init", "word_embeddings", "minilm_word_embeddings", "minilm"):
        stat = baselines[name].stats.get(VERDICT_METRIC) if name in baselines else None
        if stat is not None:
            lines.append(f"- over {BASELINE_LABELS[name].replace('**', '')}: {declutr.mean - stat.mean:+.2f}")
    return lines + [""]


def _base_section(layout: Layout, assets: Path, doc: Path, base: dict) -> list[str]:
    result = read_result(layout.base)
    lines = ["## The MLM base", "", f"`python run.py experiment={base['experiment']}`: {base['description']}", ""]
    if result is None or result.status != OK:
        return lines + ["The base run has not finished.", ""]
    counts = corpus_token_counts(Path(base["corpus"])) if base.get("corpus") else None
    entropy = entropy_of_counts(counts) if counts is not None else None
    copying = context_free_loss(counts, len(counts)) if counts is not None else None
    references = [("corpus unigram entropy", entropy), ("no context, copying visible tokens", copying)]
    points = training_curve(layout.base, "train/mlm_loss")
    curve = plot_training_curve(points, assets / "mlm_loss.png", "MLM pretraining of the base",
                                "MLM loss (cross-entropy, nats)", references if counts is not None else ())
    speed = f" ({result.tokens_per_s:,.0f} tokens/s)" if result.tokens_per_s else ""
    lines += [f"{result.steps} steps in {result.seconds / 60:.1f} min{speed}. "
              f"STS-B test, mean pooling: {result.before.get('stsb_test', float('nan')):.2f} at random init → "
              f"{result.after.get('stsb_test', float('nan')):.2f} after MLM pretraining (dev "
              f"{result.before.get('stsb_dev', float('nan')):.2f} → {result.after.get('stsb_dev', float('nan')):.2f}).", ""]
    losses = [value for _, value in points]
    if losses and entropy is not None:
        tail = losses[-max(1, len(losses) // 10):]
        final = sum(tail) / len(tail)
        lines += [f"MLM loss over the last 10% of logged steps: {final:.2f} nats. Predicting every "
                  f"masked token from its corpus frequency alone, context unused, costs {entropy:.2f} nats (the "
                  "prepared corpus's unigram entropy): a loss near it means the base has learnt little beyond "
                  "word frequencies, far from an encoder like RoBERTa. Without context, a predictor can still bet "
                  "that a token left visible (10% of the chosen ones stay, 10% become random tokens) is the answer: "
                  f"the best such predictor costs {copying:.2f} nats, so only a loss below that line comes from the "
                  f"context: the base ends {abs(final - copying):.2f} nats {'below' if final < copying else 'above'} "
                  "it.", ""]
    if curve is not None:
        lines += [f"![MLM loss of the base]({curve.relative_to(doc.parent).as_posix()})", ""]
    return lines


def _lr_section(layout: Layout, learning_rates: Sequence[float]) -> list[str]:
    rows = []
    for lr in learning_rates:
        result = read_result(layout.lr_run(lr))
        if result and result.status == OK:
            rows.append(f"| {lr:g} | {result.steps} | {result.after.get('stsb_dev', float('nan')):.2f} | "
                        f"{result.after.get('stsb_test', float('nan')):.2f} |")
    if not rows:
        return []
    return ["## Learning rate", "", "One miniature run per learning rate (contrastive + MLM, the paper's settings, "
            "seed 0, `reproduce.lr_steps` steps: a probe shorter than the axes' runs); the best on STS-B dev trains "
            "the axes (each axis names the rate its runs used).", "",
            "| lr | steps | STS-B dev | STS-B test |",
            "|---|---|---|---|", *rows, ""]


def busy_seconds(jobs: Sequence[dict]) -> float:
    """Seconds during which at least one of ``jobs`` (``started``/``ended`` times) was running."""
    total, end = 0.0, float("-inf")
    for job in sorted(jobs, key=lambda j: j["started"]):
        start = max(job["started"], end)
        if job["ended"] > start:
            total += job["ended"] - start
        end = max(end, job["ended"])
    return total


def _times_section(layout: Layout) -> list[str]:
    jobs = layout.jobs()
    stages: dict[str, list[dict]] = {}
    for job in jobs:
        stages.setdefault(job["stage"], []).append(job)
    lines = ["## Wall time and commands", "",
             "Stages overlap (the baselines run beside the lr and axes stages): a stage's wall time is the time "
             "during which at least one of its jobs ran (so pauses between interrupted and resumed runs do not "
             "count); job minutes add up each job's own time, which jobs run side by side "
             "(`reproduce.parallel`) stretch when they share few cores.", "",
             "| stage | jobs | wall time (min) | job minutes |", "|---|---|---|---|"]
    groups = [(stage, stages[stage]) for stage in STAGES if stage in stages] + ([("all", jobs)] if jobs else [])
    lines += [f"| {label} | {len(members)} | {busy_seconds(members) / 60:.1f} | "
              f"{sum(j['seconds'] for j in members) / 60:.1f} |" for label, members in groups]
    lines += ["", "Every job, with the command it ran (`<out>`: the output folder; other paths under the working folder "
              "relative to it):", "", "| job | min | command |", "|---|---|---|"]
    here = f"{Path.cwd()}{os.sep}"  # this machine's folders stay out of the write-up
    lines += [f"| {job['job']} | {job['seconds'] / 60:.1f} | "
              f"`{job['command'].replace(str(layout.root), '<out>').replace(here, '')}` |"
              for job in sorted(jobs, key=lambda j: j["started"])]
    return lines + [""]


def _table(rows: Sequence[Row], metrics: Sequence[str]) -> str:
    header = ["", "n", *(METRIC_NAMES[m] for m in metrics)]
    return markdown_table(header, [[row.label, str(row.n), *(format_stat(row.stats.get(m)) for m in metrics)]
                                   for row in rows])
