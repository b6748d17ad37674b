"""Training throughput: the mean over every step after the first, and a one-step run that says it was not measured."""

import json
from pathlib import Path

from declutr.tasks.train import run
from tests.helpers.runs import FAST

ONE_STEP = [*FAST, "trainer.max_steps=1", "evaluate.enabled=false", "data.num_workers=0", "log_documents=false"]


def test_a_one_step_run_says_throughput_was_not_measured(make_config, capsys):
    cfg = make_config(*ONE_STEP)
    run(cfg)
    out = capsys.readouterr().out
    assert "Training throughput: not measured" in out and "nan" not in out
    assert json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())["tokens_per_s"] is None


def test_later_steps_are_timed(make_config, capsys):
    cfg = make_config(*ONE_STEP, "trainer.max_steps=3")
    run(cfg)
    assert "Training throughput: " in capsys.readouterr().out
    assert json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())["tokens_per_s"] > 0
