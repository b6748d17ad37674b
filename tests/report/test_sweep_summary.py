"""The end of a multirun: failures listed, exit status 1 when any job failed."""

import logging

import pytest
from omegaconf import OmegaConf

from declutr.report.results import FAILED
from declutr.report.sweep_summary import SweepSummary
from tests.helpers.sweeps import add_job


def end(sweep_dir):
    SweepSummary().on_multirun_end(OmegaConf.create({"hydra": {"sweep": {"dir": str(sweep_dir)}}}))


def test_failed_job_is_listed_and_the_exit_status_is_1(tmp_path, caplog):
    add_job(tmp_path, "0", ["data.sampler.num_anchors=1"])
    add_job(tmp_path, "1", ["data.sampler.num_anchors=4"], status=FAILED)
    with caplog.at_level(logging.INFO), pytest.raises(SystemExit) as exit_:
        end(tmp_path)
    assert exit_.value.code == 1
    assert "2 training jobs, 1 finished, 1 failed" in caplog.text
    assert "job 1 [data.sampler.num_anchors=4]: RuntimeError: out of memory" in caplog.text
    assert str(tmp_path / "1" / "error.txt") in caplog.text and f"task=report sweep_dir={tmp_path}" in caplog.text


def test_all_finished_or_no_training_jobs_exit_normally(tmp_path, caplog):
    end(tmp_path / "never-created")
    add_job(tmp_path, "0", ["eval.model=a"], task="eval", status=None)
    end(tmp_path)
    add_job(tmp_path, "1", ["data.sampler.num_anchors=1"])
    with caplog.at_level(logging.INFO):
        end(tmp_path)
    assert "1 training job, 1 finished, 0 failed" in caplog.text
