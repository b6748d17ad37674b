"""Span lengths and span texts of the first batches: scalars to every logger, histograms and a table to W&B."""

import csv
import json
from pathlib import Path

import lightning as L
import numpy as np
import pytest
from lightning.pytorch.loggers import CSVLogger

from declutr.callbacks.span_log import TABLE_COLUMNS, SpanLog
from declutr.config.instantiate import build
from declutr.runs.git_commit import git_commit
from declutr.tasks.train import run
from tests.helpers.runs import FAST
from tests.helpers.wandb_log import finished_run_file, history_values, run_tags

SMALL = [*FAST, "trainer.max_steps=4", "evaluate.enabled=false", "data.num_workers=0", "callbacks.span_log.batches=3",
         "callbacks.stsb_dev.every_n_steps=100", "log_documents=false"]


@pytest.fixture
def batch_and_module(make_config, tokenizer):
    """A real batch of the real stream (MLM-masked anchors, A=2, P=2) and the tiny module."""
    cfg = make_config(*SMALL)
    datamodule = build(cfg.data, tokenizer=tokenizer, mlm_probability=0.15)
    batch = next(iter(datamodule.train_dataloader()))
    return batch, build(cfg.model, tokenizer=tokenizer, _convert_="all")


def test_lengths_exclude_special_tokens_and_texts_are_unmasked(batch_and_module, tmp_path, tokenizer):
    batch, module = batch_and_module
    assert (batch["anchor_input_ids"] == tokenizer.mask_token_id).any(), "the anchors of the batch are masked"
    logger = CSVLogger(tmp_path, name="csv")
    trainer = L.Trainer(logger=logger, max_steps=1, enable_progress_bar=False, enable_model_summary=False)
    callback = SpanLog(batches=2, examples=3)
    callback.on_fit_start(trainer, module)
    for _ in range(2):
        callback.on_train_batch_end(trainer, module, None, batch, 0)
    logger.save()
    (row,) = list(csv.DictReader((Path(logger.log_dir) / "metrics.csv").open()))
    anchors = (batch["anchor_attention_mask"].sum(1) - 2).numpy()  # [CLS] ... [SEP]
    positives = (batch["positive_attention_mask"].sum(1) - 2).numpy()
    assert float(row["spans/anchor_tokens_mean"]) == pytest.approx(anchors.mean())
    assert float(row["spans/anchor_tokens_min"]) == anchors.min()
    assert float(row["spans/anchor_tokens_max"]) == anchors.max()
    assert float(row["spans/positive_tokens_mean"]) == pytest.approx(positives.mean())
    assert 32 <= anchors.min() and anchors.max() <= 128 and 32 <= positives.min()
    assert len(callback.rows) == 3 * 2, "3 anchors x P=2 positives"
    for _step, document, anchor, anchor_tokens, positive, positive_tokens in callback.rows:
        assert document in batch["docs"] and "[MASK]" not in anchor and "[CLS]" not in anchor
        assert anchor_tokens in anchors and positive_tokens in positives and positive


def test_without_loggers_nothing_is_collected(batch_and_module):
    batch, module = batch_and_module
    trainer = L.Trainer(logger=False, max_steps=1, enable_progress_bar=False, enable_model_summary=False)
    callback = SpanLog(batches=1)
    callback.on_fit_start(trainer, module)
    callback.on_train_batch_end(trainer, module, None, batch, 0)
    assert not callback.anchor_lengths and not callback.rows


def test_wandb_run_holds_histograms_span_texts_scalars_and_tags(make_config):
    cfg = make_config(*SMALL, "experiment=scale/smoke", "trainer.max_steps=4", "logger=wandb", "report.axis=anchors",
                      "logger.wandb.tags=[mine]", "data.sampler.strategy=subsumed")
    run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    run_file = finished_run_file(run_dir)
    tags = run_tags(run_file)
    assert {"mine", "experiment:scale/smoke", "axis:anchors"} <= tags
    commit = git_commit()  # the sha, when the code is a git checkout (``-dirty`` may change as files are edited)
    assert not commit or any(tag.startswith(f"commit:{commit.removesuffix('-dirty')}") for tag in tags)
    history = history_values(run_file)
    for name, per_batch in (("anchor", 4 * 2), ("positive", 4 * 2 * 2)):  # 4 documents x A=2 (x P=2)
        assert history[f"spans/{name}_tokens/_type"] == ["histogram"]
        assert sum(history[f"spans/{name}_tokens/values"][0]) == 3 * per_batch, "every span of the first 3 batches"
        assert 32 <= history[f"spans/{name}_tokens_mean"][0] <= 128
    assert history["spans/examples/_type"] == ["table-file"]
    (table_file,) = run_file.parent.glob("files/" + history["spans/examples/path"][0])
    table = json.loads(table_file.read_text())
    assert table["columns"] == TABLE_COLUMNS and len(table["data"]) == 4 * 2  # 4 anchors x P=2
    for _, _, anchor, anchor_tokens, positive, positive_tokens in table["data"]:
        assert positive_tokens <= anchor_tokens, "subsumed: each positive lies inside its anchor"
        assert anchor and positive and "[MASK]" not in anchor
    assert np.isfinite(history["spans/anchor_tokens_max"][0])
