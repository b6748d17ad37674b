"""benchmarks/eval_speed.py on a tiny model and capped tasks: both settings measured, every task timed and scored."""

import json
import subprocess
import sys

import pytest

from tests.helpers.eval_data import write_tiny_model
from tests.helpers.paths import ROOT


@pytest.mark.slow
def test_both_settings_time_and_score_every_task(tmp_path):
    model, out = write_tiny_model(tmp_path / "tiny"), tmp_path / "results.json"
    command = [sys.executable, str(ROOT / "benchmarks" / "eval_speed.py"), "--eval", "quick", "--tasks", "STSB", "CR",
               "TREC", "--max-examples", "60", "--model", str(model), "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    plain, fast = json.loads(out.read_text())["results"]
    assert (plain["setting"], plain["precision"], plain["n_jobs"]) == ("plain", "float32", 1)
    assert fast["setting"] == "fast" and fast["n_jobs"] >= 1
    for measured in (plain, fast):
        assert [row["task"] for row in measured["tasks"]] == ["STSB", "CR", "TREC"]  # the suite's order
        assert all(row["embed_s"] > 0 and row["fit_s"] >= 0 for row in measured["tasks"])
        assert set(measured["tasks"][1]["scores"]) == {"cr_accuracy"}
    assert "plain embed s" in result.stdout and "fast embed s" in result.stdout and "total" in result.stdout
