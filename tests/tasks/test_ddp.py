"""DDP through run.py: 2 real processes, one run folder, each document read by one rank; started by
Lightning itself (trainer=ddp_cpu) or, as on a cluster, by torchrun on two "nodes" (trainer=multinode);
a non-finite loss on one rank only is skipped by both."""

import json
import os
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest

from declutr.data.stream import SKIPPED_SHORT
from tests.helpers.distributed import free_port
from tests.helpers.paths import DATA_DIR, ROOT, STATE_UNION
from tests.helpers.runs import run_py

pytestmark = pytest.mark.slow  # every test here runs run.py in subprocesses

ENV = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
TINY_RUN = ["model=tiny", "trainer.max_steps=3", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}",
            "evaluate.enabled=false", "callbacks.stsb_dev.every_n_steps=3"]


def assert_one_run_split_between_two_ranks(run_dir: Path) -> None:
    assert (run_dir / "model" / "config.json").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    docs = [{line.split("\t")[2] for line in (run_dir / f"documents.rank{r}.tsv").read_text().splitlines()}
            for r in (0, 1)]
    assert len(docs[0]) == len(docs[1]) == 3 * 4, "3 steps x 4 documents on each rank"
    assert not docs[0] & docs[1], "no document is read by both ranks"


@pytest.mark.parametrize("mlm_weight", [1.0, 0.0], ids=["with-mlm", "contrastive-only"])
def test_two_process_run_writes_one_run_folder_and_splits_the_documents(tmp_path, mlm_weight):
    # A run-folder pattern with microseconds: were it resolved by each rank, there would be two folders.
    # Contrastive only: the MLM head's parameters get no gradient, which DDP refuses unless they are frozen.
    args = [*TINY_RUN, "trainer=ddp_cpu", f"model.mlm_weight={mlm_weight}",
            f"hydra.run.dir={tmp_path}/" + "${now:%H-%M-%S-%f}"]
    result = run_py(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    assert_one_run_split_between_two_ranks(run_dir)


@pytest.mark.parametrize("bound", [["trainer.max_epochs=1", "trainer.max_steps=-1"], ["trainer.max_steps=3"]],
                         ids=["epoch-bounded", "step-bounded"])
def test_a_rank_whose_corpus_ends_in_unusable_documents_keeps_step_with_the_other(tmp_path, bound):
    """Documents go to the ranks in turn: rank 0 reads 4 long documents and the short last one, rank 1 4 long ones.
    Were the short one's skip count sent in a batch of its own, rank 0 would take a step more than rank 1 in each
    epoch and both would wait in a collective forever (the subprocess timeout)."""
    corpus = tmp_path / "corpus.jsonl"
    texts = [path.read_text(encoding="latin-1") for path in sorted(STATE_UNION.glob("*.txt"))[:8]] + ["too short"]
    corpus.write_text("".join(json.dumps({"text": text}) + "\n" for text in texts))
    args = [*TINY_RUN, "trainer=ddp_cpu", f"data.files=[{corpus}]", "data.shuffle=false", "data.batch_size=4",
            *bound, f"hydra.run.dir={tmp_path}/run"]
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=ENV,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["steps"] == (1 if "max_epochs" in bound[0] else 3)
    assert SKIPPED_SHORT in result.stdout.split("Skipped:")[-1], result.stdout[-2000:]  # counted, not lost


class InfiniteLossOnRankZero(L.Callback):
    """Fault injection: rank 0's MLM weight is infinite at batch ``batch``, so only rank 0's loss is not
    finite (the MLM loss is each rank's share; the contrastive loss is the same on every rank)."""

    def __init__(self, batch: int) -> None:
        self.batch = batch

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if trainer.global_rank == 0:
            module.hparams.mlm_weight = float("inf") if batch_idx == self.batch else 1.0


def test_a_non_finite_loss_on_one_rank_is_skipped_by_both(tmp_path):
    """Were rank 0 to skip alone, rank 1 would wait forever in DDP's gradient all-reduce."""
    args = [*TINY_RUN, "trainer=ddp_cpu", "trainer.max_steps=4", f"hydra.run.dir={tmp_path}/run",
            f"+callbacks.poison._target_={__name__}.InfiniteLossOnRankZero", "+callbacks.poison.batch=1"]
    result = run_py(*args)
    assert result.returncode == 0, result.stderr[-3000:]
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["status"] == "ok" and results["nonfinite_steps"] == 1


def test_two_nodes_started_by_torchrun_write_one_run_folder(tmp_path):
    """The documented multi-node launch (docs/scaling.md), with one CPU process per "node" on this machine:
    torchrun starts every rank, so each is told the same run folder."""
    port = free_port()
    args = [*TINY_RUN, "trainer=multinode", "trainer.accelerator=cpu", "trainer.precision=32-true",
            "trainer.devices=1", "trainer.num_nodes=2", f"hydra.run.dir={tmp_path}/run"]
    nodes = [subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--nnodes=2", f"--node_rank={node}",
                               "--nproc_per_node=1", "--master_addr=127.0.0.1", f"--master_port={port}",
                               str(ROOT / "run.py"), *args],
                              cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for node in (0, 1)]
    outputs = [node.communicate(timeout=600)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in outputs[1]
    assert_one_run_split_between_two_ranks(tmp_path / "run")
