"""SentEval transfer tasks on frozen embeddings: MR, CR, SUBJ, MPQA, SST-2, TREC, MRPC (accuracy x 100)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, f1_score

from declutr.eval.classifier import Protocol
from declutr.eval.task import EmbedFn, EvalTask, Score, as_numpy, subsample
from declutr.eval.transfer_data import Labelled, load_binary, load_mrpc, load_sst, load_trec


def _capped(data: Labelled, max_examples: int | None, seed: int) -> Labelled:
    return data.take(subsample(len(data), max_examples, seed))


class _TransferTask(EvalTask):
    group, fix = "transfer", "set eval.senteval_dir to the folder holding MR/ CR/ SUBJ/ MPQA/ SST2/ TREC/ MRPC/"

    def __init__(self, name: str, directory: str | Path, protocol: Protocol) -> None:
        self.name, self.directory, self.protocol = name, Path(directory), protocol


class BinaryClassification(_TransferTask):
    """MR, CR, SUBJ, MPQA: two files of one-sentence-a-line, nested k-fold CV, mean test accuracy."""

    def __init__(self, name: str, directory: str | Path, positive: str, negative: str, protocol: Protocol) -> None:
        super().__init__(name, directory, protocol)
        self.positive, self.negative = self.directory / positive, self.directory / negative

    def files(self) -> list[Path]:
        return [self.positive, self.negative]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        data = _capped(load_binary(self.positive, self.negative), max_examples, seed)
        accuracy = self.protocol.nested_cv_accuracy(as_numpy(embed(data.sentences)), data.labels, self.name)
        return [Score(self.name, "accuracy", accuracy, self.group)]


class SST(_TransferTask):
    """SST-2: C chosen on dev, accuracy on test."""

    def __init__(self, directory: str | Path, protocol: Protocol, name: str = "SST2") -> None:
        super().__init__(name, directory, protocol)

    def files(self) -> list[Path]:
        return [self.directory / f"sentiment-{split}" for split in ("train", "dev", "test")]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        splits = [_capped(load_sst(path), max_examples, seed) for path in self.files()]
        vectors = as_numpy(embed([s for split in splits for s in split.sentences]))
        bounds = np.cumsum([0] + [len(split) for split in splits])
        train, dev, test = ((vectors[a:b], split.labels) for a, b, split in zip(bounds, bounds[1:], splits))
        return [Score(self.name, "accuracy", self.protocol.dev_then_test(train, dev, test), self.group)]


class TREC(_TransferTask):
    """TREC question types (6 coarse classes): C by k-fold CV on train, refit, test accuracy."""

    def __init__(self, directory: str | Path, protocol: Protocol, name: str = "TREC") -> None:
        super().__init__(name, directory, protocol)

    def files(self) -> list[Path]:
        return [self.directory / "train_5500.label", self.directory / "TREC_10.label"]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        train, classes = load_trec(self.files()[0])
        test, _ = load_trec(self.files()[1], classes)
        train, test = _capped(train, max_examples, seed), _capped(test, max_examples, seed)
        vectors = as_numpy(embed(train.sentences + test.sentences))
        predicted = self.protocol.cv_then_test((vectors[: len(train)], train.labels), vectors[len(train):])
        return [Score(self.name, "accuracy", accuracy_score(test.labels, predicted) * 100, self.group)]


class MRPC(_TransferTask):
    """MRPC paraphrase detection on ``[|u - v|, u * v]``: C by k-fold CV on train, refit, test accuracy and F1."""

    def __init__(self, directory: str | Path, protocol: Protocol, name: str = "MRPC") -> None:
        super().__init__(name, directory, protocol)

    def files(self) -> list[Path]:
        return [self.directory / f"msr_paraphrase_{split}.txt" for split in ("train", "test")]

    def evaluate(self, embed: EmbedFn, max_examples: int | None = None, seed: int = 1111) -> list[Score]:
        train, test = (_capped(load_mrpc(path), max_examples, seed) for path in self.files())
        sentences = [s for split in (train, test) for s in split.sentences + split.sentences2]
        vectors = as_numpy(embed(sentences))
        features, start = [], 0
        for split in (train, test):
            u, v = vectors[start: start + len(split)], vectors[start + len(split): start + 2 * len(split)]
            features.append(np.hstack([np.abs(u - v), u * v]))
            start += 2 * len(split)
        predicted = self.protocol.cv_then_test((features[0], train.labels), features[1])
        return [Score(self.name, "accuracy", accuracy_score(test.labels, predicted) * 100, self.group),
                Score(self.name, "f1", f1_score(test.labels, predicted) * 100, self.group, main=False)]
