"""Real sweeps through run.py: an ablation axis with a job that fails (recorded, the others still run, summarised,
exit status 1), one W&B run per job, the report built from the sweep's output, and a 2-trial Optuna search."""

import json
import shutil
from pathlib import Path

import optuna
import pytest
import yaml

from declutr.runs.git_commit import git_commit
from tests.helpers.paths import DATA_DIR
from tests.helpers.runs import run_py
from tests.helpers.wandb_log import config_values, run_identity, run_tags

pytestmark = pytest.mark.slow  # every test here runs run.py in subprocesses

BOOK = DATA_DIR / "corpus" / "nltk_gutenberg" / "gutenberg" / "austen-emma.txt"
CHUNK_TOKENS = 700  # enough for A=1 or A=2 spans of at most 128 tokens (256 / 512 needed), too few for A=4 (1,024)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tokenizer) -> Path:
    """24 real documents of ~700 tokens each: pieces of a Gutenberg novel."""
    folder = tmp_path_factory.mktemp("corpus")
    ids = tokenizer(BOOK.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    for i in range(24):
        text = tokenizer.decode(ids[i * CHUNK_TOKENS : (i + 1) * CHUNK_TOKENS])
        assert 512 <= len(tokenizer(text, add_special_tokens=False)["input_ids"]) < 1024
        (folder / f"emma-{i:02d}.txt").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, corpus):
    """The anchors axis at the smoke scale with A = 4, 1, 2: the first job has no usable document and fails.
    Run without -m: an ablation experiment is a sweep by itself (hydra.mode=MULTIRUN)."""
    folder = tmp_path_factory.mktemp("multirun")
    return folder, anchors_sweep(corpus, folder, "logger=wandb")


def anchors_sweep(corpus: Path, folder: Path, *overrides: str):
    return run_py("experiment=ablation/anchors", "experiment/scale=smoke", "data.sampler.num_anchors=4,1,2",
                  f"data.files=[{corpus}]", f"paths.data_dir={DATA_DIR}", "trainer.max_steps=3",
                  "evaluate.tasks.stsb_test=null", "data.num_workers=0", *overrides, f"hydra.sweep.dir={folder}")


def same_commit(a: str | None, b: str | None) -> bool:
    """The same sha (files may have been edited in between: ``-dirty`` is not compared)."""
    return (a or "").removesuffix("-dirty") == (b or "").removesuffix("-dirty")


def results(folder: Path) -> dict:
    return json.loads((folder / "results.json").read_text())


def test_a_failed_job_is_recorded_and_the_sweep_goes_on(sweep):
    folder, result = sweep
    assert result.returncode == 1, "some job failed: the sweep's exit status says so"
    failed, *finished = (results(folder / str(job)) for job in range(3))
    assert failed["status"] == "failed" and "No usable document" in failed["error"]
    assert failed["settings"]["num_anchors"] == 4 and failed["axis"] == "anchors"
    assert "Traceback" in (folder / "0" / failed["traceback_file"]).read_text()
    for job, outcome in zip((1, 2), finished):  # the jobs after the failure ran to the end
        assert outcome["status"] == "ok" and outcome["steps"] == 3 and outcome["settings"]["num_anchors"] == job
        assert set(outcome["before"]) == set(outcome["after"]) == {"stsb_dev"}
        assert outcome["experiment"] == "ablation/anchors" and same_commit(outcome["git_commit"], git_commit())
        assert (folder / str(job) / "model" / "config.json").is_file()
    output = result.stdout + result.stderr
    assert "3 training jobs, 2 finished, 1 failed" in output and f"task=report sweep_dir={folder}" in output


def test_each_job_is_its_own_wandb_run_with_its_config_and_tags(sweep):
    folder, _ = sweep
    for job, anchors in ((1, 1), (2, 2)):
        (run_file,) = (folder / str(job) / "wandb").glob("offline-run-*/run-*.wandb")
        assert config_values(run_file)["data"]["sampler"]["num_anchors"] == anchors
        assert {"experiment:ablation/anchors", "axis:anchors", "scale:smoke",
                f"data.sampler.num_anchors={anchors}"} <= run_tags(run_file)
        assert run_identity(run_file)["group"] == "anchors@smoke", "every setting and seed of the axis: one chart"


def test_report_of_the_sweep_lists_the_failure_beside_the_baseline_and_results(sweep, tmp_path):
    folder, _ = sweep
    report = run_py("task=report", f"sweep_dir={folder}", f"hydra.run.dir={tmp_path}")
    assert report.returncode == 0, report.stderr[-3000:]
    text = (folder / "report" / "report.md").read_text()
    assert text.startswith("# Ablation: anchors")
    rows = [line for line in text.splitlines() if line.startswith("| ")]
    header = rows[0]
    assert header.split("|")[2].strip() == "num_anchors" and "STS-B dev" in header
    assert rows[1].startswith("| before training (tiny) |")
    assert [r.split("|")[2].strip() for r in rows[2:5]] == ["1", "2", "4"]  # sorted as numbers
    assert "| 0 (1 failed) |" in rows[4] and "No usable document" in text and "0/error.txt" in text
    png = (folder / "report" / "num_anchors.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert len((folder / "report" / "runs.csv").read_text().splitlines()) == 1 + 3


def test_rerun_with_skip_finished_trains_only_the_jobs_that_did_not_finish(sweep, corpus, tmp_path):
    folder, _ = sweep
    again = tmp_path / "multirun"
    shutil.copytree(folder, again)
    finished = {job: (again / job / "results.json").read_bytes() for job in ("1", "2")}
    result = anchors_sweep(corpus, again, "skip_finished=true")
    output = result.stdout + result.stderr
    assert result.returncode == 1 and "3 training jobs, 2 finished, 1 failed" in output  # job 0 was tried again
    assert output.count("already holds this finished run (results.json): skipped") == 2
    assert {job: (again / job / "results.json").read_bytes() for job in ("1", "2")} == finished


def test_optuna_search_runs_trials_keeps_the_best_and_stores_the_study_in_sqlite(tmp_path, corpus):
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    result = run_py("hparams_search=stsb_optuna", "experiment=scale/smoke", "hydra.sweeper.n_trials=2",
                    f"data.files=[{corpus}]", f"paths.data_dir={DATA_DIR}", "trainer.max_steps=2",
                    "data.sampler.num_anchors=choice(1,2)", "evaluate.tasks.stsb_test=null", "data.num_workers=0",
                    f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={tmp_path}")
    assert result.returncode == 0, result.stderr[-3000:]
    study = optuna.load_study(study_name="stsb_dev", storage=storage)  # the study outlives the run: resumable
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 2
    best = yaml.safe_load((tmp_path / "optimization_results.yaml").read_text())
    values = [results(tmp_path / str(job))["after"]["stsb_dev"] for job in range(2)]
    assert best["best_value"] == pytest.approx(max(values))
    assert set(best["best_params"]) == {"model.optimizer.lr", "model.loss.temperature", "data.sampler.num_anchors",
                                        "data.sampler.num_positives"}
