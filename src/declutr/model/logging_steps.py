"""Which training steps write their logs out: the only steps worth logging on (the module's metrics, the
callbacks' data and throughput logs)."""

from __future__ import annotations

import lightning as L


def is_logging_step(trainer: L.Trainer) -> bool:
    """Whether Lightning writes this step's logs (every ``trainer.log_every_n_steps`` steps, and at a stop): the
    same on every rank. Logging on other steps is not free: Lightning turns every progress-bar metric into a Python
    number after each step (a host sync on a GPU), and a synced metric costs a collective."""
    return trainer._logger_connector.should_update_logs
