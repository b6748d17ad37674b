"""Stopping a real training run (SIGKILL, SIGTERM, SIGINT) and resuming it loses and repeats nothing."""

import csv
import shutil
import signal
import subprocess
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from declutr.files.checkpoints import load_checkpoint
from declutr.files.run_folder import LOCK_FILE
from tests.helpers.faults import finish, signal_group, start_run, trained_steps, wait_until
from tests.helpers.paths import DATA_DIR, STATE_UNION

pytestmark = pytest.mark.slow  # every test here runs run.py in subprocesses

# 24 steps x 2 documents = 48 of the 59 readable State of the Union files: one epoch, no document twice.
ARGS = ["model=tiny", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "data.batch_size=2",
        "data.num_workers=1", "evaluate.enabled=false", "callbacks.stsb_dev.every_n_steps=4", "trainer.max_steps=24"]
# Dropout on (as in the tiny model's MiniLM config, said here so the test keeps it) and the loss logged and written
# out at every step: a killed run's CSV log keeps its steps.
DROPOUT = ["++model.encoder.config_overrides.hidden_dropout_prob=0.1",
           "++model.encoder.config_overrides.attention_probs_dropout_prob=0.1",
           "trainer.log_every_n_steps=1", "++logger.csv.flush_logs_every_n_steps=1"]


def start(run_dir: Path, *extra: str) -> subprocess.Popen:
    return start_run(*ARGS, f"hydra.run.dir={run_dir}", *extra)


def steps(run_dir: Path) -> dict[int, list[str]]:
    """step -> its documents, from documents.tsv. A step redone after a crash was logged twice; its
    later lines (the ones the resumed run trained on) win."""
    path = run_dir / "documents.tsv"
    table: dict[int, list[str]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        step, _rank, doc = line.split("\t")
        table.setdefault(int(step), []).append(doc)
    return {step: docs[-2:] for step, docs in table.items()}  # 2 documents per step


def losses(run_dir: Path) -> dict[int, str]:
    """logged step -> train/loss as written (text: equal text is equal bits), over the CSV logs of every attempt
    (csv/version_N, one per attempt); a step logged again by a later attempt (redone after a kill) keeps its later
    value."""
    table: dict[int, str] = {}
    for log in sorted((run_dir / "csv").glob("version_*/metrics.csv"), key=lambda p: int(p.parent.name[8:])):
        with log.open() as handle:
            table.update({int(row["step"]): row["train/loss"] for row in csv.DictReader(handle) if row["train/loss"]})
    return table


def wait_for_step(process: subprocess.Popen, run_dir: Path, step: int) -> None:
    wait_until(lambda: trained_steps(run_dir) >= step, process, f"step {step}")


def kill_after(run_dir: Path, step: int, *extra: str) -> Path:
    """Start a run, ``kill -9`` it once it trained ``step`` steps; its ``last.ckpt``."""
    process = start(run_dir, *extra)
    wait_for_step(process, run_dir, step)
    signal_group(process, signal.SIGKILL)
    process.wait()
    return run_dir / "checkpoints" / "last.ckpt"


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, list[str]]:
    run_dir = tmp_path_factory.mktemp("reference")
    result = finish(start(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    table = steps(run_dir)
    assert sorted(table) == list(range(1, 25))
    return table


@pytest.fixture(scope="module")
def dropout_reference(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("dropout_reference")
    result = finish(start(run_dir, *DROPOUT))
    assert result.returncode == 0, result.stderr[-3000:]
    assert len(losses(run_dir)) == 24
    return run_dir


def test_sigkill_then_resume_with_dropout_gives_the_same_losses_and_weights_bit_for_bit(tmp_path, dropout_reference):
    """The random state (dropout's above all) is saved in the checkpoint and restored before the first resumed step
    (declutr.callbacks.random_state): from there the run computes exactly what the uninterrupted run computed."""
    last = kill_after(tmp_path, 10, *DROPOUT)  # checkpoints were taken at steps 4 and 8, the latter after evaluation
    assert torch.load(last, weights_only=True, mmap=True)["global_step"] < max(steps(tmp_path)), "steps are redone"
    result = finish(start(tmp_path, *DROPOUT, f"ckpt_path={last}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert losses(tmp_path) == losses(dropout_reference), "the loss of every step"
    for file in ("model.safetensors", "mlm_head.safetensors"):  # the encoder, and the MLM head kept beside it
        weights, reference = (load_file(run / "model" / file) for run in (tmp_path, dropout_reference))
        assert weights.keys() == reference.keys()
        assert all(torch.equal(weights[name], tensor) for name, tensor in reference.items()), f"the final {file}"


def test_sigkill_then_resume_reads_every_document_exactly_once(tmp_path, reference):
    last = kill_after(tmp_path, 10)  # checkpoints were taken at steps 4 and 8
    saved_step = torch.load(last, weights_only=True, mmap=True)["global_step"]
    assert saved_step == 8
    result = finish(start(tmp_path, f"ckpt_path={last}"))
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = steps(tmp_path)
    assert resumed == reference, "the same documents at every step as a run never interrupted"
    every_doc = [doc for docs in resumed.values() for doc in docs]
    assert len(every_doc) == len(set(every_doc)) == 48


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_sigterm_and_sigint_save_a_checkpoint_first(tmp_path, reference, sig, code):
    process = start(tmp_path)
    wait_for_step(process, tmp_path, 5)
    process.send_signal(sig)  # to the main process alone (test_endings sends to the whole process group)
    result = finish(process)
    assert result.returncode == code, result.stderr[-3000:]
    assert "resume with ckpt_path=" in result.stdout
    last = tmp_path / "checkpoints" / "last.ckpt"
    stopped_at = torch.load(last, weights_only=True, mmap=True)["global_step"]
    assert stopped_at >= 5 and max(steps(tmp_path)) == stopped_at, "the checkpoint holds the last finished step"
    result = finish(start(tmp_path, f"ckpt_path={last}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert steps(tmp_path) == reference


@pytest.mark.parametrize("override, refusal", [
    ("data.num_workers=2", "saved with 1 readers (devices x data.num_workers) and this run has 2"),
    ("model.encoder.config_overrides.hidden_size=64", "its encoder has another architecture than model.encoder here "
                                                      "(hidden_size 32 -> 64)"),
])
def test_a_resume_that_cannot_continue_is_refused_before_the_model_loads_writing_nothing(tmp_path, override, refusal):
    """The saved stream positions hold for the readers that saved them (1 worker here), the weights for the
    architecture: the resume stops with the setting to restore, before anything is built, and the run's folder (its
    checkpoint, its .hydra/ config) is left exactly as it was."""
    last = kill_after(tmp_path, 6)  # a checkpoint was taken at step 4
    before = _files(tmp_path)
    result = finish(start(tmp_path, f"ckpt_path={last}", override))
    assert result.returncode == 1 and refusal in result.stderr, result.stderr[-3000:]
    assert "Traceback" not in result.stderr and "Seed set" not in result.stderr + result.stdout
    assert _files(tmp_path) == before


def test_a_moved_run_folder_resumes_into_its_own_checkpoints(tmp_path):
    """Lightning ignores the checkpoint records of another folder: it would write last-v1.ckpt beside the resumed
    last.ckpt and keep the old best checkpoint beside a new one."""
    last = kill_after(tmp_path / "first", 6)  # last.ckpt and the best (step 4)
    moved = tmp_path / "moved"
    shutil.move(tmp_path / "first", moved)
    result = finish(start(moved, f"ckpt_path={moved / 'checkpoints' / last.name}"))
    assert result.returncode == 0, result.stderr[-3000:]
    names = sorted(path.name for path in (moved / "checkpoints").glob("*.ckpt"))
    assert names[0] == "last.ckpt" and len(names) == 2, names  # one last (no last-v1.ckpt), one best (save_top_k=1)
    assert load_checkpoint(moved / "checkpoints" / "last.ckpt")["global_step"] == 24


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``folder``, but the lock (which names its latest holder): its size and modification time."""
    return {str(path.relative_to(folder)): (path.stat().st_size, path.stat().st_mtime_ns)
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != LOCK_FILE}
