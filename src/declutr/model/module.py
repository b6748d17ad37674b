"""``DeCLUTRModule``: encoder -> mean pooling -> NT-Xent over anchors/positives, plus MLM on the anchors."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import lightning as L
import torch
from torch.optim.lr_scheduler import LambdaLR

from declutr.errors import DeclutrConfigError, DeclutrNumericalError
from declutr.model.distributed import all_gather_with_grad, all_reduce_sum, world_size
from declutr.model.encoder import load_masked_lm, mlm_head
from declutr.model.losses import masked_lm_loss, nt_xent_loss
from declutr.model.pooling import mean_pool

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")


def warmup_linear_decay(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier: linear from 0 to 1 over ``warmup_steps``, then linear to 0 at ``total_steps``."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / max(1, warmup_steps)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))

    return factor


class DeCLUTRModule(L.LightningModule):
    """Continued pretraining with ``contrastive_weight * NT-Xent + mlm_weight * MLM``.

    ``encoder`` holds the arguments of :func:`~declutr.model.encoder.load_masked_lm`; ``optimizer`` is a
    partial optimizer (Hydra ``_partial_: true``) taking the parameter groups; ``tokenizer`` is the
    encoder's (used by evaluation callbacks and saved with the model).
    """

    def __init__(
        self,
        encoder: Mapping,
        optimizer: Callable,
        tokenizer=None,
        temperature: float = 0.05,
        contrastive_weight: float = 1.0,
        mlm_weight: float = 1.0,
        warmup_fraction: float = 0.1,
        max_nonfinite_steps: int = 10,
    ) -> None:
        super().__init__()
        if contrastive_weight <= 0 and mlm_weight <= 0:
            raise DeclutrConfigError("model.contrastive_weight and model.mlm_weight are both 0: nothing to train.")
        self.save_hyperparameters(ignore=["optimizer", "tokenizer"])
        self.encoder = load_masked_lm(**encoder)
        self.head = mlm_head(self.encoder)
        self.optimizer_factory = optimizer
        self.tokenizer = tokenizer
        self.nonfinite_steps = 0  # skipped for a non-finite loss or gradient, in all
        self.nonfinite_in_a_row = 0
        self._loss_was_finite = True

    @property
    def body(self) -> torch.nn.Module:
        """The transformer without its MLM head."""
        return self.encoder.base_model

    def embed(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Mean-pooled sentence embeddings ``(batch, hidden)``."""
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return mean_pool(hidden, attention_mask)

    def _anchor_pass(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One forward pass over the (masked) anchors: their embeddings and, with MLM on, the MLM loss
        (normalised by the masked-token count of the global batch)."""
        ids, mask, labels = batch["anchor_input_ids"], batch["anchor_attention_mask"], batch.get("mlm_labels")
        if labels is None or self.hparams.mlm_weight <= 0:
            return self.embed(ids, mask), None
        chosen = labels != -100
        if self.head is not None:
            hidden = self.body(input_ids=ids, attention_mask=mask).last_hidden_state
            logits = self.head(hidden[chosen])
        else:  # unknown head layout: pay for full-vocabulary logits
            out = self.encoder(input_ids=ids, attention_mask=mask, output_hidden_states=True)
            hidden, logits = out.hidden_states[-1], out.logits[chosen]
        total = all_reduce_sum(chosen.sum()).clamp(min=1)
        return mean_pool(hidden, mask), masked_lm_loss(logits, labels[chosen], total)

    def compute_loss(self, batch: dict) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss to backpropagate, {metric: value})`` for a batch of ``n_local`` anchors.

        Under DDP the anchors and mean positives of every rank are gathered, so each anchor meets the
        negatives of the global batch, and the MLM loss is normalised by the global masked-token count.
        Each rank's backward reaches only its own embeddings and masked tokens, giving its share of the
        single-process global-batch gradient; DDP then *averages* over ranks, so the loss to
        backpropagate is the global loss times the world size (the logged metrics are not scaled).
        """
        anchors, mlm = self._anchor_pass(batch)
        loss, logged, metrics = anchors.new_zeros(()), anchors.new_zeros(()), {}
        if self.hparams.contrastive_weight > 0:
            positives = self.embed(batch["positive_input_ids"], batch["positive_attention_mask"])
            positives = positives.view(anchors.shape[0], batch["num_positives"], -1).mean(1)
            contrastive = nt_xent_loss(all_gather_with_grad(anchors), all_gather_with_grad(positives),
                                       self.hparams.temperature)
            loss = loss + self.hparams.contrastive_weight * contrastive
            logged = logged + self.hparams.contrastive_weight * contrastive
            metrics["train/contrastive_loss"] = contrastive
        if mlm is not None:
            loss = loss + self.hparams.mlm_weight * mlm
            metrics["train/mlm_loss"] = all_reduce_sum(mlm)  # this rank's share -> the global-batch value
            logged = logged + self.hparams.mlm_weight * metrics["train/mlm_loss"]
        metrics["train/loss"] = logged
        return loss * world_size(), metrics

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        self._log_data()
        if batch["anchor_input_ids"].shape[0] == 0:
            return None  # the stream's closing example carries only skip counts
        loss, metrics = self.compute_loss(batch)
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name != "train/loss")
        self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        self._loss_was_finite = bool(torch.isfinite(loss))
        if not self._loss_was_finite:
            self._skip_nonfinite_step(f"loss {loss.item()}")
            return None  # no backward, no optimizer step
        return loss

    def on_before_optimizer_step(self, optimizer) -> None:
        # Lightning calls this even after a training_step that returned None: that step is counted already.
        if not self._loss_was_finite:
            return
        # Under 16-mixed the GradScaler already skips (and calibrates on) overflowing steps.
        if not str(self.trainer.precision).startswith("16"):
            if any(p.grad is not None and not torch.isfinite(p.grad).all() for p in self.parameters()):
                optimizer.zero_grad(set_to_none=True)  # parameters without a gradient are left untouched
                self._skip_nonfinite_step("gradient")
                return
        self.nonfinite_in_a_row = 0

    def _skip_nonfinite_step(self, what: str) -> None:
        self.nonfinite_steps += 1
        self.nonfinite_in_a_row += 1
        self.log("train/nonfinite_steps", float(self.nonfinite_steps))
        if self.nonfinite_in_a_row >= self.hparams.max_nonfinite_steps:
            path = Path(self.trainer.default_root_dir) / "checkpoints" / "nonfinite-stop.ckpt"
            self.trainer.save_checkpoint(path)  # the weights are those of the last good step
            raise DeclutrNumericalError(
                f"{self.nonfinite_in_a_row} steps in a row had a non-finite {what} (step {self.global_step}). The last "
                f"good state is saved in {path}. Lower model.optimizer.lr, use trainer.precision=bf16-mixed instead "
                "of 16-mixed, or raise model.max_nonfinite_steps."
            )

    def _log_data(self) -> None:
        """Running totals of the stream's accounting (kept by the datamodule), summed over ranks."""
        accounting = getattr(self.trainer.datamodule, "accounting", None)
        if accounting is None:
            return
        self.log("data/documents", float(accounting.documents), reduce_fx="sum", sync_dist=True)
        for reason, count in accounting.by_reason().items():
            self.log(f"data/skipped_{reason}", float(count), reduce_fx="sum", sync_dist=True)

    def on_train_epoch_start(self) -> None:
        datamodule = getattr(self.trainer, "datamodule", None)
        if hasattr(datamodule, "set_epoch"):
            datamodule.set_epoch(self.current_epoch)

    def configure_optimizers(self):
        decay, no_decay = [], []
        for name, param in self.named_parameters():
            if param.requires_grad:
                (no_decay if any(k in name for k in NO_DECAY) else decay).append(param)
        optimizer = self.optimizer_factory([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}])
        total = self.trainer.estimated_stepping_batches
        if total == float("inf"):
            raise DeclutrConfigError(
                "The corpus is a stream of unknown length, so the LR schedule has no end: set trainer.max_steps."
            )
        schedule = warmup_linear_decay(int(self.hparams.warmup_fraction * total), int(total))
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LambdaLR(optimizer, schedule), "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        # Enough to rebuild the encoder from the checkpoint alone, without the original model folder.
        checkpoint["hf_config"] = self.encoder.config.to_dict()
