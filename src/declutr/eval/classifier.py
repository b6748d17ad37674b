"""The transfer-task protocol: logistic regression on frozen embeddings, C chosen by cross-validation or dev.

Follows SentEval's scikit-learn path (``InnerKFoldClassifier``, ``KFoldClassifier``, ``SplitClassifier``):
stratified shuffled folds with seed 1111, C from 2^-2..2^3, the first C of the best mean accuracy. One
documented difference: features are standardised (mean 0, variance 1, fitted on each training fold only),
so one C grid suits encoders of any scale and L-BFGS converges; SentEval feeds raw features.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from declutr.errors import DeclutrConfigError


class Protocol:
    """Settings shared by every transfer task: folds, the C grid, the seed, standardisation."""

    def __init__(self, kfold: int = 10, c_values: Sequence[float] = (0.25, 0.5, 1, 2, 4, 8), seed: int = 1111,
                 standardize: bool = True, max_iter: int = 100, n_jobs: int | None = None,
                 progress: bool = False) -> None:
        if kfold < 2 or not c_values:
            raise DeclutrConfigError(f"eval.protocol needs kfold >= 2 and at least one C value (got kfold={kfold}, "
                                     f"c_values={list(c_values)}).")
        self.kfold, self.c_values, self.seed = kfold, [float(c) for c in c_values], seed
        self.standardize, self.max_iter, self.n_jobs = standardize, max_iter, n_jobs
        self.progress = progress  # a bar per task over its outer folds or C values, with an ETA

    def classifier(self, c: float = 1.0) -> Pipeline:
        """(StandardScaler ->) LogisticRegression(C=c); the scaler is refitted with the classifier on each fold."""
        steps = [StandardScaler()] if self.standardize else []
        return make_pipeline(*steps, LogisticRegression(C=c, max_iter=self.max_iter, random_state=self.seed))

    def folds(self) -> StratifiedKFold:
        return StratifiedKFold(n_splits=self.kfold, shuffle=True, random_state=self.seed)

    def tuned_classifier(self) -> GridSearchCV:
        """Picks C by k-fold accuracy on the data it is fitted on, then refits on all of it."""
        return GridSearchCV(self.classifier(), {"logisticregression__C": self.c_values}, cv=self.folds(),
                            scoring="accuracy", n_jobs=self.n_jobs)

    def nested_cv_accuracy(self, features: np.ndarray, labels: np.ndarray, name: str = "") -> float:
        """MR/CR/SUBJ/MPQA: mean test accuracy x 100 over k outer folds, C chosen by inner k-fold CV (what
        ``cross_val_score`` computes, one outer fold at a time so that progress can be shown)."""
        accuracies = []
        splits = self.folds().split(features, labels)
        for train, test in tqdm(splits, total=self.kfold, desc=f"{name} outer folds", unit="fold",
                                disable=not self.progress, leave=False):
            with _quiet():
                model = self.tuned_classifier().fit(features[train], labels[train])
            accuracies.append(model.score(features[test], labels[test]))
        return float(np.mean(accuracies)) * 100

    def cv_then_test(self, train: tuple[np.ndarray, np.ndarray], test_features: np.ndarray) -> np.ndarray:
        """TREC/MRPC: C by k-fold CV on train, refit on train; the predictions on test."""
        with _quiet():
            return self.tuned_classifier().fit(*train).predict(test_features)

    def dev_then_test(self, train: tuple[np.ndarray, np.ndarray], dev: tuple[np.ndarray, np.ndarray],
                      test: tuple[np.ndarray, np.ndarray]) -> float:
        """SST: fit on train for each C, keep the best on dev; its test accuracy x 100."""
        best, best_accuracy = None, -1.0
        for c in tqdm(self.c_values, desc="C values", unit="fit", disable=not self.progress, leave=False):
            with _quiet():
                model = self.classifier(c).fit(*train)
            accuracy = model.score(*dev)
            if accuracy > best_accuracy:
                best, best_accuracy = model, accuracy
        return float(best.score(*test)) * 100


@contextmanager
def _quiet():
    """Silences L-BFGS's "did not converge" within ``max_iter`` (SentEval's setting): hundreds per task otherwise."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
