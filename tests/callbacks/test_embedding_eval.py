"""Periodic evaluation during a real (tiny) training run: any task's metric logged and used to pick the best checkpoint."""

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from hydra.utils import instantiate
from lightning.pytorch.strategies import FSDPStrategy
from omegaconf import open_dict
from torch.distributed.fsdp import FullyShardedDataParallel as FSDP

from declutr.callbacks.embedding_eval import EmbeddingEvalCallback, evaluate_module
from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError
from declutr.eval.sts import STSBenchmark
from declutr.eval.suite import EvalSuite
from declutr.tasks.train import run
from declutr.tokenizer import load_tokenizer
from tests.helpers.distributed import free_port, make_module
from tests.helpers.paths import DATA_DIR
from tests.helpers.runs import FAST, metrics

STSB_DIR = DATA_DIR / "eval" / "stsb" / "senteval_tok_lower"


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
    evaluated = sorted(int(r["step"]) for r in rows if r.get("val/stsb_spearman"))
    assert evaluated == [2, 4] and len(accuracies) == 2  # logged once per evaluation, never repeated at later steps
    (checkpoint,) = (run_dir / "checkpoints").glob("step*-score*.ckpt")
    assert checkpoint.name.endswith(f"-score{max(accuracies):.2f}.ckpt")  # the best by val/cr_accuracy


def test_missing_dev_set_fails_when_the_callback_is_built(tmp_path):
    with pytest.raises(DeclutrConfigError, match="Periodic evaluation .* STSB skipped: 1 file"):
        EmbeddingEvalCallback({"stsb": STSBenchmark(tmp_path, "dev")})


def _evaluate_sharded(rank: int, world: int, port: int, policy, out: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    module = make_module(1.0)
    module.tokenizer = load_tokenizer(_minilm_path())
    sharded = FSDP(module, auto_wrap_policy=policy, use_orig_params=True, device_id=torch.device("cpu"))
    strategy = FSDPStrategy()
    strategy.model = sharded
    module._trainer = SimpleNamespace(strategy=strategy)  # what evaluate_module reads of Lightning's trainer
    scores = evaluate_module(module, EvalSuite([STSBenchmark(STSB_DIR, "dev")], max_examples=60), 16).by_key()
    torch.save(scores, f"{out}.rank{rank}")
    dist.destroy_process_group()


@pytest.mark.slow
def test_periodic_evaluation_under_fsdp_scores_the_full_model_on_every_rank(make_config, tmp_path):
    """Each rank holds a shard of the parameters; the evaluation must see them all, as one process does."""
    policy = instantiate(make_config("trainer=fsdp", "model=tiny").trainer.strategy).kwargs["auto_wrap_policy"]
    out = str(tmp_path / "scores")
    mp.spawn(_evaluate_sharded, args=(2, free_port(), policy, out), nprocs=2, join=True)
    single_module = make_module(1.0)
    single_module.tokenizer = load_tokenizer(_minilm_path())
    single = evaluate_module(single_module, EvalSuite([STSBenchmark(STSB_DIR, "dev")], max_examples=60), 16)
    for rank in (0, 1):
        sharded = torch.load(f"{out}.rank{rank}", weights_only=True)
        assert sharded["stsb_spearman"] == pytest.approx(single.by_key()["stsb_spearman"], abs=1e-4), rank
