"""Semantic textual similarity: cosine of the two embeddings vs. gold, Spearman x 100 (SentEval protocol).

No training: STS12-16 (all subsets concatenated, plus each subset), STS-B and SICK-R, as in SimCSE's "all"
setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import rankdata

from declutr.eval.sts_data import STSPairs, load_sick, load_sts_subset, load_stsb, sts_subset_files, stsb_file
from declutr.eval.task import EmbedFn, EvalTask, Score, as_numpy, subsample


def cosine_similarities(embed: EmbedFn, pairs: STSPairs) -> np.ndarray:
    """Cosine similarity of each pair ``(n,)``; both sides are embedded in one call (one length-sorted pass)."""
    vectors = as_numpy(embed(pairs.sentences1 + pairs.sentences2))
    a, b = vectors[: len(pairs)], vectors[len(pairs):]
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(axis=1) / np.maximum(norms, 1e-12)


def spearman_x100(predicted: Sequence[float], gold: Sequence[float]) -> float:
    """Spearman rank correlation x 100: Pearson correlation of the ranks (ties get their average rank)."""
    return float(np.corrcoef(rankdata(predicted), rankdata(gold))[0, 1]) * 100.0


def sts_spearman(embed: EmbedFn, pairs: STSPairs) -> float:
    """Spearman correlation x 100 between cosine similarities of the embedded pairs and the gold scores."""
    return spearman_x100(cosine_similarities(embed, pairs), pairs.scores)


class STSBenchmark(EvalTask):
    """STS-B, one split of SentEval's ``sts-{split}.csv`` (``test`` in the suite, ``dev`` during training)."""

    group, fix = "sts", "set eval.stsb_dir (or paths.data_dir / DECLUTR_DATA_DIR) to the folder holding sts-<split>.csv"

    def __init__(self, directory: str | Path, split: str = "test", name: str = "STSB") -> None:
        self.directory, self.split, self.name = Path(directory), split, name
        self._pairs: STSPairs | None = None

    def files(self) -> list[Path]:
        return [stsb_file(self.directory, self.split)]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        self._pairs = self._pairs or load_stsb(self.directory, self.split)  # read once: the callback calls often
        pairs = self._pairs.take(subsample(len(self._pairs), max_examples, seed))
        return [Score(self.name, "spearman", sts_spearman(embed, pairs), self.group)]


class SICKRelatedness(EvalTask):
    """SICK-R test (``SICK_test_annotated.txt``), relatedness scored by cosine, no training."""

    group, fix = "sts", "set eval.sick_dir to the folder holding SICK_test_annotated.txt (SentEval's data/downstream/SICK)"

    def __init__(self, directory: str | Path, filename: str = "SICK_test_annotated.txt", name: str = "SICKR") -> None:
        self.path, self.name = Path(directory) / filename, name

    def files(self) -> list[Path]:
        return [self.path]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        pairs = load_sick(self.path)
        pairs = pairs.take(subsample(len(pairs), max_examples, seed))
        return [Score(self.name, "spearman", sts_spearman(embed, pairs), self.group)]


class STSYear(EvalTask):
    """One of STS12-16: Spearman over all its subsets concatenated (the headline), and per subset."""

    group, fix = "sts", ("set eval.sts_dir to the folder holding STS12-en-test/ ... STS16-en-test/ "
                         "(SentEval's data/downstream/STS)")

    def __init__(self, name: str, directory: str | Path, subsets: Sequence[str]) -> None:
        self.name, self.directory, self.subsets = name, Path(directory), list(subsets)

    def files(self) -> list[Path]:
        return [path for subset in self.subsets for path in sts_subset_files(self.directory, subset)]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        subsets = {}
        for subset in self.subsets:
            pairs = load_sts_subset(self.directory, subset)
            subsets[subset] = pairs.take(subsample(len(pairs), max_examples, seed))
        everything = STSPairs(*(sum((getattr(p, field) for p in subsets.values()), [])
                                for field in ("sentences1", "sentences2", "scores")))
        cosines = cosine_similarities(embed, everything)
        scores = [Score(self.name, "spearman", spearman_x100(cosines, everything.scores), self.group)]
        start = 0
        for subset, pairs in subsets.items():
            part = slice(start, start + len(pairs))
            scores.append(Score(f"{self.name}.{subset}", "spearman", spearman_x100(cosines[part], pairs.scores),
                                self.group, main=False))
            start += len(pairs)
        return scores
