"""The results of a suite as one printed table (task | metric | score) and as JSON + CSV files."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from declutr.eval.suite import SuiteResult
from declutr.files.atomic import write_text_atomically

AVERAGE_NAMES = {"sts": "STS avg", "transfer": "transfer avg"}
AVERAGE_METRICS = {"sts": "spearman", "transfer": "accuracy"}


def rows(result: SuiteResult) -> list[tuple[str, str, float]]:
    """``(task, metric, score)``: every score, then one average row per group."""
    out = [(s.task, s.metric, s.value) for s in result.scores]
    for group, average in result.averages().items():
        if average["score"] is not None:
            out.append((AVERAGE_NAMES[group], f"mean {AVERAGE_METRICS[group]} of {len(average['tasks'])}", average["score"]))
    return out


def format_table(result: SuiteResult) -> str:
    """A plain-text table, then the averages' coverage, skipped tasks and the embedding speed."""
    lines = [f"{'task':<22}{'metric':<24}{'score':>8}", "-" * 54]
    lines += [f"{task:<22}{metric:<24}{score:>8.2f}" for task, metric, score in rows(result)]
    for group, average in result.averages().items():
        if average["skipped"]:
            lines.append(f"{AVERAGE_NAMES[group]} covers {', '.join(average['tasks']) or 'nothing'}; "
                         f"not {', '.join(average['skipped'])} (files missing)")
    lines += [item.message() for item in result.skipped]
    speed = result.sentences / result.embed_seconds if result.embed_seconds else float("nan")
    lines.append(f"{result.sentences:,} distinct sentences embedded at {speed:,.0f} sentences/s; "
                 f"whole evaluation {result.seconds:,.0f} s")
    return "\n".join(lines)


def write_results(result: SuiteResult, directory: str | Path, stem: str, metadata: dict) -> tuple[Path, Path]:
    """``<stem>.json`` (scores, averages, skipped tasks, timing, ``metadata``) and ``<stem>.csv`` (the table)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    payload = {
        **metadata,
        "scores": [{"task": s.task, "metric": s.metric, "score": s.value, "group": s.group, "main": s.main,
                    "key": s.key} for s in result.scores],
        "averages": result.averages(),
        "skipped": [{"task": s.task, "group": s.group, "missing": s.missing, "fix": s.fix} for s in result.skipped],
        "seconds": result.seconds,
        "sentences_embedded": result.sentences,
        "embed_seconds": result.embed_seconds,
    }
    json_path, csv_path = directory / f"{stem}.json", directory / f"{stem}.csv"
    write_text_atomically(json_path, json.dumps(payload, indent=2, default=str) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "metric", "score"])
    writer.writerows((task, metric, f"{score:.2f}") for task, metric, score in rows(result))
    write_text_atomically(csv_path, buffer.getvalue())
    return json_path, csv_path
