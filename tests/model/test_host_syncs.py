"""Host-device synchronisations and collectives per training step, counted on a real Trainer run (model=tiny,
the default callbacks): a step between two logging steps must not gain any. Each is cheap on a CPU, but on a
GPU a sync stalls the launch queue and a collective waits for the slowest rank.

A sync is a tensor method that hands a value to Python (``item``, ``bool``, ``tolist``, ...) called from the
project's code or Lightning's. Not counted: transformers' own (BERT checks ``attention_mask.all()`` in each
forward to skip the mask) and AdamW's step counts, which torch keeps on the host.
"""

import traceback
from pathlib import Path

import lightning as L
import pytest
from torch.overrides import TorchFunctionMode

import declutr.model.module
from declutr.tasks.train import run
from tests.helpers.paths import STATE_UNION

# Tensor methods that copy a value to the host: a device sync on a GPU.
SYNCS = {"__bool__", "item", "__float__", "__int__", "__index__", "tolist", "numpy", "cpu"}
# The project's collectives (each a no-op without a process group, so counted by call) and Lightning's.
PROJECT_COLLECTIVES = ("on_every_rank", "all_reduce_sum", "all_gather_with_grad")
STRATEGY_COLLECTIVES = ("reduce", "reduce_boolean_decision", "broadcast", "barrier", "all_gather")
# What a step costs now (docs/performance.md): the vote whether the optimizer step is kept (a sync and an
# all-reduce), chunked encoding's read of the sequence lengths (anchors, positives), the MLM loss's global
# masked-token count (an all-reduce) and the contrastive loss's gathers of anchors and positives.
SYNCS_PER_STEP = {"distributed.py:on_every_rank": 1, "chunked.py:plan_chunks": 2}
COLLECTIVES_PER_STEP = {"on_every_rank": 1, "all_reduce_sum": 1, "all_gather_with_grad": 2}


class CountSyncs(TorchFunctionMode):
    def __init__(self) -> None:
        super().__init__()
        self.syncs: dict[str, int] = {}

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in SYNCS:
            site = _call_site()
            if site:
                self.syncs[site] = self.syncs.get(site, 0) + 1
        return func(*args, **(kwargs or {}))


def _call_site() -> str | None:
    """``file:function`` of the project's or Lightning's code that asked for the value, or None (see above)."""
    stack = traceback.extract_stack()[:-2]  # without this function and __torch_function__
    if "/torch/optim/" in stack[-1].filename:
        return None
    caller = next(frame for frame in reversed(stack) if "/torch/" not in frame.filename)
    if "/declutr/" in caller.filename or "/lightning/" in caller.filename:
        return f"{Path(caller.filename).name}:{caller.name}"
    return None


class StepCounter(L.Callback):
    """Counts from each step's ``on_train_batch_start`` to the next one's: the step, its logging and every hook."""

    def __init__(self) -> None:
        self.steps: list[dict] = []
        self.collectives: dict[str, int] = {}
        self._mode: CountSyncs | None = None

    def setup(self, trainer, module, stage) -> None:
        strategy = trainer.strategy
        for name in STRATEGY_COLLECTIVES:
            setattr(strategy, name, self._counted(name, getattr(strategy, name)))
        for name in PROJECT_COLLECTIVES:
            setattr(declutr.model.module, name, self._counted(name, getattr(declutr.model.module, name)))

    def _counted(self, name, function):
        def counted(*args, **kwargs):
            self.collectives[name] = self.collectives.get(name, 0) + 1
            return function(*args, **kwargs)
        return counted

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._close(trainer.global_step)
        self.collectives = {}
        self._mode = CountSyncs().__enter__()

    def on_train_end(self, trainer, module) -> None:
        self._close(trainer.global_step)

    def _close(self, step: int) -> None:
        if self._mode is not None:
            self._mode.__exit__(None, None, None)
            self.steps.append({"step": step, "syncs": self._mode.syncs, "collectives": self.collectives})
            self._mode = None


@pytest.fixture
def counted_steps(make_config, monkeypatch):
    for name in PROJECT_COLLECTIVES:  # restored after the test
        monkeypatch.setattr(declutr.model.module, name, getattr(declutr.model.module, name))
    counter = StepCounter()
    monkeypatch.setattr(f"{__name__}.StepCounter", lambda: counter)
    cfg = make_config("model=tiny", f"data.files=[{STATE_UNION}]", "evaluate.enabled=false", "data.num_workers=1",
                      "trainer.max_steps=8", "trainer.log_every_n_steps=100", "callbacks.span_log.batches=1",
                      f"+callbacks.count._target_={__name__}.StepCounter")
    run(cfg)
    return counter.steps


def test_a_step_between_logging_steps_costs_what_it_did(counted_steps):
    steady = counted_steps[2:-1]  # after the first steps (span log, throughput start), before the last (saving)
    assert len(steady) == 5
    for step in steady:
        assert step["syncs"] == SYNCS_PER_STEP, step
        assert step["collectives"] == COLLECTIVES_PER_STEP, step
