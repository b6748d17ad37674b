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
def test_each_configuration_is_measured_and_profiled_in_a_fresh_process(tmp_path):
    out = tmp_path / "results.json"
    # Any config key passes through: GradCache (2 documents x 2 anchors in chunks of 3 sequences), the window sampler.
    command = [sys.executable, str(ROOT / "benchmarks" / "train_step.py"), "model=tiny", f"data.files=[{STATE_UNION}]",
               "data.batch_size=2", "--case", "model.grad_cache.chunk_size=3",
               "--case", "data/sampler=windows model.contrastive_weight=0.0", "--steps", "2", "--warmup", "1",
               "--json", str(out), "--profile"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "train_step.py model=tiny" in result.stdout and "torch " in result.stdout  # command line and machine
    spans, windows = json.loads(out.read_text())["results"]
    assert "error" not in spans and "error" not in windows, (spans, windows)
    assert spans["overrides"] == ["model.grad_cache.chunk_size=3"]
    assert (spans["anchors"], spans["sequences"], spans["steps_timed"]) == (4, 4 + 8, 2)
    assert spans["tokens_per_s"] > 0 and 0 <= spans["padding"] < 1
    assert spans["peak_mib"] > spans["rise_mib"] > 0  # peak RSS of the child, and its rise during fit
    assert spans["gflops_per_step"] > 0 and spans["tflops_per_s"] > 0  # the step's FLOPs and their rate
    assert windows["sequences"] == windows["anchors"] > 0 and windows["gflops_per_step"] > 0  # windows, no positives
    for number in (1, 2):  # --profile: each configuration's top operators, by share of their CPU time
        section = result.stdout.split(f"Configuration {number}, share of the operators' self CPU time:")[1]
        assert "%  aten::" in section.split("Configuration")[0]


def test_the_matmul_peak_is_measured_per_dtype():
    command = [sys.executable, str(ROOT / "benchmarks" / "matmul_peak.py"), "--sizes", "32", "64", "--seconds", "0.05"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.startswith(("float32", "bfloat16"))}
    assert set(rows) == {"float32", "bfloat16"} and all(float(row[-1]) > 0 for row in rows.values())
