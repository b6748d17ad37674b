"""trainer=ddp_cpu through run.py: 2 real processes, one run folder, each document read by one rank."""

import os
import subprocess
import sys

from tests.conftest import DATA_DIR, ROOT, STATE_UNION


def test_two_process_run_writes_one_run_folder_and_splits_the_documents(tmp_path):
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    # A run-folder pattern with microseconds: were it resolved by each rank, there would be two folders.
    args = ["model=tiny", "trainer=ddp_cpu", "trainer.max_steps=3", f"data.files=[{STATE_UNION}]",
            f"paths.data_dir={DATA_DIR}", "evaluate.enabled=false", "callbacks.stsb_dev.every_n_steps=3",
            f"hydra.run.dir={tmp_path}/" + "${now:%H-%M-%S-%f}"]
    result = subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "model" / "config.json").is_file() and (run_dir / "checkpoints" / "last.ckpt").is_file()
    docs = [{line.split("\t")[2] for line in (run_dir / f"documents.rank{r}.tsv").read_text().splitlines()}
            for r in (0, 1)]
    assert len(docs[0]) == len(docs[1]) == 3 * 4, "3 steps x 4 documents on each rank"
    assert not docs[0] & docs[1], "no document is read by both ranks"
