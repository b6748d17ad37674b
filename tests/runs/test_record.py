"""``skip_finished``: which earlier run in a run folder counts as this run, finished."""

import logging

from declutr.report.results import FAILED, OK, RunResult, write_result
from declutr.runs.record import finished_run

SETTINGS = {"model": "bert_mini_mlm", "num_anchors": 2, "lr": 3e-4, "seed": 1}


def test_only_a_finished_run_with_the_same_settings_counts(tmp_path, caplog):
    assert finished_run(str(tmp_path), SETTINGS) is None  # nothing ran there
    write_result(tmp_path, RunResult(status=FAILED, settings=SETTINGS, error="RuntimeError: out of memory"))
    assert finished_run(str(tmp_path), SETTINGS) is None  # it failed: train again
    done = RunResult(status=OK, settings=SETTINGS, after={"stsb_dev": 56.4}, steps=600)
    write_result(tmp_path, done)
    assert finished_run(str(tmp_path), dict(SETTINGS)) == done
    with caplog.at_level(logging.WARNING):
        assert finished_run(str(tmp_path), SETTINGS | {"lr": 1e-4, "num_positives": 4}) is None
    assert "other settings (lr: 0.0003 -> 0.0001, num_positives: None -> 4)" in caplog.text
