"""The transfer-task protocol: logistic regression on frozen embeddings, C chosen by cross-validation or dev.

Follows SentEval's scikit-learn path (``InnerKFoldClassifier``, ``KFoldClassifier``, ``SplitClassifier``):
stratified shuffled folds with seed 1111, C from 2^-2..2^3, the first C of the best mean accuracy. One
documented difference: features are standardised (mean 0, variance 1, fitted on each training fold only),
so one C grid suits encoders of any scale and L-BFGS converges; SentEval feeds raw features.

Speed, with the same folds, grid and seed: the fits of independent folds run in ``n_jobs`` processes, each
solver on one BLAS thread (several threads per small fit, beside torch's, were most of the time), and
``warm_start`` starts each C's L-BFGS from the previous C's solution on the same fold. Warm starts end at a
solution within the solver's tolerance of the cold one, not the identical one: ``warm_start=False`` gives
scikit-learn's plain ``GridSearchCV`` results exactly (docs/evaluation.md measures both).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager

import numpy as np
from joblib import Parallel, delayed
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits
from tqdm.auto import tqdm

from declutr.config.schema import check_arguments
from declutr.config.settings import PROTOCOL_C_VALUES, PROTOCOL_KFOLD, PROTOCOL_N_JOBS

Split = tuple[np.ndarray, np.ndarray]  # (train indices, test indices)


class Protocol:
    """Settings shared by every transfer task: folds, the C grid, the seed, standardisation, parallelism."""

    def __init__(self, kfold: int = 10, c_values: Sequence[float] = (0.25, 0.5, 1, 2, 4, 8), seed: int = 1111,
                 standardize: bool = True, max_iter: int = 100, n_jobs: int | None = None, warm_start: bool = True,
                 progress: bool = False) -> None:
        check_arguments({PROTOCOL_KFOLD: kfold, PROTOCOL_C_VALUES: list(c_values), PROTOCOL_N_JOBS: n_jobs})
        self.kfold, self.c_values, self.seed = kfold, [float(c) for c in c_values], seed
        self.standardize, self.max_iter, self.warm_start = standardize, max_iter, warm_start
        self.n_jobs = n_jobs or _available_cores()
        self.progress = progress  # a bar per task over its folds or C values, with an ETA

    def classifier(self, c: float = 1.0) -> Pipeline:
        """(StandardScaler ->) LogisticRegression(C=c); the scaler is refitted with the classifier on each fold."""
        steps = [StandardScaler()] if self.standardize else []
        return make_pipeline(*steps, LogisticRegression(C=c, max_iter=self.max_iter, random_state=self.seed))

    def folds(self) -> StratifiedKFold:
        return StratifiedKFold(n_splits=self.kfold, shuffle=True, random_state=self.seed)

    def nested_cv_accuracy(self, features: np.ndarray, labels: np.ndarray, name: str = "") -> float:
        """MR/CR/SUBJ/MPQA: mean test accuracy x 100 over k outer folds, C chosen by inner k-fold CV on each
        outer training set (``cross_val_score`` of a ``GridSearchCV``); the outer folds run in parallel."""
        splits = list(self.folds().split(features, labels))
        accuracies = self._map(self._outer_fold, [(features, labels, split) for split in splits],
                               f"{name} outer folds", "fold")
        return float(np.mean(accuracies)) * 100

    def cv_then_test(self, train: tuple[np.ndarray, np.ndarray], test_features: np.ndarray) -> np.ndarray:
        """TREC/MRPC: C by k-fold CV on train (the folds in parallel), refit on train; the predictions on test."""
        features, labels = train
        splits = list(self.folds().split(features, labels))
        per_fold = self._map(self._c_accuracies, [(features, labels, split) for split in splits], "CV folds", "fold")
        return _single_threaded(self._refit_predict, features, labels, self._best_c(per_fold), test_features)

    def dev_then_test(self, train: tuple[np.ndarray, np.ndarray], dev: tuple[np.ndarray, np.ndarray],
                      test: tuple[np.ndarray, np.ndarray]) -> float:
        """SST: fit on train for each C (in parallel), keep the first best on dev; its test accuracy x 100."""
        scores = self._map(self._dev_test_scores, [(train, dev, test, c) for c in self.c_values], "C values", "fit")
        dev_accuracy, test_accuracy = zip(*scores)
        return float(test_accuracy[int(np.argmax(dev_accuracy))]) * 100

    # One job each, run in a worker process.
    def _c_accuracies(self, features: np.ndarray, labels: np.ndarray, split: Split) -> np.ndarray:
        """Validation accuracy of each C of the grid, in order, trained on ``split[0]``: the scaler is fitted
        once for the fold; with ``warm_start`` each C's solver starts from the previous C's solution."""
        train, valid = split
        x_train, x_valid = features[train], features[valid]
        if self.standardize:
            scaler = StandardScaler().fit(x_train)
            x_train, x_valid = scaler.transform(x_train), scaler.transform(x_valid)
        model = LogisticRegression(max_iter=self.max_iter, random_state=self.seed, warm_start=self.warm_start)
        return np.array([model.set_params(C=c).fit(x_train, labels[train]).score(x_valid, labels[valid])
                         for c in self.c_values])

    def _best_c(self, per_fold: Iterable[np.ndarray]) -> float:
        """The first C of the best mean validation accuracy over the folds."""
        return self.c_values[int(np.argmax(np.mean(list(per_fold), axis=0)))]

    def _outer_fold(self, features: np.ndarray, labels: np.ndarray, split: Split) -> float:
        train, test = split
        inner = [(train[a], train[b]) for a, b in self.folds().split(features[train], labels[train])]
        best = self._best_c(self._c_accuracies(features, labels, fold) for fold in inner)
        return self.classifier(best).fit(features[train], labels[train]).score(features[test], labels[test])

    def _refit_predict(self, features: np.ndarray, labels: np.ndarray, c: float, test: np.ndarray) -> np.ndarray:
        return self.classifier(c).fit(features, labels).predict(test)

    def _dev_test_scores(self, train, dev, test, c: float) -> tuple[float, float]:
        model = self.classifier(c).fit(*train)
        return model.score(*dev), model.score(*test)

    def _map(self, function: Callable, jobs: list[tuple], desc: str, unit: str) -> list:
        """``[function(*job) for job in jobs]``, in ``n_jobs`` processes (in this one when 1), single-threaded BLAS."""
        bar = tqdm(total=len(jobs), desc=desc, unit=unit, disable=not self.progress, leave=False, mininterval=0)
        if self.n_jobs == 1 or len(jobs) == 1:
            results = [_tick(bar, _single_threaded(function, *job)) for job in jobs]
        else:
            runner = Parallel(n_jobs=min(self.n_jobs, len(jobs)), return_as="generator")
            results = [_tick(bar, result) for result in runner(delayed(_single_threaded)(function, *job) for job in jobs)]
        bar.close()
        return results


def _available_cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _single_threaded(function: Callable, *args):
    """Runs ``function`` with BLAS on one thread and L-BFGS's "did not converge within ``max_iter``" (SentEval's
    setting: hundreds per task otherwise) silenced."""
    with threadpool_limits(limits=1), _quiet():
        return function(*args)


def _tick(bar, result):
    bar.update()
    return result


@contextmanager
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield
