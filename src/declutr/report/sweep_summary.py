"""Hydra callback closing a multirun: which training jobs finished, which failed and why, and how to report.

Failed jobs do not stop a sweep (``task=train`` records them and returns); this callback, configured in
``conf/hydra/default.yaml``, prints them once every job has run and then exits with status 1, so a script or CI
job running the sweep sees that something failed. The report (``task=report``) lists them too.
"""

from __future__ import annotations

import logging
from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from declutr.report.collect import find_runs, status_counts
from declutr.report.results import OK

log = logging.getLogger(__name__)


class SweepSummary(Callback):
    def on_multirun_end(self, config: DictConfig, **kwargs) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        runs = find_runs(sweep_dir) if sweep_dir.is_dir() else []
        if not runs:
            return
        failed = [run for run in runs if run.status != OK]
        jobs = f"{len(runs)} training job" + ("s" if len(runs) != 1 else "")
        lines = [f"Sweep {sweep_dir}: {jobs}, {status_counts(runs)}."]
        for run in failed:
            result = run.result
            reason = result.error if result and result.error else "no results.json (killed?)"
            where = f" (traceback: {run.path / result.traceback_file})" if result and result.traceback_file else ""
            overrides = " ".join(f"{k}={v}" for k, v in run.overrides.items())
            lines.append(f"  job {run.name} [{overrides}]: {reason}{where}")
        lines.append(f"Report: python run.py task=report sweep_dir={sweep_dir}")
        (log.error if failed else log.info)("\n".join(lines))
        if failed:
            raise SystemExit(1)  # after every job ran: the exit status tells scripts and CI that some failed
