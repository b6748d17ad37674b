"""Finding a sweep's training jobs, their overrides, outcomes and evaluation-suite scores."""

from declutr.eval.suite import SuiteResult, write_results
from declutr.eval.task import Score
from declutr.report.collect import INCOMPLETE, find_runs, parse_overrides, read_eval_scores, status_counts, varied_keys
from declutr.report.results import FAILED, INTERRUPTED, OK, STOPPED_NONFINITE
from tests.helpers.sweeps import add_job


def test_jobs_in_numeric_order_with_status_and_only_training_jobs(tmp_path):
    for job in (10, 2, 0):
        add_job(tmp_path, str(job), [f"data.sampler.num_anchors={job}"])
    add_job(tmp_path, "1", ["data.sampler.num_anchors=1"], status=FAILED)
    add_job(tmp_path, "3", ["data.sampler.num_anchors=3"], status=None)
    add_job(tmp_path, "4", ["eval.model=x"], task="eval")
    (tmp_path / "report").mkdir()
    runs = find_runs(tmp_path)
    assert [r.name for r in runs] == ["0", "1", "2", "3", "10"]
    assert [r.status for r in runs] == [OK, FAILED, OK, INCOMPLETE, OK]
    assert runs[4].overrides == {"data.sampler.num_anchors": "10"}
    assert runs[1].result.error == "RuntimeError: out of memory"


def test_status_counts_name_every_ending_present(tmp_path):
    for job, status in enumerate([OK, OK, INTERRUPTED, STOPPED_NONFINITE, None]):
        add_job(tmp_path, str(job), [f"seed={job}"], status=status)
    assert status_counts(find_runs(tmp_path)) == ("2 finished, 1 interrupted, 1 stopped on non-finite values, 0 failed, "
                                                  "1 never ended (killed, or still running)")
    assert status_counts(find_runs(tmp_path)[:2]) == "2 finished, 0 failed"


def test_overrides_as_typed():
    assert parse_overrides(["+a.b=1", "++c=x=y", "~d", "model=tiny", "data.files=[a,b]"]) == {
        "a.b": "1", "c": "x=y", "d": "(deleted)", "model": "tiny", "data.files": "[a,b]"}


def test_varied_keys_skip_the_averaged_ones_and_count_a_missing_key_as_varied(tmp_path):
    add_job(tmp_path, "0", ["experiment=ablation/strategy", "data.sampler.strategy=overlap", "seed=1"])
    add_job(tmp_path, "1", ["experiment=ablation/strategy", "data.sampler.strategy=subsumed", "seed=2"])
    add_job(tmp_path, "2", ["experiment=ablation/strategy", "data.sampler.strategy=subsumed", "seed=1", "+x=1"])
    assert varied_keys(find_runs(tmp_path), ["seed"]) == ["data.sampler.strategy", "x"]


def test_eval_scores_prefer_full_splits_over_capped_ones(tmp_path):
    def suite(mr: float, trec: float) -> SuiteResult:
        return SuiteResult([Score("STSB", "spearman", 80.0, "sts"), Score("MR", "accuracy", mr, "transfer"),
                            Score("TREC", "accuracy", trec, "transfer")])

    write_results(suite(70.0, 80.0), tmp_path / "model", "eval-all", {"max_examples": None})
    write_results(suite(60.0, 50.0), tmp_path, "eval-quick-max500", {"max_examples": 500})
    scores = read_eval_scores(tmp_path)
    assert scores["mr_accuracy"] == 70.0 and scores["trec_accuracy"] == 80.0 and scores["stsb_spearman"] == 80.0
    assert scores["transfer_avg"] == 75.0 and scores["sts_avg"] == 80.0
