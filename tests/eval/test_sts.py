"""STS-B loading on the real files and Spearman against scipy."""

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from declutr.errors import DeclutrConfigError
from declutr.eval.sts import STSBEvaluator, STSPairs, load_stsb, sts_spearman
from tests.conftest import STSB_DIR


@pytest.mark.parametrize("split, rows", [("train", 5749), ("dev", 1500), ("test", 1379)])
def test_real_stsb_row_counts(split, rows):
    pairs = load_stsb(STSB_DIR, split)
    assert len(pairs.sentences1) == len(pairs.sentences2) == len(pairs.scores) == rows
    assert 0.0 <= min(pairs.scores) and max(pairs.scores) <= 5.0


def test_spearman_matches_scipy_on_random_embeddings():
    rng = np.random.default_rng(0)
    vectors = {f"s{i}": torch.tensor(rng.normal(size=8)) for i in range(40)}
    pairs = STSPairs([f"s{i}" for i in range(20)], [f"s{i}" for i in range(20, 40)], list(rng.uniform(0, 5, 20)))
    embed = lambda texts: torch.stack([vectors[t] for t in texts])  # noqa: E731
    cosine = [float(torch.nn.functional.cosine_similarity(vectors[a], vectors[b], dim=0))
              for a, b in zip(pairs.sentences1, pairs.sentences2)]
    assert sts_spearman(embed, pairs) == pytest.approx(100 * spearmanr(cosine, pairs.scores).statistic, abs=1e-6)


def test_evaluator_returns_named_metric_and_missing_dir_is_clear(tmp_path):
    evaluator = STSBEvaluator(STSB_DIR, "dev")
    rng = np.random.default_rng(0)
    embed = lambda texts: torch.tensor(rng.normal(size=(len(texts), 4)))  # noqa: E731
    assert set(evaluator(embed)) == {"stsb_spearman"}
    with pytest.raises(DeclutrConfigError, match="DECLUTR_DATA_DIR"):
        STSBEvaluator(tmp_path, "dev")
