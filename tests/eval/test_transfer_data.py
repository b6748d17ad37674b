"""Transfer-task readers on the real SentEval files: the row counts of the data README, labels, formats."""

import numpy as np
import pytest

from declutr.errors import DeclutrConfigError
from declutr.eval.transfer_data import load_binary, load_mrpc, load_sst, load_trec
from tests.helpers.paths import DATA_DIR

SENTEVAL = DATA_DIR / "eval" / "senteval"


@pytest.mark.parametrize("task, positive, negative, rows", [
    ("MR", "rt-polarity.pos", "rt-polarity.neg", 10662),
    ("CR", "custrev.pos", "custrev.neg", 3771),
    ("SUBJ", "subj.objective", "subj.subjective", 10000),
    ("MPQA", "mpqa.pos", "mpqa.neg", 10603),
])
def test_binary_tasks_row_counts(task, positive, negative, rows):
    data = load_binary(SENTEVAL / task / positive, SENTEVAL / task / negative)
    assert len(data) == len(data.labels) == rows
    assert set(data.labels) == {0, 1} and all(s and s == " ".join(s.split()) for s in data.sentences)
    if task == "MR":
        assert int(data.labels.sum()) == 5331


@pytest.mark.parametrize("split, rows", [("train", 67349), ("dev", 872), ("test", 1821)])
def test_sst2_row_counts(split, rows):
    data = load_sst(SENTEVAL / "SST2" / f"sentiment-{split}")
    assert len(data) == rows and set(data.labels) == {0, 1}
    if split == "dev":
        assert (data.sentences[0], data.labels[0]) == ("it 's a charming and often affecting journey .", 1)


def test_trec_shares_the_class_order_between_train_and_test():
    train, classes = load_trec(SENTEVAL / "TREC" / "train_5500.label")
    test, same = load_trec(SENTEVAL / "TREC" / "TREC_10.label", classes)
    assert (len(train), len(test)) == (5452, 500) and classes == same == ["ABBR", "DESC", "ENTY", "HUM", "LOC", "NUM"]
    assert (test.sentences[0], classes[test.labels[0]]) == ("How far is it from Denver to Aspen ?", "NUM")


def test_mrpc_pairs_and_labels():
    train, test = (load_mrpc(SENTEVAL / "MRPC" / f"msr_paraphrase_{s}.txt") for s in ("train", "test"))
    assert (len(train), len(test)) == (4076, 1725) and len(test.sentences2) == 1725
    assert test.sentences[0].startswith("PCCW 's chief operating officer") and test.labels[0] == 1
    assert 0.6 < np.mean(train.labels) < 0.75  # about two thirds are paraphrases


def test_malformed_lines_are_clear_errors(tmp_path):
    (tmp_path / "sst").write_text("no label here\n")
    with pytest.raises(DeclutrConfigError, match="sentence<TAB>label"):
        load_sst(tmp_path / "sst")
    (tmp_path / "trec").write_text("a question without a class\n")
    with pytest.raises(DeclutrConfigError, match="COARSE:fine question"):
        load_trec(tmp_path / "trec")
