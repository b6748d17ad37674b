"""The notebooks, executed end to end with nbclient on real data and small settings so they never rot.

``DECLUTR_NOTEBOOK_SMALL=1`` makes each notebook small (fewer samples, sentences and steps). After the
notebook's own cells, one extra cell prints the values the assertions check, as JSON.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers.paths import DATA_DIR, ROOT

NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_span_sampling.ipynb", "02_embeddings.ipynb", "03_training_curves.ipynb"]
MARKER = "NOTEBOOK-RESULT:"


def execute(name: str, cwd: Path, result_expression: str, **env: str) -> tuple[nbformat.NotebookNode, dict]:
    """Run a notebook in a fresh python3 kernel (the test venv's ipykernel) from ``cwd``; returns the
    executed notebook and the JSON value of ``result_expression`` evaluated in its namespace."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(f"import json\nprint({MARKER!r} + json.dumps({result_expression}, default=float))"))
    kernel_env = {"DECLUTR_NOTEBOOK_SMALL": "1", "DECLUTR_DATA_DIR": str(DATA_DIR), "WANDB_MODE": "offline",
                  "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", **env}
    with pytest.MonkeyPatch.context() as patch:  # the kernel inherits this process's environment
        for key, value in kernel_env.items():
            patch.setenv(key, value)
        if "OMP_NUM_THREADS" not in os.environ:  # on a shared CPU, 2 spinning torch threads can run 10x slower than 1
            patch.setenv("OMP_NUM_THREADS", "1")
        patch.delenv("MPLBACKEND", raising=False)  # let ipykernel pick the inline backend: figures become PNGs
        for key in ("DECLUTR_NOTEBOOK_MODEL", "DECLUTR_NOTEBOOK_RUN", "DECLUTR_NOTEBOOK_OUTPUT_DIR"):
            if key not in env:
                patch.delenv(key, raising=False)
        NotebookClient(nb, timeout=180, startup_timeout=120, kernel_name="python3",
                       resources={"metadata": {"path": str(cwd)}}).execute()  # raises on any cell error
    printed = "".join(o.get("text", "") for o in nb.cells[-1].outputs if o.output_type == "stream")
    return nb, json.loads(printed.split(MARKER, 1)[1])


def outputs_of_type(nb: nbformat.NotebookNode, mime: str) -> list[str]:
    return [o["data"][mime] for cell in nb.cells for o in cell.get("outputs", []) if mime in o.get("data", {})]


@pytest.mark.parametrize("name", NAMES)
def test_committed_notebooks_are_stripped_and_readable(name):
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(not c.outputs and c.execution_count is None for c in code), f"strip the outputs of {name} before committing"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")
    assert "parameters" in code[0].metadata.get("tags", []), "the first code cell holds the parameters"
    run = 0  # each step is explained in markdown first: at most two code cells in a row
    for cell in nb.cells:
        run = run + 1 if cell.cell_type == "code" else 0
        assert run <= 2, f"add a markdown cell before: {cell.source[:60]!r}"
    assert name in (NOTEBOOKS / "README.md").read_text()


@pytest.mark.slow
def test_span_sampling_notebook_from_the_notebooks_folder():
    nb, result = execute("01_span_sampling.ipynb", NOTEBOOKS, '{"relations": relations, "checks": checks}')
    html = outputs_of_type(nb, "text/html")
    assert len(html) == 4 and all("background:#fff59d" in h for h in html), "legend + one highlighted anchor per strategy"
    assert len(outputs_of_type(nb, "image/png")) == 1
    relations = result["relations"]
    assert set(relations["adjacent"]) == {"adjacent"} and set(relations["subsumed"]) == {"inside"}
    assert "gap" not in relations["overlap"] and {"inside", "overlaps"} <= set(relations["overlap"])
    for name, check in result["checks"].items():
        if name != "subsumed/positive":  # clipped to the anchor's length: not Beta(2, 4) by design
            assert abs(check["mean"] - check["expected"]) < 3 and check["ks_p"] > 1e-3, (name, check)


@pytest.fixture(scope="module")
def training_notebook(tmp_path_factory):
    """03 trains its own tiny run (none given); 02 then reuses that run as its trained model."""
    run_dir = tmp_path_factory.mktemp("notebook") / "run"
    nb, result = execute("03_training_curves.ipynb", ROOT, '{"summary": summary, "counts": {k: len(v[0]) for k, v in metrics.items()}, "lr": metrics["train/lr"][1].tolist()}',
                         DECLUTR_NOTEBOOK_OUTPUT_DIR=str(run_dir))
    return nb, result, run_dir


@pytest.mark.slow
def test_training_curves_notebook_trains_and_plots_a_tiny_run(training_notebook):
    nb, result, run_dir = training_notebook
    assert (run_dir / "model" / "config.json").is_file() and (run_dir / "csv" / "version_0" / "metrics.csv").is_file()
    assert len(outputs_of_type(nb, "image/png")) == 1
    counts, summary = result["counts"], result["summary"]
    # 12 steps, every one logged; STS-B dev every 6 steps
    assert counts["train/loss"] == counts["train/contrastive_loss"] == counts["train/mlm_loss"] == counts["train/lr"] == 12
    assert counts["val/stsb_spearman"] == 2 and summary["train/loss"][2] == 11
    first_contrastive, last_contrastive, _ = summary["train/contrastive_loss"]
    assert 1.0 < first_contrastive < 4.0 and math.isfinite(last_contrastive)  # chance: log(15) = 2.71
    lr = result["lr"]  # warm-up to the tiny model's 1e-3, then linear decay
    assert max(lr) == pytest.approx(1e-3) and lr[-1] < max(lr) / 5
    assert -100 <= summary["val/stsb_spearman"][1] <= 100


@pytest.mark.slow
def test_embeddings_notebook_compares_base_and_trained_model(training_notebook):
    _, _, run_dir = training_notebook
    nb, result = execute("02_embeddings.ipynb", ROOT, '{"models": list(encoders), "spearman": spearman, "nn": nn_accuracy}',
                         DECLUTR_NOTEBOOK_MODEL=str(run_dir))
    assert result["models"] == ["base", "trained"]
    # all-MiniLM-L6-v2 scores 86.7 on the whole dev set; the tiny run is barely trained, but must be a number
    assert result["spearman"]["base"] > 75 and -100 <= result["spearman"]["trained"] <= 100
    assert result["nn"]["base"] > 0.5  # TREC coarse label of the nearest question; chance is about 0.23
    assert len(outputs_of_type(nb, "image/png")) == 2  # STS scatter and PCA, base and trained side by side
    text = "".join(o.get("text", "") for cell in nb.cells for o in cell.get("outputs", []))
    assert "STS-B dev Spearman" in text and "a dog runs through the snow ." in text
