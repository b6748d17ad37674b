"""Every way a real run ends leaves one honest record: Ctrl+C, SIGTERM and a second Ctrl+C during the save give an
``interrupted`` results.json with the step reached, exit 130 / 143, no exported model, a run that ``skip_finished``
trains again; Ctrl+C inside a sweep records the job and stops the sweep."""

import signal

import pytest

from declutr.files.checkpoints import load_checkpoint
from declutr.report.results import INTERRUPTED, OK, read_result
from tests.helpers.faults import finish, signal_group, start_run, trained_steps, wait_until
from tests.helpers.paths import DATA_DIR, STATE_UNION
from tests.helpers.runs import run_py
from tests.helpers.wandb_log import summary_and_exit_code

pytestmark = pytest.mark.slow  # every test here runs run.py in subprocesses

ARGS = ["model=tiny", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "data.batch_size=2",
        "evaluate.enabled=false", "callbacks.stsb_dev.every_n_steps=4", "callbacks.stsb_dev.max_examples=50",
        "trainer.max_steps=20"]


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_saves_records_interrupted_and_exports_nothing(tmp_path, sig, code):
    process = start_run(*ARGS, "logger=wandb", f"hydra.run.dir={tmp_path}")
    wait_until(lambda: trained_steps(tmp_path) >= 5, process, "step 5")
    signal_group(process, sig)
    result = finish(process)
    assert result.returncode == code, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "(status interrupted)" in result.stderr
    record = read_result(tmp_path)
    last = tmp_path / "checkpoints" / "last.ckpt"
    assert (record.status, record.checkpoint) == (INTERRUPTED, str(last))
    assert 5 <= record.steps < 20 and load_checkpoint(last)["global_step"] == record.steps == trained_steps(tmp_path)
    assert not (tmp_path / "model").exists(), "an interrupted run is not exported as a finished model"
    (run_file,) = (tmp_path / "wandb").glob("offline-run-*/run-*.wandb")
    summary, exit_code = summary_and_exit_code(run_file)
    assert summary["status"] == INTERRUPTED and exit_code == code, "unfinished in W&B too"
    if sig == signal.SIGINT:  # a rerun with skip_finished=true trains it: here, resumed to the end
        rerun = run_py(*ARGS, "logger=wandb", f"hydra.run.dir={tmp_path}", "skip_finished=true", f"ckpt_path={last}")
        assert rerun.returncode == 0, rerun.stderr[-3000:]
        assert (read_result(tmp_path).status, read_result(tmp_path).steps) == (OK, 20)
        throughput = next(v for k, v in load_checkpoint(last)["callbacks"].items() if "TokenThroughput" in k)
        assert read_result(tmp_path).seconds > throughput["train_seconds"] > 0, "the time of both attempts"
        assert (tmp_path / "model" / "model.safetensors").is_file()


def test_a_second_ctrl_c_during_the_save_stops_at_once_keeping_the_last_checkpoint(tmp_path):
    marker = tmp_path / "saving"
    slow = ["+callbacks.slow._target_=tests.helpers.faults.SlowStopSave", f"+callbacks.slow.marker={marker}"]
    run_dir = tmp_path / "run"
    process = start_run(*ARGS, *slow, f"hydra.run.dir={run_dir}")
    wait_until(lambda: trained_steps(run_dir) >= 6, process, "step 6")  # last.ckpt was saved at step 4
    signal_group(process, signal.SIGINT)
    wait_until(marker.exists, process, "the save on the first Ctrl+C")
    signal_group(process, signal.SIGINT)
    result = finish(process)
    assert result.returncode == 130 and "Traceback" not in result.stderr, result.stderr[-3000:]
    record = read_result(run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    assert record.status == INTERRUPTED and record.steps >= 6 and record.checkpoint == str(last)
    assert load_checkpoint(last)["global_step"] == 4, "the save cut short left the previous last.ckpt intact"
    assert not list((run_dir / "checkpoints").glob("*.tmp")) and not (run_dir / "model").exists()


def test_ctrl_c_in_a_sweep_records_the_job_and_stops_the_sweep(tmp_path):
    sweep = tmp_path / "sweep"
    process = start_run("-m", *ARGS, f"hydra.sweep.dir={sweep}", "seed=1,2")
    wait_until(lambda: trained_steps(sweep / "0") >= 3, process, "step 3 of job 0")
    signal_group(process, signal.SIGINT)
    result = finish(process)
    assert result.returncode == 130, result.stderr[-3000:]
    assert "Sweep stopped: job 0 was interrupted by SIGINT" in result.stdout + result.stderr
    assert read_result(sweep / "0").status == INTERRUPTED
    assert not (sweep / "1").exists(), "no silent next job"
    report = run_py("task=report", f"sweep_dir={sweep}", f"hydra.run.dir={tmp_path / 'report'}")
    assert report.returncode == 0, report.stderr[-3000:]
    assert "1 runs, 0 finished, 1 interrupted, 0 failed" in report.stdout


def test_a_signal_before_training_is_recorded_too(tmp_path):
    """Ctrl+C while the run starts (here: during the evaluation before training) stops it at once, recorded."""
    marker = tmp_path.parent / "scoring"
    slow = ["+evaluate.tasks.slow._target_=tests.helpers.faults.SlowEvaluation", f"+evaluate.tasks.slow.marker={marker}"]
    process = start_run(*ARGS, "evaluate.enabled=true", *slow, f"hydra.run.dir={tmp_path}")
    wait_until(marker.exists, process, "the evaluation before training")
    assert trained_steps(tmp_path) == 0
    signal_group(process, signal.SIGINT)
    result = finish(process)
    assert result.returncode == 130, result.stderr[-3000:]
    record = read_result(tmp_path)
    assert record.status == INTERRUPTED and not (tmp_path / "model").exists()
    assert record.steps is None and trained_steps(tmp_path) == 0
