"""Real runs: ``run.py`` in a subprocess, the overrides of a tiny run on the real corpus, a run's metrics."""

import csv
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers.paths import DATA_DIR, ROOT, STATE_UNION

FAST = ["model=tiny", f"data.files=[{STATE_UNION}]", f"paths.data_dir={DATA_DIR}"]


def run_py(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def metrics(run_dir: Path) -> list[dict]:
    """The rows of the run's CSV log (``csv/version_0/metrics.csv``)."""
    with (Path(run_dir) / "csv" / "version_0" / "metrics.csv").open() as handle:
        return list(csv.DictReader(handle))
