"""Periodic evaluation during a real (tiny) training run: any task's metric logged and used to pick the best checkpoint."""

from pathlib import Path

import pytest
from omegaconf import open_dict

from declutr.callbacks.embedding_eval import EmbeddingEvalCallback
from declutr.errors import DeclutrConfigError
from declutr.eval.sts import STSBenchmark
from declutr.tasks.train import run
from tests.helpers.runs import FAST, metrics


def test_callback_logs_every_task_and_the_checkpoint_follows_the_chosen_metric(make_config):
    cfg = make_config(*FAST, "debug=fast", "evaluate.enabled=false", "data.num_workers=0",
                      "callbacks.stsb_dev.every_n_steps=2", "callbacks.stsb_dev.max_examples=100",
                      "callbacks.model_checkpoint.monitor=val/cr_accuracy")
    with open_dict(cfg):  # add a transfer task next to STS-B dev, as a user would in conf/callbacks/
        cfg.callbacks.stsb_dev.tasks.cr = {
            "_target_": "declutr.eval.transfer.BinaryClassification", "name": "CR",
            "directory": "${paths.data_dir}/eval/senteval/CR", "positive": "custrev.pos", "negative": "custrev.neg",
            "protocol": {"_target_": "declutr.eval.classifier.Protocol", "kfold": 2, "c_values": [1.0]}}
    run(cfg)
    run_dir = Path(cfg.paths.output_dir)
    rows = metrics(run_dir)
    accuracies = [float(r["val/cr_accuracy"]) for r in rows if r.get("val/cr_accuracy")]
    assert len(accuracies) >= 2 and any(r.get("val/stsb_spearman") for r in rows)  # evaluated at steps 2 and 4
    (checkpoint,) = (run_dir / "checkpoints").glob("step*-score*.ckpt")
    assert checkpoint.name.endswith(f"-score{max(accuracies):.2f}.ckpt")  # the best by val/cr_accuracy


def test_missing_dev_set_fails_when_the_callback_is_built(tmp_path):
    with pytest.raises(DeclutrConfigError, match="Periodic evaluation .* STSB skipped: 1 file"):
        EmbeddingEvalCallback({"stsb": STSBenchmark(tmp_path, "dev")})
