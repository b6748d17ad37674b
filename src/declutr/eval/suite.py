"""A set of evaluation tasks run on one encoder: missing data skipped and listed, sentences embedded once."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from tqdm.auto import tqdm

from declutr.errors import DeclutrConfigError
from declutr.eval.embedding_cache import CachedEmbedder
from declutr.eval.task import EmbedFn, EvalTask, Score

log = logging.getLogger(__name__)
GROUPS = ("sts", "transfer")


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
        if max_examples is not None and max_examples < 10:
            raise DeclutrConfigError(f"eval.max_examples={max_examples} is too small to score anything: use null or >= 10.")
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
        cached = CachedEmbedder(embed)
        scores: list[Score] = []
        bar = tqdm(runnable, desc="eval", unit="task", disable=not progress)
        for task in bar:
            bar.set_postfix_str(task.name)
            scores += task.evaluate(cached, self.max_examples, self.seed)
        return SuiteResult(scores, skipped, time.perf_counter() - start, cached.embedded, cached.seconds)
