"""What the span sampler actually fed the model: span lengths and a few span texts of the first batches."""

from __future__ import annotations

import lightning as L
import numpy as np
import torch

from declutr.data.collate import Batch
from declutr.report.loggers import log_histograms, log_table
from declutr.tokenizer import special_token_template

TABLE_COLUMNS = ["step", "document", "anchor", "anchor tokens", "positive", "positive tokens"]


class SpanLog(L.Callback):
    """Collects the anchor and positive lengths (tokens, special tokens excluded) of the first ``batches`` training
    batches and logs them once, after the last of those batches (or at the end of a shorter run): min / mean / max
    as ``spans/<anchor|positive>_tokens_<min|mean|max>`` to every logger, and, where the backend takes them
    (:mod:`declutr.report.loggers`: W&B, TensorBoard; MLflow the table only), the length histograms
    ``spans/anchor_tokens`` and ``spans/positive_tokens`` and the table ``spans/examples``: the first batch's
    first ``examples`` anchors with each of their positives, as text. Does nothing for a run without loggers.
    It works after the step, so the throughput callback (listed before it) does not time it.
    """

    def __init__(self, batches: int = 20, examples: int = 4) -> None:
        self.batches, self.examples = batches, examples
        self.anchor_lengths: list[np.ndarray] = []
        self.positive_lengths: list[np.ndarray] = []
        self.rows: list[list] = []
        self._specials = 0
        self._done = False

    def on_fit_start(self, trainer, module) -> None:
        self._specials = sum(len(part) for part in special_token_template(module.tokenizer))
        self._done = not trainer.loggers

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        if self._done:
            return
        self.anchor_lengths.append((batch["anchor_attention_mask"].sum(1) - self._specials).cpu().numpy())
        self.positive_lengths.append((batch["positive_attention_mask"].sum(1) - self._specials).cpu().numpy())
        if not self.rows:
            self.rows = self._example_rows(batch, module.tokenizer, trainer.global_step)
        if len(self.anchor_lengths) >= self.batches:
            self._log(trainer)

    def on_train_end(self, trainer, module) -> None:
        if not self._done and self.anchor_lengths:
            self._log(trainer)

    def _example_rows(self, batch: Batch, tokenizer, step: int) -> list[list]:
        """One row per positive of the batch's first anchors (``TABLE_COLUMNS``); anchors are shown unmasked:
        the MLM labels hold the tokens that masking replaced."""
        ids, mask = batch["anchor_input_ids"], batch["anchor_attention_mask"].bool()
        if "mlm_labels" in batch:
            ids = torch.where(batch["mlm_labels"] != -100, batch["mlm_labels"], ids)
        anchors_per_doc = len(ids) // max(1, len(batch["docs"]))
        num_positives = batch["num_positives"]
        rows = []
        for i in range(min(self.examples, len(ids))):
            anchor = ids[i][mask[i]]
            document = batch["docs"][i // anchors_per_doc] if anchors_per_doc else ""
            for j in range(i * num_positives, (i + 1) * num_positives):
                positive = batch["positive_input_ids"][j][batch["positive_attention_mask"][j].bool()]
                rows.append([step, document, tokenizer.decode(anchor, skip_special_tokens=True),
                             len(anchor) - self._specials, tokenizer.decode(positive, skip_special_tokens=True),
                             len(positive) - self._specials])
        return rows

    def _log(self, trainer) -> None:
        lengths = {"anchor": np.concatenate(self.anchor_lengths), "positive": np.concatenate(self.positive_lengths)}
        lengths = {name: values for name, values in lengths.items() if values.size}  # MLM windows have no positives
        stats = {f"spans/{name}_tokens_{stat}": float(fn(values)) for name, values in lengths.items()
                 for stat, fn in (("min", np.min), ("mean", np.mean), ("max", np.max))}
        step = trainer.global_step
        for logger in trainer.loggers:
            logger.log_metrics(stats, step=step)
            log_histograms(logger, {f"spans/{name}_tokens": values for name, values in lengths.items()}, step)
            log_table(logger, "spans/examples", TABLE_COLUMNS, self.rows, step)
        self._done = True
        self.anchor_lengths, self.positive_lengths = [], []
