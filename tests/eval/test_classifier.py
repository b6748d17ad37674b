"""The transfer protocol against hand-written SentEval-style loops with scikit-learn, on small real-shaped data."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from declutr.errors import DeclutrConfigError
from declutr.eval.classifier import Protocol

C_VALUES = [0.01, 0.1, 1.0]
PROTOCOL = Protocol(kfold=3, c_values=C_VALUES, seed=1111)


def data(n=90, dim=5, seed=0):
    """Two noisy, overlapping classes with features on very different scales (standardisation matters)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, n)
    features = rng.normal(size=(n, dim)) + 0.8 * labels[:, None]
    return features * np.array([1, 10, 100, 0.1, 1])[:dim], labels


def fit(x, y, c):
    scaler = StandardScaler().fit(x)
    model = LogisticRegression(C=c, max_iter=100, random_state=1111).fit(scaler.transform(x), y)
    return lambda z: model.predict(scaler.transform(z))


def best_c_by_cv(x, y):
    """SentEval's loop: mean accuracy over k folds per C, the first C of the best mean."""
    folds = StratifiedKFold(n_splits=3, shuffle=True, random_state=1111)
    means = [np.mean([np.mean(fit(x[tr], y[tr], c)(x[te]) == y[te]) for tr, te in folds.split(x, y)]) for c in C_VALUES]
    return C_VALUES[int(np.argmax(means))]


def test_nested_cv_equals_a_hand_written_loop():
    x, y = data()
    outer = StratifiedKFold(n_splits=3, shuffle=True, random_state=1111)
    accuracies = []
    for train, test in outer.split(x, y):
        c = best_c_by_cv(x[train], y[train])
        accuracies.append(np.mean(fit(x[train], y[train], c)(x[test]) == y[test]))
    assert PROTOCOL.nested_cv_accuracy(x, y) == pytest.approx(100 * np.mean(accuracies), abs=1e-9)


def test_progress_shows_each_outer_fold_and_changes_nothing(capsys):
    x, y = data()
    shown = Protocol(kfold=3, c_values=C_VALUES, seed=1111, progress=True)
    assert shown.nested_cv_accuracy(x, y, "MR") == PROTOCOL.nested_cv_accuracy(x, y)
    err = capsys.readouterr().err
    assert "MR outer folds" in err and "3/3" in err


def test_cv_then_test_equals_a_hand_written_loop():
    (x, y), (x_test, _) = data(seed=1), data(seed=2)
    expected = fit(x, y, best_c_by_cv(x, y))(x_test)
    assert np.array_equal(PROTOCOL.cv_then_test((x, y), x_test), expected)


def test_dev_then_test_picks_c_on_dev():
    train, dev, test = data(seed=3), data(n=40, seed=4), data(n=40, seed=5)
    dev_accuracy = [np.mean(fit(*train, c)(dev[0]) == dev[1]) for c in C_VALUES]
    best = C_VALUES[int(np.argmax(dev_accuracy))]
    expected = 100 * np.mean(fit(*train, best)(test[0]) == test[1])
    assert PROTOCOL.dev_then_test(train, dev, test) == pytest.approx(expected, abs=1e-9)


def test_bad_protocol_is_a_clear_error():
    with pytest.raises(DeclutrConfigError, match="kfold >= 2"):
        Protocol(kfold=1)
