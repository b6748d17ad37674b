"""The primary config of a command is its task's, chosen from ``task=`` before Hydra composes anything."""

import pytest

from declutr.config.primary import DEFAULT_TASK, TASKS, config_name
from declutr.errors import DeclutrConfigError
from tests.helpers.paths import ROOT

CONF = ROOT / "conf"


def test_every_task_module_has_its_primary_config():
    assert "train" in TASKS and "eval" in TASKS
    for task in TASKS:
        assert config_name([f"task={task}"], CONF) == task
        assert (CONF / f"{task}.yaml").is_file()


@pytest.mark.parametrize("argv, name", [
    ([], DEFAULT_TASK),
    (["model=tiny", "seed=3"], "train"),
    (["-m", "seed=1,2", "task=eval", "eval=sts,transfer"], "eval"),  # a sweep of one task's settings
    (["+task=embed"], "embed"),
    (["task=eval", "task=export"], "export"),  # the last one wins, as in Hydra
    (["task=report", "--cfg", "job"], "report"),
    (["--help", "task=prepare"], "prepare"),
])
def test_the_task_override_names_the_config(argv, name):
    assert config_name(argv, CONF) == name


def test_an_unknown_task_is_refused_naming_every_task():
    with pytest.raises(DeclutrConfigError) as refused:
        config_name(["task=trian"], CONF)
    assert str(refused.value) == f"task='trian' is not a task: use one of {', '.join(TASKS)}."
    with pytest.raises(DeclutrConfigError, match="task='common' is not a task"):  # shared by the tasks, not one
        config_name(["task=common"], CONF)


def test_a_sweep_over_tasks_is_refused():
    with pytest.raises(DeclutrConfigError, match=r"^task=train,eval: one task per command"):
        config_name(["-m", "task=train,eval"], CONF)


def test_a_task_without_its_config_names_the_file(tmp_path):
    with pytest.raises(DeclutrConfigError, match=rf"task=eval has no config {tmp_path / 'eval'}\.yaml"):
        config_name(["task=eval"], tmp_path)


def test_tab_completion_completes_the_line_s_task(monkeypatch):
    """Hydra's completion query has the line being typed in COMP_LINE, not in its arguments."""
    query = ["--shell-completion", "query=bash"]
    monkeypatch.setenv("COMP_LINE", "python run.py task=eval eval.")
    assert config_name(query, CONF) == "eval"
    monkeypatch.setenv("COMP_LINE", "python run.py task=ev")  # the task itself being typed: the default's keys
    assert config_name(query, CONF) == DEFAULT_TASK
    monkeypatch.setenv("COMP_LINE", "python run.py data.")
    assert config_name(query, CONF) == DEFAULT_TASK
