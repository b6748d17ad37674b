"""Grouping runs by varied settings, with mean ± std over seeds."""

import math

import pytest

from declutr.report.aggregate import Stat, baseline_groups, group_runs, is_numeric
from declutr.report.collect import find_runs
from declutr.report.results import FAILED
from tests.helpers.sweeps import add_job


def test_stat_is_mean_and_sample_std_of_the_present_values():
    stat = Stat.of([80.0, 82.0, None, math.nan, 84.0])
    assert (stat.mean, stat.std, stat.n) == (82.0, 2.0, 3)
    assert Stat.of([81.0]) == Stat(81.0, 0.0, 1) and Stat.of([None]) is None


def test_groups_sorted_as_numbers_or_in_sweep_order(tmp_path):
    jobs = [("100", "subsumed"), ("9", "overlap"), ("100", "overlap"), ("9", "subsumed")]
    for job, (steps, strategy) in enumerate(jobs):
        add_job(tmp_path, str(job), [f"trainer.max_steps={steps}", f"data.sampler.strategy={strategy}"])
    groups = group_runs(find_runs(tmp_path), ["trainer.max_steps", "data.sampler.strategy"])
    assert [tuple(g.settings.values()) for g in groups] == [("9", "subsumed"), ("9", "overlap"),
                                                            ("100", "subsumed"), ("100", "overlap")]
    assert is_numeric(["9", "100", None]) and not is_numeric(["overlap"])


def test_group_stats_over_finished_runs_and_baselines_per_model(tmp_path):
    for job, (seed, dev) in enumerate([(1, 80.0), (2, 84.0)]):
        add_job(tmp_path, str(job), ["data.sampler.strategy=overlap", f"seed={seed}"], before={"stsb_dev": 86.0},
                after={"stsb_dev": dev})
    add_job(tmp_path, "2", ["data.sampler.strategy=overlap", "seed=3"], status=FAILED)
    add_job(tmp_path, "3", ["data.sampler.strategy=overlap", "seed=1", "model=tiny"], model="tiny",
            before={"stsb_dev": 40.0}, after={"stsb_dev": 45.0})
    runs = find_runs(tmp_path)
    (group,) = group_runs(runs[:3], ["data.sampler.strategy"])
    assert len(group.runs) == 3 and len(group.finished) == 2
    stat = group.stat("stsb_dev")
    assert (stat.mean, stat.n) == (82.0, 2) and stat.std == pytest.approx(2.8284, abs=1e-4)
    assert group.stat("stsb_dev", baseline=True) == Stat(86.0, 0.0, 2) and group.stat("stsb_test") is None
    bases = baseline_groups(runs)
    assert [b.settings["model"] for b in bases] == ["minilm", "tiny"]
    assert bases[1].stat("stsb_dev", baseline=True).mean == 40.0
