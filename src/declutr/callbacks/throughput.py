"""Training tokens per second: non-padding anchor and positive tokens over the time of the step itself."""

import time

import lightning as L

from declutr.callbacks.logging_steps import is_logging_step


class TokenThroughput(L.Callback):
    """Logs ``train/tokens_per_s`` on each logging step (over the steps since the last one) and keeps the run's
    mean. The token counts stay tensors until then: reading one every step would be a host sync.

    The clock runs from batch start to batch end (forward, backward, optimizer step), so periodic
    evaluation and checkpoint writes between steps do not distort it; whether data loading keeps up is
    measured by the data-path benchmark instead.
    """

    def __init__(self) -> None:
        self._start = 0.0
        self.tokens = 0
        self.seconds = 0.0
        self._interval = [0, 0.0]  # tokens and seconds since the last logging step

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        elapsed = time.perf_counter() - self._start
        if trainer.global_step > 1:  # the first step pays one-off start-up costs
            self.tokens += batch["num_tokens"]
            self.seconds += elapsed
        self._interval = [self._interval[0] + batch["num_tokens"], self._interval[1] + elapsed]
        if is_logging_step(trainer):
            module.log("train/tokens_per_s", self._interval[0] / self._interval[1], prog_bar=True)
            self._interval = [0, 0.0]

    @property
    def mean_tokens_per_s(self) -> float | None:
        """Mean over the timed steps (every step after the first); ``None`` if none was timed."""
        return float(self.tokens / self.seconds) if self.seconds else None
