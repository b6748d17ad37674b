"""benchmarks/train_step.py at smoke size: its sweep expansion, and one real configuration end to end."""

import json
import subprocess
import sys

import pytest

from tests.helpers.paths import ROOT, STATE_UNION


@pytest.fixture
def train_step(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import train_step

    return train_step


def test_sweeps_expand_like_hydra_and_a_later_key_wins(train_step):
    assert train_step.expand(["data.batch_size=16", "model=tiny,minilm", "data.batch_size=4"]) == [
        ["model=tiny", "data.batch_size=4"], ["model=minilm", "data.batch_size=4"]]


@pytest.mark.slow
def test_one_configuration_is_measured_in_a_fresh_process(tmp_path):
    out = tmp_path / "results.json"
    # Any config key passes through: here GradCache, 2 documents x 2 anchors in chunks of 3 sequences.
    command = [sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "model=tiny", f"data.files=[{STATE_UNION}]",
               "data.batch_size=2", "--case", "model.grad_cache.chunk_size=3", "--steps", "2", "--warmup", "1",
               "--json", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train_step.py model=tiny" in result.stdout and "torch " in result.stdout  # command line and machine
    (measured,) = json.loads(out.read_text())["results"]
    assert "error" not in measured, measured
    assert measured["overrides"] == ["model.grad_cache.chunk_size=3"]
    assert (measured["anchors"], measured["sequences"], measured["steps_timed"]) == (4, 4 + 8, 2)
    assert measured["tokens_per_s"] > 0 and 0 <= measured["padding"] < 1
    assert measured["peak_mib"] > measured["rise_mib"] > 0  # peak RSS of the child, and its rise during fit
