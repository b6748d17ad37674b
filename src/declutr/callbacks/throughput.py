"""Training tokens per second: non-padding anchor and positive tokens over the time of the step itself; and the
training's wall-clock time. Both count every attempt of a run that was stopped and resumed."""

import time

import lightning as L

from declutr.model.logging_steps import is_logging_step


class TokenThroughput(L.Callback):
    """Logs ``train/tokens_per_s`` on each logging step (over the steps since the last one) and keeps the run's
    mean. The collator counts each batch's tokens on the host, so counting costs no host sync.

    The clock runs from batch start to batch end (forward, backward, optimizer step), so periodic
    evaluation and checkpoint writes between steps do not distort it; whether data loading keeps up is
    measured by the data-path benchmark instead. The first step of each attempt (the run's, and a resumed run's)
    pays one-off start-up costs and is not timed.

    ``train_seconds`` is the wall-clock time of the training loop (steps, periodic evaluation and checkpoint writes
    included; start-up, evaluation before and after training, and export excluded). The counters are saved in
    checkpoints, so after a resume both cover every attempt up to the checkpoint it resumed from, plus this one:
    the time an attempt spent after its last checkpoint was lost with it, and is not counted.
    """

    def __init__(self) -> None:
        self._start = 0.0
        self.tokens = 0
        self.seconds = 0.0
        self._interval = [0, 0.0]  # tokens and seconds since the last logging step
        self._first_step = 1  # this attempt's first step, not timed
        self._seconds_before = 0.0  # of the training loop, in earlier attempts and (once it ended) this one
        self._loop_start: float | None = None  # when this attempt's training loop started, while it runs
        self.resumed_seconds = 0.0  # training seconds of the earlier attempts, from the checkpoint resumed

    def on_train_start(self, trainer, module) -> None:
        self._first_step = trainer.global_step + 1
        self._loop_start = time.perf_counter()

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        elapsed = time.perf_counter() - self._start
        if trainer.global_step > self._first_step:
            self.tokens += batch["num_tokens"]
            self.seconds += elapsed
        self._interval = [self._interval[0] + batch["num_tokens"], self._interval[1] + elapsed]
        if is_logging_step(trainer):
            module.log("train/tokens_per_s", self._interval[0] / self._interval[1], prog_bar=True)
            self._interval = [0, 0.0]

    def on_train_end(self, trainer, module) -> None:
        self._seconds_before = self.train_seconds
        self._loop_start = None

    @property
    def mean_tokens_per_s(self) -> float | None:
        """Mean over the timed steps (every step after the first of each attempt); ``None`` if none was timed."""
        return float(self.tokens / self.seconds) if self.seconds else None

    @property
    def train_seconds(self) -> float:
        """Seconds of training so far: this attempt's training loop (up to now while it runs), plus the earlier
        attempts' up to the checkpoint this run resumed from."""
        running = time.perf_counter() - self._loop_start if self._loop_start is not None else 0.0
        return self._seconds_before + running

    def state_dict(self) -> dict:
        return {"tokens": self.tokens, "seconds": self.seconds, "train_seconds": self.train_seconds}

    def load_state_dict(self, state_dict: dict) -> None:
        self.tokens, self.seconds = state_dict["tokens"], state_dict["seconds"]
        self._seconds_before = self.resumed_seconds = state_dict["train_seconds"]
