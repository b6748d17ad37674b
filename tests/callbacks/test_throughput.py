"""Training throughput: the mean over every step after the first, and a one-step run that says it was not measured;
its counters and the training time, carried over a resume."""

import json
from pathlib import Path
from types import SimpleNamespace

import torch

from declutr.callbacks.throughput import TokenThroughput
from declutr.tasks.train import run
from tests.helpers.runs import FAST

ONE_STEP = [*FAST, "trainer.max_steps=1", "evaluate.enabled=false", "data.num_workers=0", "log_documents=false"]


def test_a_one_step_run_says_throughput_was_not_measured(make_config, capsys):
    cfg = make_config(*ONE_STEP)
    run(cfg)
    out = capsys.readouterr().out
    assert "Training throughput: not measured" in out and "nan" not in out
    assert json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())["tokens_per_s"] is None


def test_later_steps_are_timed(make_config, capsys):
    cfg = make_config(*ONE_STEP, "trainer.max_steps=3")
    run(cfg)
    assert "Training throughput: " in capsys.readouterr().out
    assert json.loads((Path(cfg.paths.output_dir) / "results.json").read_text())["tokens_per_s"] > 0


def _trainer(step: int) -> SimpleNamespace:
    """What the callback reads of a trainer: the step reached, and no logging."""
    return SimpleNamespace(global_step=step, _logger_connector=SimpleNamespace(should_update_logs=False))


def _attempt(callback: TokenThroughput, first: int, last: int) -> None:
    """Steps ``first`` to ``last`` of 100 tokens each, one attempt of a run."""
    callback.on_train_start(_trainer(first - 1), None)
    for step in range(first, last + 1):
        callback.on_train_batch_start(_trainer(step - 1), None, None, 0)
        callback.on_train_batch_end(_trainer(step), None, None, {"num_tokens": 100}, 0)


def test_a_resumed_run_counts_every_attempt_but_never_the_first_step_of_one(tmp_path, monkeypatch):
    """Steps 1-8, a checkpoint, a kill at step 10, then steps 9-12 resumed from the checkpoint: the tokens and step
    seconds of steps 2-8 and 10-12, and the training time of both attempts up to the checkpoint and the end."""
    clock = iter(range(1000))  # one second a reading
    monkeypatch.setattr("declutr.callbacks.throughput.time", SimpleNamespace(perf_counter=lambda: float(next(clock))))
    killed = TokenThroughput()
    _attempt(killed, 1, 8)
    torch.save(killed.state_dict(), tmp_path / "state.pt")  # as in a checkpoint, read back as a resume reads it
    saved = torch.load(tmp_path / "state.pt", weights_only=True)
    _attempt(killed, 9, 10)  # lost with the kill
    resumed = TokenThroughput()
    resumed.load_state_dict(saved)
    _attempt(resumed, 9, 12)
    resumed.on_train_end(_trainer(12), None)
    assert (resumed.tokens, resumed.seconds, resumed.mean_tokens_per_s) == (1000, 10.0, 100.0)
    # The first attempt's loop: from reading 0 to the checkpoint's, 17 (two readings a step); the resumed one's: from
    # its start to its end, 9 readings later (8 for its 4 steps).
    assert (saved["train_seconds"], resumed.train_seconds) == (17.0, 17.0 + 9.0)
