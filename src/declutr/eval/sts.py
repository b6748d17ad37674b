"""Semantic textual similarity: cosine of the two embeddings vs. gold, Spearman x 100 (SentEval protocol)."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torchmetrics.functional import spearman_corrcoef

from declutr.errors import DeclutrConfigError

EmbedFn = Callable[[Sequence[str]], torch.Tensor]


@dataclass(frozen=True)
class STSPairs:
    """Sentence pairs with gold similarity scores."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]


def load_stsb(directory: str | Path, split: str) -> STSPairs:
    """STS Benchmark as SentEval ships it: ``sts-{split}.csv``, tab-separated, score in column 5,
    sentences in columns 6 and 7 (extra trailing columns ignored)."""
    path = Path(directory) / f"sts-{split}.csv"
    if not path.is_file():
        raise DeclutrConfigError(f"STS-B file {path} not found: set paths.data_dir (or DECLUTR_DATA_DIR) to the data folder.")
    s1, s2, scores = [], [], []
    with path.open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if len(row) >= 7:
                scores.append(float(row[4]))
                s1.append(row[5])
                s2.append(row[6])
    return STSPairs(s1, s2, scores)


def sts_spearman(embed: EmbedFn, pairs: STSPairs) -> float:
    """Spearman correlation x 100 between cosine similarities of the embedded pairs and the gold scores."""
    a, b = embed(pairs.sentences1), embed(pairs.sentences2)
    cosine = torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=-1)
    return float(spearman_corrcoef(cosine, torch.tensor(pairs.scores, dtype=torch.float64))) * 100.0


class STSBEvaluator:
    """STS-B Spearman on one split, returned as ``{"stsb_spearman": value}``; the pairs are read once."""

    def __init__(self, directory: str | Path, split: str = "dev") -> None:
        self.split = split
        self.pairs = load_stsb(directory, split)

    def __call__(self, embed: EmbedFn) -> dict[str, float]:
        return {"stsb_spearman": sts_spearman(embed, self.pairs)}
