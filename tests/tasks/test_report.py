"""``task=report``: the table (baselines, mean ± std over seeds, transfer scores when evaluated), a plot per
varied setting, every run and the failures; clear errors for a wrong sweep_dir."""

from pathlib import Path

import pytest

from declutr.errors import DeclutrConfigError
from declutr.eval.suite import SuiteResult, write_results
from declutr.eval.task import Score
from declutr.report.results import FAILED
from declutr.tasks.report import run
from tests.helpers.sweeps import add_job


@pytest.fixture
def objective_sweep(tmp_path) -> Path:
    """The objective axis x 2 seeds; the MLM-only run of seed 2 failed; the first run also went through task=eval."""
    sweep = tmp_path / "multirun"
    scores = {"contrastive_mlm": (86.0, 86.4), "contrastive": (86.6, 87.0), "mlm": (84.0, None)}
    job = 0
    for objective, by_seed in scores.items():
        for seed, dev in zip((1, 2), by_seed):
            overrides = ["experiment=ablation/objective", f"experiment/objective={objective}", f"seed={seed}"]
            add_job(sweep, str(job), overrides, status=FAILED if dev is None else "ok", axis="objective",
                    before={"stsb_dev": 86.72, "stsb_test": 82.03}, after={"stsb_dev": dev, "stsb_test": 82.0})
            job += 1
    suite = SuiteResult([Score("STSB", "spearman", 82.0, "sts"), Score("MR", "accuracy", 76.0, "transfer"),
                         Score("CR", "accuracy", 82.0, "transfer")])
    write_results(suite, sweep / "0", "eval-all", {"max_examples": None})  # python run.py task=eval eval.model=<run>
    return sweep


def test_report_of_an_axis_with_seeds_a_failure_and_transfer_scores(make_config, objective_sweep):
    summary = run(make_config("task=report", f"sweep_dir={objective_sweep}"))
    folder = objective_sweep / "report"
    assert summary == {"report": str(folder / "report.md"), "plots": [str(folder / "objective.png")], "runs": 6,
                       "failed": ["5"]}
    text = (folder / "report.md").read_text()
    assert text.startswith("# Ablation: objective\n") and "6 runs, 5 finished, 1 failed" in text
    table = [line for line in text.splitlines() if line.startswith("| ")]
    assert table[0] == "|  | objective | n | STS-B dev | STS-B test | STS avg | transfer avg |"
    assert table[1] == "| before training (minilm) |  | 5 | 86.72 ± 0.00 | 82.03 ± 0.00 | — | — |"
    assert table[2] == "| after 50 steps | contrastive_mlm | 2 | 86.20 ± 0.28 | 82.00 ± 0.00 | 82.00 | 79.00 |"
    assert table[3] == "| after 50 steps | contrastive | 2 | 86.80 ± 0.28 | 82.00 ± 0.00 | — | — |"
    assert table[4] == "| after 50 steps | mlm | 1 (1 failed) | 84.00 | 82.00 | — | — |"
    assert "## Failed or unfinished runs" in text and "| 5 | failed |" in text and "5/error.txt" in text
    assert "![objective](objective.png)" in text and (folder / "objective.png").stat().st_size > 10_000
    assert len((folder / "runs.csv").read_text().splitlines()) == 1 + 6


def test_output_dir_and_metrics_are_settable(make_config, objective_sweep, tmp_path):
    run(make_config("task=report", f"sweep_dir={objective_sweep}", f"report.output_dir={tmp_path / 'out'}",
                    "report.metrics=[mr_accuracy,stsb_dev]"))
    text = (tmp_path / "out" / "report.md").read_text()
    assert "| objective | n | mr_accuracy | STS-B dev |" in text


@pytest.mark.parametrize("sweep_dir, message", [(None, "task=report needs sweep_dir"),
                                                ("/nonexistent/multirun", "is not a folder"),
                                                ("{empty}", "holds no training runs")])
def test_a_wrong_sweep_dir_names_the_fix(make_config, tmp_path, sweep_dir, message):
    overrides = ["task=report"] + ([f"sweep_dir={str(sweep_dir).format(empty=tmp_path)}"] if sweep_dir else [])
    with pytest.raises(DeclutrConfigError, match=message):
        run(make_config(*overrides))
