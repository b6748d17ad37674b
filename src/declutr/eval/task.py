"""What every evaluation task is: named files to read, an ``evaluate(embed)`` returning scores."""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

# Sentences -> embeddings (n, dim): the project's Encoder.encode, or embed_texts on a training module.
EmbedFn = Callable[[Sequence[str]], "np.ndarray | torch.Tensor"]


@dataclass(frozen=True)
class Score:
    """One number of the results table. ``main`` marks the task's headline metric (the one averaged)."""

    task: str  # e.g. "STS12", "STS12.MSRpar", "MRPC"
    metric: str  # e.g. "spearman", "accuracy", "f1"
    value: float  # x 100
    group: str  # "sts" or "transfer"
    main: bool = True

    @property
    def key(self) -> str:
        """Logging name, e.g. ``stsb_spearman`` or ``sts12_msrpar_spearman`` (logged as ``val/<key>``)."""
        return re.sub(r"[^a-z0-9]+", "_", f"{self.task}_{self.metric}".lower()).strip("_")


class EvalTask(ABC):
    """A task reads its files only when evaluated, so a suite can first list what is missing and skip it."""

    name: str
    group: str  # "sts" or "transfer"
    fix: str  # how to point the config at this task's files ("set eval.sts_dir to ..."), for the missing-files warning

    @abstractmethod
    def files(self) -> list[Path]:
        """Every file the task reads."""

    def missing(self) -> list[Path]:
        return [path for path in self.files() if not path.is_file()]

    @abstractmethod
    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        """Scores of the embeddings; ``max_examples`` caps every split at a seeded random subset."""


def as_numpy(vectors, dtype=np.float64) -> np.ndarray:
    """Embeddings as a numpy array, whichever of numpy / torch the embed function returned."""
    if isinstance(vectors, torch.Tensor):
        vectors = vectors.detach().cpu().numpy()
    return np.asarray(vectors, dtype=dtype)


def subsample(n: int, max_examples: int | None, seed: int) -> np.ndarray:
    """Indices of a seeded random subset of ``range(n)`` of size ``max_examples`` (all when ``None``), in order.

    Random rather than the first rows: the transfer files hold one class after the other.
    """
    if max_examples is None or max_examples >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_examples, replace=False))
