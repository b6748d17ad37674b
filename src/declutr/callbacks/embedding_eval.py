"""Evaluate the encoder's sentence embeddings every N training steps and log them as ``val/<metric>``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import lightning as L

from declutr.embedding import embed_texts


class EmbeddingEvalCallback(L.Callback):
    """Runs ``evaluator(embed_fn) -> {metric: value}`` every ``every_n_steps`` optimizer steps, logging each metric as ``val/<metric>`` so checkpointing can monitor it."""

    def __init__(self, evaluator: Callable, every_n_steps: int = 100, batch_size: int = 64) -> None:
        self.evaluator, self.every_n_steps, self.batch_size = evaluator, every_n_steps, batch_size
        self._last_step = -1

    def evaluate(self, trainer: L.Trainer, module: L.LightningModule) -> dict[str, float]:
        embed = partial(embed_texts, module.body, module.tokenizer, batch_size=self.batch_size)
        metrics = self.evaluator(embed)
        for name, value in metrics.items():
            module.log(f"val/{name}", value, prog_bar=True, rank_zero_only=True)
        self._last_step = trainer.global_step
        return metrics

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        step = trainer.global_step
        if step > 0 and step % self.every_n_steps == 0 and step != self._last_step:
            self.evaluate(trainer, module)
