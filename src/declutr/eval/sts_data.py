"""Readers of the STS sets in the exact formats SentEval ships them: STS-B, STS12-16 and SICK."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from declutr.errors import DeclutrConfigError


@dataclass(frozen=True)
class STSPairs:
    """Sentence pairs with gold similarity scores."""

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.scores)

    def take(self, indices: np.ndarray) -> STSPairs:
        return STSPairs([self.sentences1[i] for i in indices], [self.sentences2[i] for i in indices],
                        [self.scores[i] for i in indices])


def stsb_file(directory: str | Path, split: str) -> Path:
    return Path(directory) / f"sts-{split}.csv"


def load_stsb(directory: str | Path, split: str) -> STSPairs:
    """STS Benchmark as SentEval ships it: ``sts-{split}.csv``, tab-separated, score in column 5,
    sentences in columns 6 and 7 (extra trailing columns ignored)."""
    path = stsb_file(directory, split)
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


def sts_subset_files(directory: str | Path, subset: str) -> tuple[Path, Path]:
    """``STS.input.<subset>.txt`` (``s1<TAB>s2`` per line) and ``STS.gs.<subset>.txt`` (a score per line)."""
    return Path(directory) / f"STS.input.{subset}.txt", Path(directory) / f"STS.gs.{subset}.txt"


def _lines(path: Path) -> list[str]:
    # Split on "\n" only: str.splitlines() would also split inside a sentence at U+2028, U+0085 and friends.
    text = path.read_text(encoding="utf-8")
    return [line.rstrip("\r") for line in text.removesuffix("\n").split("\n")] if text else []


def load_sts_subset(directory: str | Path, subset: str) -> STSPairs:
    """One STS12-16 subset; pairs whose gold line is empty have no gold score and are dropped (as SentEval)."""
    inputs, gold = sts_subset_files(directory, subset)
    pairs, scores = _lines(inputs), _lines(gold)
    if len(pairs) != len(scores):
        raise DeclutrConfigError(f"{inputs} has {len(pairs)} lines but {gold} has {len(scores)}: the two files of "
                                 f"subset {subset!r} must align line by line; re-extract them.")
    s1, s2, kept = [], [], []
    for number, (pair, score) in enumerate(zip(pairs, scores), 1):
        if not score.strip():
            continue
        columns = pair.split("\t")
        if len(columns) < 2:
            raise DeclutrConfigError(f"{inputs}:{number} is not 'sentence1<TAB>sentence2'.")
        s1.append(columns[0])
        s2.append(columns[1])
        kept.append(float(score))
    return STSPairs(s1, s2, kept)


def load_sick(path: str | Path) -> STSPairs:
    """SICK (``SICK_test_annotated.txt``): TSV with a header naming sentence_A, sentence_B, relatedness_score."""
    with Path(path).open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    required = {"sentence_A", "sentence_B", "relatedness_score"}
    if rows and not required <= set(rows[0]):
        raise DeclutrConfigError(f"{path} lacks the columns {sorted(required - set(rows[0]))}: expected SICK's "
                                 "pair_ID, sentence_A, sentence_B, relatedness_score, entailment_judgment header.")
    return STSPairs([r["sentence_A"] for r in rows], [r["sentence_B"] for r in rows],
                    [float(r["relatedness_score"]) for r in rows])
