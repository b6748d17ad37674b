"""``DeCLUTRModule``: encoder -> mean pooling -> a contrastive loss (``model.loss``: NT-Xent) over anchors/positives,
plus MLM on the anchors."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import lightning as L
import torch
from lightning.pytorch.strategies import FSDPStrategy
from torch._dynamo.exc import TorchDynamoException
from torch.optim.lr_scheduler import LambdaLR

from declutr.config.schema import check_arguments
from declutr.config.settings import CHUNK_SIZE, CONTRASTIVE_WEIGHT, GRAD_CACHE_CHUNK_SIZE, MLM_WEIGHT
from declutr.errors import DeclutrConfigError, DeclutrNumericalError
from declutr.files.checkpoints import load_checkpoint
from declutr.model.chunked import encode_in_chunks, plan_chunks
from declutr.model.distributed import all_gather_with_grad, all_reduce_sum, on_every_rank, world_size
from declutr.model.finite import check_finite_weights
from declutr.model.huggingface import load_masked_lm, mlm_head
from declutr.model.logging_steps import is_logging_step
from declutr.model.losses import ContrastiveLoss, NTXentLoss, masked_lm_loss
from declutr.model.pooling import mean_pool
from declutr.model.resume import TOKENIZER_KEY, tokenizer_record
from declutr.model.schedules import schedule

if TYPE_CHECKING:  # the batch's declaration only: model/ does not depend on data/ at run time
    from declutr.data.collate import Batch

NO_DECAY = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")



def _check_chunk_size(value) -> None:
    """``model.chunk_size``: what the schema cannot express (an integer, ``auto`` or null)."""
    if value != "auto" and value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DeclutrConfigError(f"{CHUNK_SIZE}={value!r} must be a positive number of sequences, null for no chunking, "
                                 "or auto (chunks on CPU, none on GPUs).")


def _grad_cache_chunk_size(grad_cache: Mapping | None) -> int | None:
    """GradCache's chunk size from ``model.grad_cache`` (``None``: GradCache off)."""
    if grad_cache is None:
        return None
    if not isinstance(grad_cache, Mapping) or set(grad_cache) - {"chunk_size"}:
        raise DeclutrConfigError(
            f"model.grad_cache={grad_cache!r} must hold only chunk_size, e.g. model.grad_cache.chunk_size=32 "
            "(null turns GradCache off)."
        )
    check_arguments({GRAD_CACHE_CHUNK_SIZE: grad_cache.get("chunk_size")})
    return grad_cache.get("chunk_size")


class EmbeddedBatch(NamedTuple):
    """What the objective needs of a batch, on this rank: ``anchors`` ``(n_local, hidden)``, ``positives``
    ``(n_local, hidden)`` (each anchor's positives averaged; ``None`` with the contrastive loss off), ``mlm`` (this
    rank's share of the global batch's MLM loss; ``None`` with MLM off), the attention ``masks`` encoded and the
    tokens ``paid`` for them (padding included)."""

    anchors: torch.Tensor
    positives: torch.Tensor | None
    mlm: torch.Tensor | None
    masks: list[torch.Tensor]
    paid: int

    def padding_metrics(self) -> dict[str, torch.Tensor]:
        """The share of padding among the tokens paid (length-sorted chunks), and among those of the unsorted
        batch."""
        real = sum(m.sum() for m in self.masks)
        return {"train/padding_fraction": 1 - real / self.paid,
                "train/padding_fraction_unsorted": 1 - real / sum(m.numel() for m in self.masks)}


class DeCLUTRModule(L.LightningModule):
    """Continued pretraining with ``contrastive_weight * loss + mlm_weight * MLM``.

    ``loss`` is the contrastive loss (``model.loss``, built by Hydra; ``None``: NT-Xent at temperature 0.05, the
    paper's); ``encoder`` holds the arguments of :func:`~declutr.model.huggingface.load_masked_lm`; ``optimizer`` is a
    partial optimizer (Hydra ``_partial_: true``) taking the parameter groups; ``tokenizer`` is the
    encoder's (used by evaluation callbacks and saved with the model). Anchors and positives are each
    encoded in length-sorted chunks of ``chunk_size`` rows (``None``: all at once); ``grad_cache`` =
    ``{"chunk_size": n}`` encodes in chunks of ``n`` (overriding ``chunk_size``) with activations
    recomputed in backward (GradCache); ``compile`` runs the encoder body through ``torch.compile``.
    ``chunk_size="auto"``: chunks of ``CPU_CHUNK_SIZE`` on CPU in float32, where compute follows the padded tokens,
    none on accelerators, where small chunks cost more in kernel launches than their padding saves, nor under
    a bf16 ``trainer.precision`` on CPU, where AMX runs one large matrix product faster than
    several small ones, padding included.
    """

    COMPILE_BACKEND = "inductor"  # torch.compile's backend for model.compile
    # model.chunk_size=auto on CPU: the best of the sizes measured in the README's Performance section.
    CPU_CHUNK_SIZE = 4

    def __init__(
        self,
        encoder: Mapping,
        optimizer: Callable,
        tokenizer=None,
        loss: ContrastiveLoss | None = None,
        contrastive_weight: float = 1.0,
        mlm_weight: float = 1.0,
        warmup_fraction: float = 0.1,
        schedule: str = "linear",
        schedule_ratio: float = 32.0,
        scale_fix: bool = True,
        max_nonfinite_steps: int = 10,
        chunk_size: int | str | None = None,
        grad_cache: Mapping | None = None,
        compile: bool = False,
    ) -> None:
        super().__init__()
        check_arguments({CONTRASTIVE_WEIGHT: contrastive_weight, MLM_WEIGHT: mlm_weight})  # the schema's ranges
        cache_size = _grad_cache_chunk_size(grad_cache)
        _check_chunk_size(chunk_size)
        self.chunk_size = cache_size if cache_size is not None else chunk_size
        self.recompute = cache_size is not None  # GradCache
        self.save_hyperparameters(ignore=["optimizer", "tokenizer", "loss"], logger=False)  # loggers: the whole config
        self.loss = NTXentLoss() if loss is None else loss
        self.hparams["loss"] = self.loss.config()  # its settings, not the module: checkpoints hold plain values
        self.encoder = load_masked_lm(**encoder)
        self.head = mlm_head(self.encoder)
        if mlm_weight <= 0:
            self._freeze_mlm_head()
        self.optimizer_factory = optimizer
        self.tokenizer = tokenizer
        self.nonfinite_steps = 0  # skipped for a non-finite loss or gradient, in all
        self.nonfinite_in_a_row = 0
        self._loss_finite: torch.Tensor | None = None  # every loss since the last optimizer step, on this rank
        # A compiled forward of the body for the training step only: the body module itself (and so the
        # state dict, exports and the evaluation callbacks) stays eager.
        self._compiled_body = torch.compile(self.body.forward, backend=self.COMPILE_BACKEND) if compile else None

    def _freeze_mlm_head(self) -> None:
        """Without MLM the head's own parameters get no gradient: freeze them, so DDP does not wait for them
        (it fails on parameters unused by the loss) and AdamW's weight decay does not shrink them. Weights
        shared with the body (tied word embeddings) stay trainable."""
        body = {id(p) for p in self.body.parameters()}
        for param in self.encoder.parameters():
            if id(param) not in body:
                param.requires_grad_(False)

    @property
    def body(self) -> torch.nn.Module:
        """The transformer without its MLM head."""
        return self.encoder.base_model

    def _hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The body's last hidden layer ``(rows, seq, hidden)``, compiled when ``model.compile`` is on."""
        if self._compiled_body is not None:
            try:
                return self._compiled_body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            except TorchDynamoException as err:  # compilation is lazy: a missing compiler shows up here
                self._compiled_body = None
                cause = getattr(err, "inner_exception", err)  # the backend's own error, if it was the backend
                reason = " ".join(str(cause).split())[:500]
                warnings.warn(  # noqa: B028 (default stacklevel: the warning points here, not into Lightning)
                    f"model.compile=true failed ({type(cause).__name__}: {reason}); training continues "
                    "uncompiled. Set model.compile=false to skip the attempt.")
        return self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state

    def _encode_chunk(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None,
        total: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One chunk's mean-pooled embeddings ``(rows, hidden)`` and, given MLM ``labels``, its share of the
        MLM loss (summed over its masked tokens, divided by ``total``, the global masked-token count)."""
        if labels is None:
            return mean_pool(self._hidden(input_ids, attention_mask), attention_mask), None
        chosen = labels != -100
        if self.head is not None:  # vocabulary logits only at the masked positions
            hidden = self._hidden(input_ids, attention_mask)
            logits = self.head(hidden[chosen])
        else:  # unknown head layout: pay for full-vocabulary logits
            out = self.encoder(input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True)
            hidden, logits = out.hidden_states[-1], out.logits[chosen]
        return mean_pool(hidden, attention_mask), masked_lm_loss(logits, labels[chosen], total)

    def rows_per_chunk(self, device: torch.device) -> int | None:
        """The chunk size in force on ``device`` (``model.chunk_size=auto`` resolved; ``None``: no chunks)."""
        if self.chunk_size == "auto":
            bf16 = self._trainer is not None and str(self._trainer.precision).startswith("bf16")
            return self.CPU_CHUNK_SIZE if device.type == "cpu" and not bf16 else None
        return self.chunk_size

    def embed_tokens(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        """``(embeddings (rows, hidden) in row order, MLM loss or None, tokens paid)`` for a padded group.

        Rows are encoded in length-sorted chunks of ``chunk_size`` (see :mod:`declutr.model.chunked`), under
        activation recomputation with GradCache on. The MLM loss (``labels`` given) is normalised by the
        masked-token count of the global batch, all-reduced here, once, outside any recomputed chunk.
        """
        plan = plan_chunks(attention_mask, self.rows_per_chunk(attention_mask.device))
        total = None if labels is None else all_reduce_sum((labels != -100).sum()).clamp(min=1)
        fn = partial(self._encode_chunk, total=total)
        embeddings, mlm = encode_in_chunks(fn, plan, input_ids, attention_mask, labels, recompute=self.recompute)
        return embeddings, mlm, plan.paid

    def compute_loss(self, batch: Batch, metrics: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``(loss to backpropagate, {metric: value})`` for a batch of ``n_local`` anchors (``metrics=False``: no
        metrics, and none of the collective the logged MLM loss needs): :meth:`embed_batch`, then :meth:`objective`.
        Padding metrics (``train/padding_fraction*``) are this rank's."""
        embedded = self.embed_batch(batch)
        loss, values = self.objective(embedded, metrics)
        return loss, (values | embedded.padding_metrics()) if metrics else values

    def embed_batch(self, batch: Batch) -> EmbeddedBatch:
        """The anchors' embeddings and MLM loss (one forward pass of the masked anchors), then, with the contrastive
        loss on, the positives' embeddings averaged per anchor. Chunking (and GradCache) changes how the embeddings
        are computed, never which pairs and negatives the loss sees."""
        labels = batch.get("mlm_labels") if self.hparams.mlm_weight > 0 else None
        anchor_mask = batch["anchor_attention_mask"]
        anchors, mlm, paid = self.embed_tokens(batch["anchor_input_ids"], anchor_mask, labels)
        if self.hparams.contrastive_weight <= 0:
            return EmbeddedBatch(anchors, None, mlm, [anchor_mask], paid)
        positive_mask = batch["positive_attention_mask"]
        positives, _, positives_paid = self.embed_tokens(batch["positive_input_ids"], positive_mask)
        positives = positives.view(anchors.shape[0], batch["num_positives"], -1).mean(1)
        return EmbeddedBatch(anchors, positives, mlm, [anchor_mask, positive_mask], paid + positives_paid)

    def objective(self, embedded: EmbeddedBatch, metrics: bool = True) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """``L = contrastive_weight * loss(gather(anchors), gather(positives)) * scale + mlm_weight * MLM``, times the
        world size, and (``metrics``) the logged losses.

        Under DDP the anchors and mean positives of every rank are gathered, so each anchor meets the negatives of
        the global batch, and the MLM loss is normalised by the global masked-token count. Each rank's backward
        reaches only its own embeddings and masked tokens, giving its share of the single-process global-batch
        gradient; DDP then *averages* over ranks, so the loss to backpropagate is the global loss times the world
        size (the logged metrics are not scaled). ``scale`` is 1, or with ``scale_fix`` off 1 / world size, as in the
        paper's multi-GPU runs (their contrastive gradient was 1/world size of the single-process one): only for
        comparisons with the paper's numbers.
        """
        weight_c, weight_m = self.hparams.contrastive_weight, self.hparams.mlm_weight
        loss, logged, values = embedded.anchors.new_zeros(()), embedded.anchors.new_zeros(()), {}
        if embedded.positives is not None:
            contrastive = self.loss(all_gather_with_grad(embedded.anchors), all_gather_with_grad(embedded.positives))
            scale = 1.0 if self.hparams.scale_fix else 1.0 / world_size()  # (undone by the world size below)
            loss = loss + weight_c * contrastive * scale
            logged = logged + weight_c * contrastive
            values["train/contrastive_loss"] = contrastive
        if embedded.mlm is not None:
            loss = loss + weight_m * embedded.mlm
        if not metrics:
            return loss * world_size(), {}
        if embedded.mlm is not None:
            values["train/mlm_loss"] = all_reduce_sum(embedded.mlm)  # this rank's share -> the global-batch value
            logged = logged + weight_m * values["train/mlm_loss"]
        values["train/loss"] = logged
        return loss * world_size(), values

    def training_step(self, batch: Batch, batch_idx: int) -> torch.Tensor | None:
        if batch["anchor_input_ids"].shape[0] == 0:
            return None  # a reader with no usable document sends only its skip counts
        logging = is_logging_step(self.trainer)
        loss, metrics = self.compute_loss(batch, metrics=logging)
        for name, value in metrics.items():
            self.log(name, value, prog_bar=name.endswith("_loss") and name != "train/loss")
        if logging:
            self.log("train/lr", self.optimizers().param_groups[0]["lr"])
        # Kept on the device (no host sync) until the optimizer step, which is dropped if any micro-batch's
        # loss was not finite. The loss is returned even then: Lightning refuses a skipped training_step under
        # DDP and FSDP, so the step is dropped after the backward instead.
        finite = torch.isfinite(loss.detach())
        self._loss_finite = finite if self._loss_finite is None else self._loss_finite & finite
        return loss

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """Clips as Lightning does (by norm under FSDP too, which Lightning refuses: lightning#19235), then keeps
        the optimizer step only if every micro-batch's loss and the gradient norm were finite on every rank: one
        vote, so one collective and one host sync per optimizer step. The norm is the one clipping computes
        (one fused reduction; without clipping it is computed alone); under DDP and FSDP it covers the whole
        gradient, the same on every rank. Under 16-mixed the GradScaler already skips (and calibrates on)
        overflowing gradients, so only the loss is checked."""
        norm = self._clip_and_norm(optimizer, gradient_clip_val, gradient_clip_algorithm)
        loss_finite = self._loss_finite if self._loss_finite is not None else torch.ones((), dtype=torch.bool,
                                                                                          device=self.device)
        self._loss_finite = None
        finite = loss_finite if str(self.trainer.precision).startswith("16") else loss_finite & torch.isfinite(norm)
        if on_every_rank(finite):
            self.nonfinite_in_a_row = 0
            return
        optimizer.zero_grad(set_to_none=True)  # the optimizer (and 16-mixed's GradScaler) then change nothing
        self._skip_nonfinite_step("gradient" if on_every_rank(loss_finite) else "loss")

    def _clip_and_norm(self, optimizer, clip_val, algorithm) -> torch.Tensor:
        """Clips the gradients (``trainer.gradient_clip_val`` / ``_algorithm``) and returns their total L2 norm
        before clipping."""
        by_norm = algorithm in (None, "norm")
        if isinstance(self.trainer.strategy, FSDPStrategy):  # only the sharded root sees every rank's shard
            norm = self.trainer.strategy.model.clip_grad_norm_(clip_val if clip_val and by_norm else float("inf"))
        else:
            params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
            if not params:
                return torch.zeros((), device=self.device)
            if clip_val and by_norm:
                return torch.nn.utils.clip_grad_norm_(params, clip_val)
            norm = torch.nn.utils.get_total_norm([p.grad for p in params])
        if clip_val and not by_norm:
            self.clip_gradients(optimizer, clip_val, algorithm)  # by value, after the norm: clamping hides an inf
        return norm

    def _skip_nonfinite_step(self, what: str) -> None:
        self.nonfinite_steps += 1
        self.nonfinite_in_a_row += 1
        self.log("train/nonfinite_steps", float(self.nonfinite_steps))
        if self.nonfinite_in_a_row >= self.hparams.max_nonfinite_steps:
            # Every step of the stretch started from the same weights (each was skipped), and none gave anything
            # finite: those weights are not a good state, nor is a checkpoint saved from them.
            first = self.global_step + 1 - self.nonfinite_in_a_row  # the step whose weights began the stretch
            good = self._checkpoint_before(first)
            error = DeclutrNumericalError(
                f"{self.nonfinite_in_a_row} steps in a row had a non-finite {what} (steps {first + 1}-"
                f"{self.global_step + 1}), all from the weights of step {first}: they are not kept. "
                + (f"The last good checkpoint is {good}. " if good else "No checkpoint was saved before them. ")
                + "Lower model.optimizer.lr, use trainer.precision=bf16-mixed instead of 16-mixed, or raise "
                "model.max_nonfinite_steps.")
            error.step, error.checkpoint = self.global_step, good
            raise error

    def _checkpoint_before(self, step: int) -> str | None:
        """The newest checkpoint in the run's checkpoint folder saved from the weights of a step before ``step``."""
        folder = getattr(self.trainer.checkpoint_callback, "dirpath", None)
        paths = sorted(Path(folder).glob("*.ckpt")) if folder and Path(folder).is_dir() else []
        saved = [(load_checkpoint(path)["global_step"], str(path)) for path in paths]
        older = [item for item in saved if item[0] < step]
        return max(older)[1] if older else None

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
        factor = schedule(self.hparams.schedule, int(total), self.hparams.warmup_fraction, self.hparams.schedule_ratio)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": LambdaLR(optimizer, factor), "interval": "step"}}

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        """Refuses to save non-finite weights (a checkpoint is a state to resume from or export), and records what
        rebuilds the encoder without its original folder and what a resume must agree on."""
        check_finite_weights(self, f"Checkpoint at step {self.global_step} not written", step=self.global_step)
        checkpoint["hf_config"] = self.encoder.config.to_dict()
        if self.tokenizer is not None:
            checkpoint[TOKENIZER_KEY] = tokenizer_record(self.tokenizer)
