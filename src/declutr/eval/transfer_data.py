"""Readers of SentEval's transfer-task files: MR, CR, SUBJ, MPQA, SST-2, TREC and MRPC, in their own formats."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from declutr.errors import DeclutrConfigError


def _normalise(text: str) -> str:
    # Single spaces, as SentEval's split()/join; an empty sentence becomes "." as in SentEval's batchers.
    return " ".join(text.split()) or "."


@dataclass(frozen=True)
class Labelled:
    """Sentences with integer labels; for paired tasks, ``sentences2`` holds the second sentence of each pair."""

    sentences: list[str]
    labels: np.ndarray  # (n,) int
    sentences2: list[str] | None = None

    def __len__(self) -> int:
        return len(self.sentences)

    def take(self, indices: np.ndarray) -> Labelled:
        second = None if self.sentences2 is None else [self.sentences2[i] for i in indices]
        return Labelled([self.sentences[i] for i in indices], self.labels[indices], second)


def _non_empty_lines(path: Path, encoding: str) -> list[str]:
    with path.open(encoding=encoding) as handle:
        return [line for line in handle if line.strip()]


def load_binary(positive: str | Path, negative: str | Path) -> Labelled:
    """MR / CR / SUBJ / MPQA: one sentence a line (latin-1, blank lines skipped); label 1 for ``positive``."""
    pos = [_normalise(line) for line in _non_empty_lines(Path(positive), "latin-1")]
    neg = [_normalise(line) for line in _non_empty_lines(Path(negative), "latin-1")]
    return Labelled(pos + neg, np.array([1] * len(pos) + [0] * len(neg)))


def load_sst(path: str | Path) -> Labelled:
    """Binary SST (``sentiment-{train,dev,test}``): ``sentence<TAB>label`` per line, UTF-8."""
    sentences, labels = [], []
    for number, line in enumerate(_non_empty_lines(Path(path), "utf-8"), 1):
        sentence, sep, label = line.rstrip("\n").rpartition("\t")
        if not sep:
            raise DeclutrConfigError(f"{path}:{number} is not 'sentence<TAB>label'.")
        sentences.append(_normalise(sentence))
        labels.append(int(label))
    return Labelled(sentences, np.array(labels))


def load_trec(path: str | Path, classes: list[str] | None = None) -> tuple[Labelled, list[str]]:
    """TREC (``COARSE:fine question``, latin-1), labelled by the coarse class; returns the class names too,
    so that train and test share one label order (pass the train's ``classes`` when reading test)."""
    coarse, questions = [], []
    for number, line in enumerate(_non_empty_lines(Path(path), "latin-1"), 1):
        label, _, rest = line.partition(":")
        fine_and_question = rest.split(" ", 1)
        if not label or len(fine_and_question) < 2:
            raise DeclutrConfigError(f"{path}:{number} is not 'COARSE:fine question'.")
        coarse.append(label)
        questions.append(_normalise(fine_and_question[1]))
    classes = classes or sorted(set(coarse))
    unknown = sorted(set(coarse) - set(classes))
    if unknown:
        raise DeclutrConfigError(f"{path} has classes {unknown} absent from the training file.")
    return Labelled(questions, np.array([classes.index(c) for c in coarse])), classes


def load_mrpc(path: str | Path) -> Labelled:
    """MRPC (``msr_paraphrase_{train,test}.txt``): TSV with a header (UTF-8 with BOM):
    Quality, #1 ID, #2 ID, #1 String, #2 String; label = Quality."""
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))[1:]
    rows = [row for row in rows if row]
    if any(len(row) < 5 for row in rows):
        raise DeclutrConfigError(f"{path} has rows with fewer than 5 tab-separated columns: expected MRPC's "
                                 "Quality, #1 ID, #2 ID, #1 String, #2 String.")
    return Labelled([_normalise(r[3]) for r in rows], np.array([int(r[0]) for r in rows]),
                    [_normalise(r[4]) for r in rows])
