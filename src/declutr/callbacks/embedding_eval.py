"""Evaluate the encoder's sentence embeddings every N training steps and log them as ``val/<metric>``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch.distributed.fsdp import FullStateDictConfig, StateDictType
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP
from transformers import AutoModelForMaskedLM

from declutr.errors import DeclutrConfigError
from declutr.eval.suite import EvalSuite, SuiteResult
from declutr.eval.task import EvalTask
from declutr.model.embedding import embed_texts


class EmbeddingEvalCallback(L.Callback):
    """Runs evaluation tasks (the same classes as ``task=eval``, usually a cheap subset such as STS-B dev)
    every ``every_n_steps`` optimizer steps and logs each score as ``val/<key>`` (e.g. ``val/stsb_spearman``),
    for checkpoint selection on any of them. Missing files stop the run when the callback is built."""

    def __init__(self, tasks: Mapping[str, EvalTask] | Sequence[EvalTask], every_n_steps: int = 100,
                 batch_size: int = 64, max_examples: int | None = None, seed: int = 1111) -> None:
        self.suite = EvalSuite(tasks, max_examples, seed)
        skipped = self.suite.skipped()
        if skipped:  # during training a missing dev set is an error, found before anything runs
            raise DeclutrConfigError("Periodic evaluation (callbacks.stsb_dev): " + " ".join(s.message() for s in skipped))
        self.every_n_steps, self.batch_size = every_n_steps, batch_size
        self._last_step = -1

    def evaluate(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, float]:
        """Scores now; each goes to the loggers once, at this step (``module.log`` from a batch hook would repeat
        the last value at every later logged step), and to the trainer's metrics for checkpointing and the
        progress bar."""
        result = evaluate_module(module, self.suite, self.batch_size)
        for score in result.scores:
            module.log(f"val/{score.key}", score.value, prog_bar=score.main, logger=False, rank_zero_only=True)
        for logger in trainer.loggers:
            logger.log_metrics({f"val/{score.key}": score.value for score in result.scores}, step=trainer.global_step)
        self._last_step = trainer.global_step
        return result.by_key()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self.evaluate(trainer, module)


def evaluate_module(module: L.LightningModule, suite: EvalSuite, batch_size: int) -> SuiteResult:
    """``suite`` run on the mean-pooled embeddings of the module's encoder (``module.body``, ``module.tokenizer``):
    the one evaluation path of training, for the periodic scores here and the scores before and after training.
    Under FSDP every rank must call it (it gathers the sharded parameters)."""
    return suite.run(partial(embed_texts, _full_body(module), module.tokenizer, batch_size=batch_size), progress=False)


def _full_body(module: L.LightningModule) -> torch.nn.Module:
    """``module.body``, or under FSDP an unsharded copy of it. FSDP leaves each rank a flat shard of the parameters,
    and the body called directly (not through the sharded root) would run on those shards; so every rank gathers
    the full state dict (a collective) into a fresh copy of the encoder, used for this evaluation only."""
    strategy = getattr(getattr(module, "_trainer", None), "strategy", None)
    if not isinstance(strategy, FSDPStrategy):
        return module.body
    root = strategy.model  # the sharded module Lightning trains
    options = FullStateDictConfig(offload_to_cpu=module.device.type != "cpu", rank0_only=False)  # (CPU to CPU crashes)
    with FSDP.state_dict_type(root, StateDictType.FULL_STATE_DICT, options):
        state = root.state_dict()
    copy = AutoModelForMaskedLM.from_config(module.encoder.config)
    copy.load_state_dict({k.removeprefix("encoder."): v for k, v in state.items() if k.startswith("encoder.")})
    return copy.base_model.to(module.device)
