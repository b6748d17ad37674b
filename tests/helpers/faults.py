"""Fault injection for real runs: a callback and an evaluation task a ``run.py`` subprocess loads by its dotted path,
and signals sent to a run's whole process group, as a terminal's Ctrl+C or a scheduler's SIGTERM reach it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L

from declutr.eval.task import EvalTask, Score
from tests.helpers.paths import ROOT


class SlowStopSave(L.Callback):
    """Makes the save of a stopping run (Lightning's SIGTERM flag is up) take ``seconds``, after touching ``marker``:
    time for a test to press Ctrl+C again in the middle of it."""

    def __init__(self, marker: str, seconds: float = 30.0) -> None:
        self.marker, self.seconds = Path(marker), seconds

    def on_save_checkpoint(self, trainer, module, checkpoint) -> None:
        if trainer.received_sigterm:
            self.marker.touch()
            time.sleep(self.seconds)


class SlowEvaluation(EvalTask):
    """An evaluation that touches ``marker``, then takes ``seconds``: a run is then surely scoring its model before
    training (``evaluate.tasks``), whatever the machine's speed."""

    group, fix = "sts", "nothing to fix: a test's task"

    def __init__(self, marker: str, seconds: float = 30.0, name: str = "slow") -> None:
        self.marker, self.seconds, self.name = Path(marker), seconds, name

    def files(self) -> list[Path]:
        return []

    def evaluate(self, embed, max_examples=None, seed=1111) -> list[Score]:
        self.marker.touch()
        time.sleep(self.seconds)
        return [Score(self.name, "spearman", 0.0, self.group)]


def start_run(*args: str, cwd: Path = ROOT) -> subprocess.Popen:
    """``run.py <args>`` in its own process group (its DataLoader workers with it), as a shell starts a job."""
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def signal_group(process: subprocess.Popen, sig: signal.Signals) -> None:
    """``sig`` to the run and its workers, as Ctrl+C in a terminal (or ``scancel``) sends it."""
    os.killpg(process.pid, sig)


def trained_steps(run_dir: Path) -> int:
    """The last step ``documents.tsv`` lists (0 before the first)."""
    path = Path(run_dir) / "documents.tsv"
    lines = path.read_text().splitlines() if path.exists() else []
    return max((int(line.split("\t")[0]) for line in lines), default=0)


def wait_until(condition, process: subprocess.Popen, what: str, timeout: float = 180) -> None:
    """Poll ``condition()`` until true; fail if the run ends first or ``timeout`` passes."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        assert process.poll() is None, f"the run ended before {what}: {process.communicate()[1][-3000:]}"
        time.sleep(0.02)
    raise AssertionError(f"{what}: not reached in {timeout}s")


def finish(process: subprocess.Popen, timeout: float = 300) -> subprocess.CompletedProcess:
    out, err = process.communicate(timeout=timeout)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)
