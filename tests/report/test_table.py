"""The report's markdown tables and CSV."""

import csv
import io

from declutr.report.aggregate import baseline_groups, group_runs
from declutr.report.collect import find_runs
from declutr.report.results import FAILED
from declutr.report.table import failures_table, results_table, runs_csv, runs_table, setting_labels
from tests.helpers.sweeps import add_job


def sweep(tmp_path):
    jobs = [("overlap", 1, 80.0), ("overlap", 2, 84.0), ("subsumed", 1, 78.5), ("subsumed", 2, None)]
    for job, (strategy, seed, dev) in enumerate(jobs):
        add_job(tmp_path, str(job), [f"data.sampler.strategy={strategy}", f"seed={seed}"],
                status=FAILED if dev is None else "ok", before={"stsb_dev": 86.72}, after={"stsb_dev": dev})
    add_job(tmp_path, "4", ["data.sampler.strategy=adjacent", "seed=1"], status=None)
    return find_runs(tmp_path)


def rows(markdown):
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in markdown.splitlines()]


def test_results_table_has_the_baseline_then_mean_and_std_per_setting(tmp_path):
    runs = sweep(tmp_path)
    keys = ["data.sampler.strategy"]
    table = rows(results_table(group_runs(runs, keys), baseline_groups([r for r in runs if r.status == "ok"]), keys,
                               ["stsb_dev", "stsb_test"]))
    assert table[0] == ["", "strategy", "n", "STS-B dev", "STS-B test"]
    assert table[2] == ["before training (minilm)", "", "3", "86.72 ± 0.00", "—"]
    assert table[3] == ["after 50 steps", "overlap", "2", "82.00 ± 2.83", "—"]
    assert table[4] == ["after 50 steps", "subsumed", "1 (1 failed)", "78.50", "—"]
    assert table[5] == ["not trained", "adjacent", "0 (1 failed)", "—", "—"]


def test_every_run_and_the_failures(tmp_path):
    runs = sweep(tmp_path)
    every = rows(runs_table(runs, ["data.sampler.strategy", "seed"], ["stsb_dev"]))
    assert every[0] == ["job", "strategy", "seed", "status", "STS-B dev", "steps", "minutes"]
    assert every[2] == ["0", "overlap", "1", "ok", "86.72 → 80.00", "50", "1.5"]
    failures = rows(failures_table(runs))
    assert [f[:2] for f in failures[2:]] == [["3", "failed"], ["4", "incomplete"]]
    assert failures[2][3] == "RuntimeError: out of memory" and failures[2][4] == "3/error.txt"
    assert "no results.json" in failures[3][3]


def test_labels_are_short_unless_they_would_collide():
    assert setting_labels(["data.sampler.num_anchors", "experiment/objective", "seed", "data.seed"]) == {
        "data.sampler.num_anchors": "num_anchors", "experiment/objective": "objective", "seed": "seed",
        "data.seed": "data.seed"}


def test_runs_csv(tmp_path):
    runs = sweep(tmp_path)
    table = list(csv.DictReader(io.StringIO(runs_csv(runs, ["stsb_dev"]))))
    assert [r["job"] for r in table] == ["0", "1", "2", "3", "4"]
    assert table[0]["data.sampler.strategy"] == "overlap" and table[0]["seed"] == "1"
    assert (table[0]["before_stsb_dev"], table[0]["stsb_dev"]) == ("86.7200", "80.0000")
    assert table[3]["status"] == "failed" and table[3]["error"] == "RuntimeError: out of memory"
