"""benchmarks/gpu_suite.py: its FLOP count against a real model's parameters, and its CPU path end to end."""

import json
import subprocess
import sys

import pytest
from transformers import BertConfig, BertModel

from tests.helpers.paths import ROOT, STATE_UNION


@pytest.fixture
def gpu_suite(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import gpu_suite

    return gpu_suite


def test_non_embedding_parameters_are_the_models(gpu_suite):
    shape = gpu_suite.SIZES["distilroberta"]
    model = BertModel(BertConfig(num_hidden_layers=shape["layers"], hidden_size=shape["hidden"],
                                 num_attention_heads=shape["heads"], intermediate_size=shape["ffn"],
                                 vocab_size=shape["vocab"]))
    embeddings = sum(p.numel() for p in model.embeddings.parameters())
    assert gpu_suite.non_embedding_parameters("distilroberta") == sum(p.numel() for p in model.parameters()) - embeddings


@pytest.mark.slow
def test_the_suite_runs_its_cases_on_the_cpu(tmp_path):
    out = tmp_path / "suite"
    command = [sys.executable, str(ROOT / "benchmarks" / "gpu_suite.py"), f"data.files=[{STATE_UNION}]", "--device",
               "cpu", "--tiny", "--steps", "1", "--warmup", "1", "--peak-tflops", "1", "--out", str(out),
               "--only", "tiny 32 MLM", "GradCache 32"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    cases = json.loads(out.with_suffix(".json").read_text())["cases"]
    assert [case["name"] for case in cases] == ["tiny 32 MLM", "tiny bf16 MLM 48 anchors, GradCache 32"]
    assert all("error" not in case["result"] and case["tflops"] > 0 and case["mfu"] > 0 for case in cases), cases
    assert cases[1]["result"]["anchors"] == 48
    table = out.with_suffix(".md").read_text()
    assert table.startswith("| case |") and "GradCache 32" in table and "MFU against 1.0 TFLOP/s" in table
