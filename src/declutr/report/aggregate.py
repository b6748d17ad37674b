"""Runs grouped by the settings a sweep varied, each score as mean ± std over the group's finished runs (seeds)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from declutr.report.collect import Run
from declutr.report.results import OK


@dataclass(frozen=True)
class Stat:
    """Mean and sample standard deviation (0 for a single value) of ``n`` values."""

    mean: float
    std: float
    n: int

    @classmethod
    def of(cls, values: Sequence[float]) -> Stat | None:
        values = [v for v in values if v is not None and not math.isnan(v)]
        if not values:
            return None
        return cls(statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values))


@dataclass(frozen=True)
class Group:
    """Runs sharing ``settings`` (varied key -> value; ``None`` where a run lacks the key)."""

    settings: dict[str, str | None]
    runs: tuple[Run, ...]

    @property
    def finished(self) -> list[Run]:
        return [run for run in self.runs if run.status == OK]

    def stat(self, metric: str, baseline: bool = False) -> Stat | None:
        """``metric`` over the finished runs, after training (or before it, for ``baseline``)."""
        return Stat.of([(run.baseline() if baseline else run.scores()).get(metric) for run in self.finished])

    def steps(self) -> list[int]:
        return sorted({run.result.steps for run in self.finished if run.result.steps is not None})


def group_runs(runs: Iterable[Run], keys: Sequence[str]) -> list[Group]:
    """One group per combination of values of ``keys``, sorted key by key: numerically when every value of the
    key is a number, else in the order the values first appear (the sweep's order)."""
    runs = list(runs)
    return _groups(runs, lambda run: tuple(run.overrides.get(key) for key in keys), keys)


def baseline_groups(runs: Iterable[Run]) -> list[Group]:
    """The untrained models of the runs: one group per base model (``Run.base_model``), settings ``{"model": ...}``."""
    return _groups(list(runs), lambda run: (run.base_model(),), ["model"])


def _groups(runs: list[Run], key_of: Callable[[Run], tuple], keys: Sequence[str]) -> list[Group]:
    members: dict[tuple, list[Run]] = {}
    for run in runs:
        members.setdefault(key_of(run), []).append(run)
    orders = [_value_order([combo[i] for combo in members]) for i in range(len(keys))]
    ordered = sorted(members, key=lambda combo: [order(value) for order, value in zip(orders, combo)])
    return [Group(dict(zip(keys, combo)), tuple(members[combo])) for combo in ordered]


def _value_order(values: list[str | None]) -> Callable[[str | None], tuple]:
    """Sort key for one setting's values: as numbers if all are, else by first appearance; ``None`` last."""
    present = [v for v in values if v is not None]
    numbers = {v: _number(v) for v in present}
    if all(n is not None for n in numbers.values()):
        return lambda v: (1, 0.0) if v is None else (0, numbers[v])
    first = {v: i for i, v in reversed(list(enumerate(present)))}
    return lambda v: (1, 0) if v is None else (0, first[v])


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def is_numeric(values: Iterable[str | None]) -> bool:
    """Whether every (present) value reads as a number: such a setting gets a numeric axis in plots."""
    present = [v for v in values if v is not None]
    return bool(present) and all(_number(v) is not None for v in present)
