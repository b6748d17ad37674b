"""A run folder belongs to one run: a second run into a held folder is refused before the model loads, naming the
holder, and leaves the folder as it was; runs started in the same second get folders of their own; the lock dies with
its process."""

import signal
import subprocess
import sys

import pytest

from declutr.errors import DeclutrConfigError
from declutr.files.run_folder import LOCK_FILE, run_folder_lock
from declutr.report.results import OK, read_result
from tests.helpers.faults import finish, start_run, trained_steps, wait_until
from tests.helpers.paths import DATA_DIR, STATE_UNION

ARGS = ["model=tiny", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "data.batch_size=2",
        "evaluate.enabled=false", "callbacks.stsb_dev.every_n_steps=4", "callbacks.stsb_dev.max_examples=50"]
HOLD = "import sys, time; from declutr.files.run_folder import run_folder_lock\n" \
       "with run_folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"


def test_a_held_folder_is_refused_naming_its_holder_and_freed_when_the_holder_dies(tmp_path):
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    with pytest.raises(DeclutrConfigError, match=rf"Run folder {tmp_path} is in use by another run \(pid "
                                                 rf"{holder.pid} on .*, started .*: -c {tmp_path}\): two runs in one folder"):
        with run_folder_lock(tmp_path):
            pass
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    with run_folder_lock(tmp_path):  # the kernel released it: no stale lock after a kill -9
        assert (tmp_path / LOCK_FILE).is_file()


@pytest.mark.slow
def test_a_second_run_into_a_running_runs_folder_is_refused_and_changes_nothing(tmp_path):
    first = start_run(*ARGS, "trainer.max_steps=16", f"hydra.run.dir={tmp_path}")
    wait_until(lambda: trained_steps(tmp_path) >= 2, first, "step 2 of the first run")
    config = (tmp_path / ".hydra" / "config.yaml").read_bytes()
    second = finish(start_run(*ARGS, "trainer.max_steps=4", "seed=7", f"hydra.run.dir={tmp_path}"))
    assert second.returncode == 1 and "Traceback" not in second.stderr, second.stderr[-3000:]
    assert f"Run folder {tmp_path} is in use by another run (pid {first.pid} on " in second.stderr
    assert "Seed set" not in second.stderr + second.stdout, "refused before anything loads"
    assert (tmp_path / ".hydra" / "config.yaml").read_bytes() == config
    result = finish(first)
    assert result.returncode == 0, result.stderr[-3000:]
    record = read_result(tmp_path)
    assert (record.status, record.steps, record.settings["seed"]) == (OK, 16, 42)
    assert (tmp_path / "model" / "model.safetensors").is_file()
    assert {int(line.split("\t")[0]) for line in (tmp_path / "documents.tsv").read_text().splitlines()} == \
        set(range(1, 17)), "only the first run's steps"


@pytest.mark.slow
def test_runs_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    runs = [start_run(*ARGS, "trainer.max_steps=2", cwd=tmp_path)
            for _ in range(2)]
    for run in runs:
        result = finish(run)
        assert result.returncode == 0, result.stderr[-3000:]
    folders = sorted((tmp_path / "outputs" / "train").iterdir())
    assert len(folders) == 2 and folders[0].name[:16] == folders[1].name[:16]  # the same minute at least
    assert all(read_result(folder).status == OK for folder in folders)


def test_a_refused_run_writes_nothing_into_the_held_folder(tmp_path):
    """The lock is the run's first act: no .hydra/, no log, no record of the refused run in the holder's folder."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline() == "held\n"
    refused = finish(start_run(*ARGS, f"hydra.run.dir={tmp_path}"))
    assert refused.returncode == 1 and "is in use by another run" in refused.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_FILE]
    holder.kill()
    holder.wait()
