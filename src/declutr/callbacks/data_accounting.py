"""The data side of every training step: each epoch's stream set up for that epoch, and the running totals of what
the stream consumed and skipped logged as ``data/*``. Always on in ``task=train`` (not a ``callbacks`` option):
without it every epoch would repeat the first epoch's spans."""

from __future__ import annotations

import lightning as L

from declutr.model.logging_steps import is_logging_step


class DataAccounting(L.Callback):
    """Calls ``datamodule.set_epoch`` at each epoch start, and logs ``data/documents`` and ``data/skipped_<reason>``
    (the datamodule's :class:`~declutr.data.accounting.StreamAccounting`, summed over ranks) every
    ``trainer.log_every_n_steps`` steps: each key is an all-reduce under DDP, so not every step."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        datamodule = getattr(trainer, "datamodule", None)
        if hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(trainer.current_epoch)

    def on_train_batch_start(self, trainer: L.Trainer, module: L.LightningModule, batch, batch_idx: int) -> None:
        accounting = getattr(getattr(trainer, "datamodule", None), "accounting", None)
        if accounting is None or not is_logging_step(trainer):
            return
        module.log("data/documents", float(accounting.documents), reduce_fx="sum", sync_dist=True)
        for reason, count in accounting.logged_totals().items():  # the same keys on every rank
            module.log(f"data/skipped_{reason}", float(count), reduce_fx="sum", sync_dist=True)
