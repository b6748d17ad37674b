"""``python run.py --help``: a short page naming every task, examples and the config groups, not Hydra's generic one."""

import re

import pytest

from tests.helpers.paths import ROOT
from tests.helpers.runs import run_py

pytestmark = pytest.mark.slow  # run.py in subprocesses


def test_help_names_every_task_and_the_groups_in_one_page():
    result = run_py("trainer.max_steps=99", "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    tasks = sorted(p.stem for p in (ROOT / "src" / "declutr" / "tasks").glob("*.py") if p.stem != "__init__")
    listed = re.findall(r"^(\w+) {2,}", result.stdout.split("== Tasks")[1].split("==")[1], flags=re.M)
    assert sorted(listed) == tasks
    assert "experiment/ablation: anchors" in result.stdout and "--cfg job" in result.stdout
    assert "the schedule's length [99]" in result.stdout, "settings show the value in force"
    assert len(result.stdout.splitlines()) < 70


def test_an_unknown_task_is_a_configuration_error_leaving_no_run_folder(tmp_path):
    result = run_py("task=trian", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Configuration error: task='trian' is not a task: use one of embed, eval, export" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("override", ["data.sampler.num_anchor=4", "+data.sampler.num_anchor=4"])
def test_a_mistyped_key_ends_in_the_nearest_valid_key_before_anything_loads(tmp_path, override):
    """Plain, Hydra cannot apply it; with "+", as Hydra then advises, it composes but SpanSampler does not take it:
    either way the last word names the key to use, no traceback, no run folder, nothing loaded (no seed set)."""
    result = run_py(override, f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.rstrip().splitlines()[-1].startswith(
        "  - data.sampler.num_anchor is not a setting: did you mean data.sampler.num_anchors? ")
    assert "Seed set" not in result.stdout + result.stderr, "refused before the run began"
    assert not (tmp_path / "run").exists()


def test_a_task_composes_its_own_config_and_its_help_page():
    job = run_py("task=embed", "--cfg", "job")
    assert job.returncode == 0, job.stderr[-2000:]
    assert re.findall(r"^(\w+):", job.stdout, flags=re.M) == ["task", "seed", "print_config", "paths", "embed"]
    assert job.stdout.startswith("task: embed\n")
    page = run_py("task=eval", "--help")  # task=eval's config has no trainer: the training settings show no value
    assert page.returncode == 0, page.stderr[-2000:]
    assert "the schedule's length [-]" in page.stdout and "eval: all, quick, sts, stsb, transfer" in page.stdout


def test_a_sweep_over_tasks_is_a_configuration_error_leaving_no_sweep_folder(tmp_path):
    result = run_py("-m", "task=train,eval", f"hydra.sweep.dir={tmp_path / 'sweep'}")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "Configuration error: task=train,eval: one task per command" in result.stderr
    assert not (tmp_path / "sweep").exists()


def test_tab_completion_offers_the_keys_of_the_task_on_the_line(monkeypatch):
    """Hydra's completion query reads the line being typed from COMP_LINE: its task picks the config completed."""
    monkeypatch.setenv("COMP_LINE", "python run.py task=eval eval.max")
    result = run_py("--shell-completion", "query=bash")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["eval.max_examples="]
    monkeypatch.setenv("COMP_LINE", "python run.py data.sampler.num_a")  # no task: train's
    assert run_py("--shell-completion", "query=bash").stdout.split() == ["data.sampler.num_anchors="]
