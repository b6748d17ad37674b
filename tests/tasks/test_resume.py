"""Stopping a real training run (SIGKILL, SIGTERM, SIGINT) and resuming it loses and repeats nothing."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.helpers.paths import DATA_DIR, ROOT, STATE_UNION

pytestmark = pytest.mark.slow  # every test here runs run.py in subprocesses

# 24 steps x 2 documents = 48 of the 59 readable State of the Union files: one epoch, no document twice.
ARGS = ["model=tiny", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}", "data.batch_size=2",
        "data.num_workers=1", "evaluate.enabled=false", "callbacks.stsb_dev.every_n_steps=4", "trainer.max_steps=24"]


def start(run_dir: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *ARGS, f"hydra.run.dir={run_dir}", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def steps(run_dir: Path) -> dict[int, list[str]]:
    """step -> its documents, from documents.tsv. A step redone after a crash was logged twice; its
    later lines (the ones the resumed run trained on) win."""
    path = run_dir / "documents.tsv"
    table: dict[int, list[str]] = {}
    for line in path.read_text().splitlines() if path.exists() else []:
        step, _rank, doc = line.split("\t")
        table.setdefault(int(step), []).append(doc)
    return {step: docs[-2:] for step, docs in table.items()}  # 2 documents per step


def wait_for_step(process: subprocess.Popen, run_dir: Path, step: int, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if max(steps(run_dir), default=0) >= step:
            return
        assert process.poll() is None, process.communicate()[1][-3000:]
        time.sleep(0.02)
    raise AssertionError(f"step {step} not reached in {timeout}s")


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict[int, list[str]]:
    run_dir = tmp_path_factory.mktemp("reference")
    result = finish(start(run_dir))
    assert result.returncode == 0, result.stderr[-3000:]
    table = steps(run_dir)
    assert sorted(table) == list(range(1, 25))
    return table


def test_sigkill_then_resume_reads_every_document_exactly_once(tmp_path, reference):
    process = start(tmp_path)
    wait_for_step(process, tmp_path, 10)  # checkpoints were taken at steps 4 and 8
    process.send_signal(signal.SIGKILL)
    process.wait()
    last = tmp_path / "checkpoints" / "last.ckpt"
    saved_step = torch.load(last, weights_only=True, mmap=True)["global_step"]
    assert saved_step == 8
    result = finish(start(tmp_path, f"ckpt_path={last}"))
    assert result.returncode == 0, result.stderr[-3000:]
    resumed = steps(tmp_path)
    assert resumed == reference, "the same documents at every step as a run never interrupted"
    every_doc = [doc for docs in resumed.values() for doc in docs]
    assert len(every_doc) == len(set(every_doc)) == 48


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 0)])
def test_sigterm_and_sigint_save_a_checkpoint_first(tmp_path, reference, sig, code):
    process = start(tmp_path)
    wait_for_step(process, tmp_path, 5)
    process.send_signal(sig)
    result = finish(process)
    assert result.returncode == code, result.stderr[-3000:]
    assert "resume with ckpt_path=" in result.stdout
    last = tmp_path / "checkpoints" / "last.ckpt"
    stopped_at = torch.load(last, weights_only=True, mmap=True)["global_step"]
    assert stopped_at >= 5 and max(steps(tmp_path)) == stopped_at, "the checkpoint holds the last finished step"
    result = finish(start(tmp_path, f"ckpt_path={last}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert steps(tmp_path) == reference


def test_resuming_with_another_number_of_readers_is_refused_naming_the_setting(tmp_path):
    """The saved stream positions hold for the readers that saved them (1 worker here): a resume with 2 workers
    would re-read and skip documents, so it stops with the setting to restore, and the checkpoint is untouched."""
    process = start(tmp_path)
    wait_for_step(process, tmp_path, 6)  # a checkpoint was taken at step 4
    process.send_signal(signal.SIGKILL)
    process.wait()
    last = tmp_path / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    result = finish(start(tmp_path, f"ckpt_path={last}", "data.num_workers=2"))
    assert result.returncode != 0
    assert "saved with 1 readers (devices x data.num_workers) and this run has 2" in result.stderr
    assert "Traceback" not in result.stderr and last.read_bytes() == before
