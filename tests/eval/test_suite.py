"""The suite: missing tasks skipped and listed, each distinct sentence embedded once, results written atomically."""

import csv
import json

import numpy as np
import pytest

import declutr.eval.suite as suite_module
from declutr.errors import DeclutrConfigError
from declutr.eval.classifier import Protocol
from declutr.eval.embedding_cache import CachedEmbedder
from declutr.eval.sts import SICKRelatedness, STSBenchmark, STSYear
from declutr.eval.suite import EvalSuite, format_table, write_results
from declutr.eval.transfer import BinaryClassification
from tests.helpers.eval_data import write_sts_dir
from tests.helpers.paths import DATA_DIR, STSB_DIR


class CountingEmbed:
    """Random vectors, remembering every sentence it was asked to embed."""

    def __init__(self):
        self.seen, self.rng = [], np.random.default_rng(0)

    def __call__(self, texts):
        self.seen += list(texts)
        return self.rng.normal(size=(len(texts), 6)).astype(np.float32)


def test_cache_embeds_each_distinct_sentence_once_and_keeps_order():
    inner = CountingEmbed()
    cached = CachedEmbedder(inner)
    first = cached(["a", "b", "a", "c"])
    second = cached(["c", "d", "b"])
    assert inner.seen == ["a", "b", "c", "d"] and cached.embedded == 4
    assert np.array_equal(first[0], first[2]) and np.array_equal(second[0], first[3]) and np.array_equal(second[2], first[1])


def test_suite_skips_and_lists_missing_tasks_runs_the_rest_and_writes_results(tmp_path, caplog):
    sts_dir = write_sts_dir(tmp_path / "STS")
    quick = Protocol(kfold=3, c_values=[1.0])
    tasks = {
        "sts12": STSYear("STS12", sts_dir / "STS12-en-test", ["MSRpar", "MSRvid"]),
        "sts13": STSYear("STS13", tmp_path / "absent", ["FNWN"]),
        "stsb": STSBenchmark(STSB_DIR, "test"),
        "sickr": SICKRelatedness(tmp_path / "absent"),
        "cr": BinaryClassification("CR", DATA_DIR / "eval" / "senteval" / "CR", "custrev.pos", "custrev.neg", quick),
    }
    inner = CountingEmbed()
    result = EvalSuite(tasks, max_examples=60).run(inner, progress=False)
    assert [s.task for s in result.skipped] == ["STS13", "SICKR"]
    assert "eval.sts_dir" in caplog.text and "eval.sick_dir" in caplog.text
    assert [s.key for s in result.scores] == ["sts12_spearman", "sts12_msrpar_spearman", "sts12_msrvid_spearman",
                                             "stsb_spearman", "cr_accuracy"]
    assert len(inner.seen) == len(set(inner.seen)) == result.sentences  # MSRvid repeats MSRpar: embedded once
    assert list(result.task_seconds) == ["STS12", "STSB", "CR"]  # per task run: embedding and fitting seconds
    assert all(t["embed"] >= 0 and t["fit"] >= 0 for t in result.task_seconds.values())
    assert sum(t["embed"] for t in result.task_seconds.values()) == pytest.approx(result.embed_seconds)
    averages = result.averages()
    assert averages["sts"]["tasks"] == ["STS12", "STSB"] and averages["sts"]["skipped"] == ["STS13", "SICKR"]
    assert averages["sts"]["score"] == pytest.approx((result.scores[0].value + result.scores[3].value) / 2)
    assert averages["transfer"] == {"score": result.scores[4].value, "tasks": ["CR"], "skipped": []}

    table = format_table(result)
    assert "STS avg" in table and "not STS13, SICKR (files missing)" in table and "sentences/s" in table
    assert "STS13 skipped" not in table  # its files and fix were logged when the run started: not printed twice
    json_path, csv_path = write_results(result, tmp_path / "out", "eval-test", {"model": "m"})
    payload = json.loads(json_path.read_text())
    assert payload["model"] == "m" and [s["task"] for s in payload["skipped"]] == ["STS13", "SICKR"]
    assert payload["task_seconds"] == result.task_seconds
    with csv_path.open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows[0] == {"task": "STS12", "metric": "spearman", "score": f"{result.scores[0].value:.2f}"}
    assert [r["task"] for r in rows[-2:]] == ["STS avg", "transfer avg"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["eval-test.csv", "eval-test.json"]  # no temp files


def test_suite_needs_tasks_and_a_usable_cap():
    with pytest.raises(DeclutrConfigError, match="No evaluation task"):
        EvalSuite({})
    with pytest.raises(DeclutrConfigError, match="max_examples=5"):
        EvalSuite([STSBenchmark(STSB_DIR)], max_examples=5)


def test_progress_bar_counts_every_sentence_embedded_in_chunks(tmp_path, monkeypatch):
    """The bar counts sentences (not tasks): its total is the number of distinct sentences embedded, it reaches that
    total, and no embed call gets more than EMBED_CHUNK sentences, so the bar moves during a large task."""
    bars = []

    class Recorded(suite_module.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)

    monkeypatch.setattr(suite_module, "tqdm", Recorded)
    monkeypatch.setattr(suite_module, "EMBED_CHUNK", 50)
    sts_dir = write_sts_dir(tmp_path / "STS")
    tasks = [STSYear("STS12", sts_dir / "STS12-en-test", ["MSRpar", "MSRvid"]), STSBenchmark(STSB_DIR, "test")]
    calls, rng = [], np.random.default_rng(0)

    def embed(texts):
        calls.append(len(texts))
        return rng.normal(size=(len(texts), 4)).astype(np.float32)

    result = EvalSuite(tasks, max_examples=120).run(embed, progress=True)
    (bar,) = bars
    assert bar.unit == "sentence" and bar.total == bar.n == result.sentences == sum(calls) > 50
    assert max(calls) <= 50 and len(calls) > 2
    assert bar.desc.startswith("eval 2/2 STSB")
