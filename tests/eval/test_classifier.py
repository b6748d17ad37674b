"""The transfer protocol against hand-written SentEval-style loops and scikit-learn's own ``GridSearchCV``: exactly
with cold starts, in one process or several; within the solver's tolerance with warm starts, on a real task."""

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.preprocessing import StandardScaler

from declutr.config.resolvers import _minilm_path as minilm_path
from declutr.encoder import Encoder
from declutr.errors import DeclutrConfigError
from declutr.eval.classifier import Protocol
from declutr.eval.task import subsample
from declutr.eval.transfer_data import load_binary
from tests.helpers.paths import DATA_DIR

C_VALUES = [0.01, 0.1, 1.0]
PROTOCOL = Protocol(kfold=3, c_values=C_VALUES, seed=1111, warm_start=False, n_jobs=1)


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
    shown = Protocol(kfold=3, c_values=C_VALUES, seed=1111, warm_start=False, n_jobs=1, progress=True)
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


def test_processes_change_nothing():
    x, y = data(n=120)
    for warm_start in (False, True):
        one, two = (Protocol(kfold=3, c_values=C_VALUES, warm_start=warm_start, n_jobs=n) for n in (1, 2))
        assert one.nested_cv_accuracy(x, y) == two.nested_cv_accuracy(x, y)
        assert np.array_equal(one.cv_then_test((x, y), x[:30]), two.cv_then_test((x, y), x[:30]))
        assert one.dev_then_test((x, y), (x[:40], y[:40]), (x[40:], y[40:])) == \
            two.dev_then_test((x, y), (x[:40], y[:40]), (x[40:], y[40:]))


@pytest.fixture(scope="module")
def movie_reviews():
    """1,000 MR sentences (a seeded subset) embedded by all-MiniLM-L6-v2, with their labels."""
    mr = DATA_DIR / "eval" / "senteval" / "MR"
    data = load_binary(mr / "rt-polarity.pos", mr / "rt-polarity.neg")
    data = data.take(subsample(len(data), 1000, seed=1111))
    encoder = Encoder(minilm_path())
    return encoder.encode(data.sentences).astype(np.float64), np.asarray(data.labels)


@pytest.mark.slow  # three nested cross-validations (5 x 5 folds, 6 C values): 33 s, +17 s embedding, under load
def test_the_fast_path_scores_a_real_task_as_scikit_learn_does(movie_reviews):
    """Parallel folds, one BLAS thread and warm starts along the C grid, against ``cross_val_score`` of a plain
    ``GridSearchCV`` (SentEval's nested CV) on 1,000 MR sentences: cold starts give the identical accuracy; warm
    starts within two of the 1,000 sentences (0.2 points; 0.0 on this subset, -0.2 on one of two others)."""
    x, y = movie_reviews
    c_values = [0.25, 0.5, 1, 2, 4, 8]
    fast = Protocol(kfold=5, c_values=c_values, n_jobs=2)
    plain = GridSearchCV(fast.classifier(), {"logisticregression__C": c_values}, cv=fast.folds(), scoring="accuracy")
    expected = 100 * cross_val_score(plain, x, y, cv=fast.folds(), scoring="accuracy").mean()
    cold = Protocol(kfold=5, c_values=c_values, n_jobs=2, warm_start=False)
    assert cold.nested_cv_accuracy(x, y) == pytest.approx(expected, abs=1e-9)
    assert fast.nested_cv_accuracy(x, y) == pytest.approx(expected, abs=0.2)


def test_bad_protocol_is_a_clear_error():
    """Built in Python, without a config: refused by the schema's entries, as run.py refuses the settings."""
    with pytest.raises(DeclutrConfigError, match=r"eval.protocol.kfold=1: too small; allowed: an integer >= 2"):
        Protocol(kfold=1)
    with pytest.raises(DeclutrConfigError, match=r"eval.protocol.c_values=\[\]: 0 items"):
        Protocol(c_values=())
    with pytest.raises(DeclutrConfigError, match="eval.protocol.n_jobs=0: too small"):
        Protocol(n_jobs=0)
