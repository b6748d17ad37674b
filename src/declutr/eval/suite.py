"""A set of evaluation tasks run on one encoder: missing data skipped and listed, sentences embedded once; its
results as one printed table (task | metric | score) and as JSON + CSV files."""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from declutr.config.schema import check_arguments
from declutr.config.settings import EVAL_MAX_EXAMPLES
from declutr.errors import DeclutrConfigError
from declutr.eval.embedding_cache import CachedEmbedder
from declutr.eval.task import EmbedFn, EvalTask, Score, as_numpy
from declutr.files.atomic import write_text_atomically

log = logging.getLogger(__name__)
GROUPS = ("sts", "transfer")
AVERAGE_NAMES = {"sts": "STS avg", "transfer": "transfer avg"}
AVERAGE_METRICS = {"sts": "spearman", "transfer": "accuracy"}
EMBED_CHUNK = 2048  # sentences per embed call: the progress bar moves at least this often (the encoder batches within)


@dataclass(frozen=True)
class Skipped:
    """A task left out because some of its files are missing, and the config key that points at them."""

    task: str
    group: str
    missing: list[str]
    fix: str

    def message(self) -> str:
        shown = ", ".join(self.missing[:2]) + (f" and {len(self.missing) - 2} more" if len(self.missing) > 2 else "")
        return f"{self.task} skipped: {len(self.missing)} file(s) missing ({shown}); {self.fix}."


@dataclass
class SuiteResult:
    """Every score of a run, what was skipped, and how long embedding took."""

    scores: list[Score]
    skipped: list[Skipped] = field(default_factory=list)
    seconds: float = 0.0  # whole run
    sentences: int = 0  # distinct sentences embedded
    embed_seconds: float = 0.0  # of which embedding
    task_seconds: dict[str, dict[str, float]] = field(default_factory=dict)  # per task: {"embed": s, "fit": s}

    def averages(self) -> dict[str, dict]:
        """Per group: the mean of the tasks' headline scores, which tasks it covers and which it lacks."""
        out = {}
        for group in GROUPS:
            main = [s for s in self.scores if s.group == group and s.main]
            skipped = [s.task for s in self.skipped if s.group == group]
            if main or skipped:
                score = sum(s.value for s in main) / len(main) if main else None
                out[group] = {"score": score, "tasks": [s.task for s in main], "skipped": skipped}
        return out

    def by_key(self) -> dict[str, float]:
        """``{score.key: value}``, e.g. ``{"stsb_spearman": 82.0}``."""
        return {s.key: s.value for s in self.scores}


class EvalSuite:
    """Runs its tasks in order; ``max_examples`` caps every split (seeded) for quick development runs."""

    def __init__(self, tasks: Mapping[str, EvalTask] | Sequence[EvalTask], max_examples: int | None = None,
                 seed: int = 1111) -> None:
        self.tasks = list(tasks.values()) if isinstance(tasks, Mapping) else list(tasks)
        if not self.tasks:
            raise DeclutrConfigError("No evaluation task configured: choose eval=sts|transfer|all|quick.")
        check_arguments({EVAL_MAX_EXAMPLES: max_examples})  # fewer than 10 examples score nothing
        self.max_examples, self.seed = max_examples, seed

    def skipped(self) -> list[Skipped]:
        """Tasks whose files are not all there."""
        out = []
        for task in self.tasks:
            missing = task.missing()
            if missing:
                out.append(Skipped(task.name, task.group, [str(p) for p in missing], task.fix))
        return out

    def run(self, embed: EmbedFn, progress: bool = True) -> SuiteResult:
        start = time.perf_counter()
        skipped = self.skipped()
        for item in skipped:
            log.warning(item.message())
        names = {s.task for s in skipped}
        runnable = [task for task in self.tasks if task.name not in names]
        scores: list[Score] = []
        timings = {}
        with tqdm(total=0, desc="eval", unit="sentence", disable=not progress) as bar:
            cached = CachedEmbedder(ChunkedEmbed(embed, bar))
            for number, task in enumerate(runnable, 1):
                bar.set_description(f"eval {number}/{len(runnable)} {task.name}")
                embedded, task_start = cached.seconds, time.perf_counter()
                scores += task.evaluate(cached, self.max_examples, self.seed)
                embed_s = cached.seconds - embedded  # sentences another task embedded first are not counted again
                timings[task.name] = {"embed": embed_s, "fit": time.perf_counter() - task_start - embed_s}
        return SuiteResult(scores, skipped, time.perf_counter() - start, cached.embedded, cached.seconds, timings)


class ChunkedEmbed:
    """``embed`` called on at most ``EMBED_CHUNK`` sentences at a time, each counted on ``bar`` when embedded.

    Tasks read their files only when they run, so no total is known up front: each request adds its sentences to
    the bar's total, and the bar's ETA is the time to embed every sentence asked for so far. (A bar over tasks sat
    at "5/8" for minutes while one large transfer task embedded, with an ETA averaged over tasks of any size.)
    Chunking does not depend on ``progress``, so the embeddings are the same whether the bar is shown or not.
    """

    def __init__(self, embed: EmbedFn, bar: tqdm) -> None:
        self.embed, self.bar = embed, bar

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if not texts:
            return as_numpy(self.embed(texts), np.float32)
        self.bar.total += len(texts)
        self.bar.refresh()
        parts = []
        for begin in range(0, len(texts), EMBED_CHUNK):
            chunk = texts[begin : begin + EMBED_CHUNK]
            parts.append(as_numpy(self.embed(chunk), np.float32))
            self.bar.update(len(chunk))
        return np.concatenate(parts) if len(parts) > 1 else parts[0]


def rows(result: SuiteResult) -> list[tuple[str, str, float]]:
    """``(task, metric, score)``: every score, then one average row per group."""
    out = [(s.task, s.metric, s.value) for s in result.scores]
    for group, average in result.averages().items():
        if average["score"] is not None:
            out.append((AVERAGE_NAMES[group], f"mean {AVERAGE_METRICS[group]} of {len(average['tasks'])}", average["score"]))
    return out


def format_table(result: SuiteResult) -> str:
    """A plain-text table, then the averages' coverage (which names the skipped tasks) and the embedding speed."""
    lines = [f"{'task':<22}{'metric':<24}{'score':>8}", "-" * 54]
    lines += [f"{task:<22}{metric:<24}{score:>8.2f}" for task, metric, score in rows(result)]
    for group, average in result.averages().items():
        if average["skipped"]:
            lines.append(f"{AVERAGE_NAMES[group]} covers {', '.join(average['tasks']) or 'nothing'}; "
                         f"not {', '.join(average['skipped'])} (files missing)")
    # Each skipped task's files and fix were logged as a warning when the run started (and are in the JSON): the
    # coverage lines above name them without printing those lines a second time.
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
        "task_seconds": result.task_seconds,
    }
    json_path, csv_path = directory / f"{stem}.json", directory / f"{stem}.csv"
    write_text_atomically(json_path, json.dumps(payload, indent=2, default=str) + "\n")
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["task", "metric", "score"])
    writer.writerows((task, metric, f"{score:.2f}") for task, metric, score in rows(result))
    write_text_atomically(csv_path, buffer.getvalue())
    return json_path, csv_path
