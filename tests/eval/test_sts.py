"""STS loaders on the real files and on full-format fixtures; Spearman and the "all" score against scipy."""

import zlib

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from declutr.errors import DeclutrConfigError
from declutr.eval.sts import SICKRelatedness, STSBenchmark, STSYear, cosine_similarities, sts_spearman
from declutr.eval.sts_data import STSPairs, load_sick, load_sts_subset, load_stsb
from tests.helpers.eval_data import SICK_SAMPLE, STS12_SAMPLE, STS16_SAMPLE, write_sick_dir, write_sts_dir
from tests.helpers.paths import STSB_DIR


def random_embed(dim=8):
    """A fixed random vector per sentence, seeded by its text (as torch, like the training-time embed function)."""
    return lambda texts: torch.tensor(np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=dim)
                                                for t in texts]))


def scipy_spearman(embed, s1, s2, gold):
    a, b = np.asarray(embed(s1)), np.asarray(embed(s2))
    cosine = (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    return 100 * spearmanr(cosine, gold).statistic


@pytest.mark.parametrize("split, rows", [("train", 5749), ("dev", 1500), ("test", 1379)])
def test_real_stsb_row_counts(split, rows):
    pairs = load_stsb(STSB_DIR, split)
    assert len(pairs.sentences1) == len(pairs.sentences2) == len(pairs) == rows
    assert 0.0 <= min(pairs.scores) and max(pairs.scores) <= 5.0


def test_format_samples_load_and_drop_pairs_without_gold():
    msrpar = load_sts_subset(STS12_SAMPLE, "MSRpar")
    assert len(msrpar) == 25 and msrpar.scores[:2] == [4.4, 0.8]
    assert msrpar.sentences1[0].startswith("the problem likely will mean") and "\t" not in msrpar.sentences2[0]
    headlines = load_sts_subset(STS16_SAMPLE, "headlines")  # gold only on lines 13 and 16
    assert headlines.scores == [4.0, 5.0]
    assert headlines.sentences1 == ["driver backs into stroller with child , drives off",
                                    "spain princess testifies in historic fraud probe"]
    sick = load_sick(SICK_SAMPLE)
    assert len(sick) == 24 and sick.scores[:3] == [3.3, 3.7, 3.0]
    assert sick.sentences1[0] == "There is no boy playing outdoors and there is no man smiling"


def test_misaligned_sts_files_are_a_clear_error(tmp_path):
    (tmp_path / "STS.input.x.txt").write_text("a\tb\nc\td\n")
    (tmp_path / "STS.gs.x.txt").write_text("1\n")
    with pytest.raises(DeclutrConfigError, match="2 lines but .* has 1"):
        load_sts_subset(tmp_path, "x")


def test_spearman_matches_scipy_on_random_embeddings():
    rng = np.random.default_rng(0)
    pairs = STSPairs([f"s{i}" for i in range(20)], [f"s{i}" for i in range(20, 40)], list(rng.uniform(0, 5, 20)))
    embed = random_embed()
    expected = scipy_spearman(embed, pairs.sentences1, pairs.sentences2, pairs.scores)
    assert sts_spearman(embed, pairs) == pytest.approx(expected, abs=1e-9)
    assert cosine_similarities(embed, pairs).shape == (20,)


def test_sts_year_scores_all_subsets_concatenated_and_each_subset(tmp_path):
    directory = write_sts_dir(tmp_path / "STS") / "STS16-en-test"
    subsets = ["answer-answer", "headlines", "plagiarism"]
    embed = random_embed()
    scores = {s.task: s for s in STSYear("STS16", directory, subsets).evaluate(embed)}
    assert list(scores) == ["STS16", "STS16.answer-answer", "STS16.headlines", "STS16.plagiarism"]
    loaded = [load_sts_subset(directory, s) for s in subsets]
    assert [len(p) for p in loaded] == [25, 2, 25]
    s1, s2, gold = (sum((getattr(p, f) for p in loaded), []) for f in ("sentences1", "sentences2", "scores"))
    assert scores["STS16"].value == pytest.approx(scipy_spearman(embed, s1, s2, gold), abs=1e-9)
    assert scores["STS16"].main and not scores["STS16.headlines"].main and scores["STS16"].key == "sts16_spearman"
    for subset, pairs in zip(subsets, loaded):
        expected = scipy_spearman(embed, pairs.sentences1, pairs.sentences2, pairs.scores)
        assert scores[f"STS16.{subset}"].value == pytest.approx(expected, abs=1e-9)


def test_stsb_and_sick_tasks_report_missing_files_then_score(tmp_path):
    assert STSBenchmark(tmp_path, "test").missing() == [tmp_path / "sts-test.csv"]
    assert SICKRelatedness(tmp_path / "nowhere").missing() == [tmp_path / "nowhere" / "SICK_test_annotated.txt"]
    (stsb,) = STSBenchmark(STSB_DIR, "dev").evaluate(random_embed(), max_examples=100)
    assert stsb.key == "stsb_spearman" and -100 <= stsb.value <= 100
    (sick,) = SICKRelatedness(write_sick_dir(tmp_path / "SICK")).evaluate(random_embed())
    pairs = load_sick(SICK_SAMPLE)
    assert sick.value == pytest.approx(scipy_spearman(random_embed(), pairs.sentences1, pairs.sentences2, pairs.scores))
    with pytest.raises(DeclutrConfigError, match="DECLUTR_DATA_DIR"):
        load_stsb(tmp_path, "dev")
