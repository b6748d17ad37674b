"""``task=reproduce`` (``make reproduce``): the paper's experiment in miniature, end to end, as ``run.py`` jobs.

Every stage runs the commands a user would type (``python run.py ...``), each job in its own process, up to
``reproduce.parallel`` at a time, its output in ``<output_dir>/logs/<job>.log``:

1. ``base``: ``experiment=mlm_base``, a small BERT pretrained with MLM only (the paper's starting point);
2. ``baselines``: ``task=eval`` (``eval=stsb`` and ``eval=quick``) of the untrained references in :data:`BASELINES`;
3. ``lr``: the miniature run once per ``reproduce.learning_rates`` (seed 0); the best on STS-B dev trains the axes;
4. ``axes``: ``-m experiment=ablation/<axis> experiment/scale=miniature seed=<s>``, one sweep per axis and seed;
5. ``transfer``: ``task=eval eval=quick`` on every run of ``reproduce.transfer_axes``;
6. ``reports``: ``task=report`` per axis;
7. ``doc``: ``reproduce.doc`` (see :mod:`declutr.report.reproduction`).

A job that finished before (its ``<output_dir>/jobs/<job>.json`` exists) is skipped, so a reproduction that was
interrupted continues where it stopped; each job's wall time is kept in that file for the write-up.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from declutr.atomic import write_text_atomically
from declutr.errors import DeclutrConfigError, DeclutrRunError
from declutr.report.collect import find_runs
from declutr.report.reproduction import STAGES, Layout, write_reproduction
from declutr.report.results import OK, read_result

log = logging.getLogger(__name__)
RUN_PY = Path(__file__).resolve().parents[3] / "run.py"

# Untrained references: name -> task=eval overrides (``{base}``: the MLM base's model folder).
BASELINES = {
    "random_init": ["eval.model={base}", "eval.random_init=true"],
    "mlm_base": ["eval.model={base}"],
    "word_embeddings": ["eval.model={base}", "eval.representation=word_embeddings"],
    "minilm": ["eval.model=${minilm_path:}"],
    "minilm_word_embeddings": ["eval.model=${minilm_path:}", "eval.representation=word_embeddings"],
}


@dataclass(frozen=True)
class Job:
    """One ``python run.py <args>`` process; ``name`` is unique within the reproduction (files are named by it)."""

    name: str
    args: list[str]


def run(cfg: DictConfig) -> dict:
    options = cfg.reproduce
    layout = Layout(Path(options.output_dir))
    stages = list(options.stages)
    unknown = [s for s in stages if s not in STAGES] + [b for b in options.baselines if b not in BASELINES]
    if unknown:
        raise DeclutrConfigError(f"reproduce.stages / reproduce.baselines: unknown {unknown}; stages are {STAGES}, "
                                 f"baselines {list(BASELINES)}.")
    for axis in options.axes:
        if not (RUN_PY.parent / "conf" / "experiment" / "ablation" / f"{axis}.yaml").is_file():
            raise DeclutrConfigError(f"reproduce.axes: no experiment=ablation/{axis} (conf/experiment/ablation/).")
    runner = JobRunner(layout, int(options.parallel))
    overrides = [*map(str, options.overrides), f"paths.mlm_base_dir={layout.base}"]
    for stage in stages:
        start = time.perf_counter()
        if stage == "doc":
            path = write_reproduction(layout, Path(options.doc), OmegaConf.to_container(options, resolve=True))
            print(f"Wrote {path}")
        else:
            jobs = _jobs(stage, options, layout, overrides)
            runner.run_all(jobs)
        layout.record_stage(stage, time.perf_counter() - start)
    return {"output_dir": str(layout.root), "doc": str(options.doc)}


def _jobs(stage: str, options: DictConfig, layout: Layout, overrides: list[str]) -> list[Job]:
    evals = list(map(str, options.eval_overrides))
    if stage == "base":
        return [Job("base", ["experiment=mlm_base", *overrides, f"hydra.run.dir={layout.base}"])]
    if stage == "baselines":
        base = layout.base / "model"
        if not (base / "config.json").is_file():
            raise DeclutrRunError(f"The MLM base {base} is missing: run the base stage first (reproduce.stages).")
        return [Job(f"baseline-{name}-{suite}", ["task=eval", f"eval={suite}", f"eval.output_dir={layout.baseline(name)}",
                                                  *(a.format(base=base) for a in BASELINES[name]), *evals])
                for name in options.baselines for suite in ("stsb", "quick")]
    if stage == "lr":
        return [Job(f"lr-{lr:g}", ["experiment=scale/miniature", "seed=0", f"model.optimizer.lr={lr}", *overrides,
                                   f"hydra.run.dir={layout.lr_run(lr)}"]) for lr in options.learning_rates]
    if stage == "axes":
        lr = chosen_lr(layout, options.learning_rates)
        chosen = [f"model.optimizer.lr={lr}"] if lr is not None else []
        return [Job(f"{axis}-seed{seed}", ["-m", f"experiment=ablation/{axis}", "experiment/scale=miniature",
                                           f"seed={seed}", *chosen, *overrides,
                                           f"hydra.sweep.dir={layout.axis(axis) / f'seed{seed}'}"])
                for axis in options.axes for seed in options.seeds]
    if stage == "transfer":
        runs = [run for axis in options.transfer_axes for run in find_runs(layout.axis(axis)) if run.status == OK]
        return [Job(f"transfer-{run.path.relative_to(layout.root).as_posix().replace('/', '-')}",
                    ["task=eval", "eval=quick", f"eval.model={run.path}", *evals]) for run in runs]
    if stage == "reports":
        return [Job(f"report-{axis}", ["task=report", f"sweep_dir={layout.axis(axis)}",
                                       f"report.output_dir={layout.report(axis)}"]) for axis in options.axes]
    raise AssertionError(stage)


def chosen_lr(layout: Layout, learning_rates) -> float | None:
    """The learning rate whose lr-stage run scored best on STS-B dev (``None``: no lr stage ran)."""
    scores = {}
    for lr in learning_rates:
        result = read_result(layout.lr_run(lr))
        if result and result.status == OK and "stsb_dev" in result.after:
            scores[lr] = result.after["stsb_dev"]
    return max(scores, key=scores.get) if scores else None


class JobRunner:
    """Runs jobs ``parallel`` at a time, each ``python run.py <args>`` with its output in ``logs/<job>.log``; a job
    whose record ``jobs/<job>.json`` exists is skipped. Torch threads are split between parallel jobs."""

    def __init__(self, layout: Layout, parallel: int) -> None:
        if parallel < 1:
            raise DeclutrConfigError(f"reproduce.parallel={parallel} must be >= 1.")
        self.layout, self.parallel = layout, parallel

    def run_all(self, jobs: list[Job]) -> None:
        todo = [job for job in jobs if not self.layout.job_record(job.name).is_file()]
        if len(todo) < len(jobs):
            print(f"{len(jobs) - len(todo)} job(s) finished before: skipped.")
        with ThreadPoolExecutor(self.parallel) as pool:
            failures = [name for name in pool.map(self._run, todo) if name]
        if failures:
            raise DeclutrRunError(f"{len(failures)} job(s) failed: {', '.join(failures)}; their logs are in "
                                  f"{self.layout.logs}. Rerun the same command to retry just those.")

    def _run(self, job: Job) -> str | None:
        """Runs ``job``; returns its name if it failed."""
        log_path = self.layout.logs / f"{job.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        args = list(job.args)
        if "-m" not in args and not any(a.startswith("hydra.run.dir=") for a in args):
            args.append(f"hydra.run.dir={self.layout.root / 'hydra' / job.name}")  # never two jobs in one folder
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.parallel)))
        print(f"[{time.strftime('%H:%M:%S')}] start {job.name}", flush=True)
        start = time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as out:
            code = subprocess.call([sys.executable, str(RUN_PY), *args], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=RUN_PY.parent, env=env)
        seconds = time.perf_counter() - start
        print(f"[{time.strftime('%H:%M:%S')}] {'done' if code == 0 else f'FAILED ({code})'} {job.name} "
              f"in {seconds / 60:.1f} min", flush=True)
        if code != 0:
            return job.name
        record = {"job": job.name, "command": " ".join(["python run.py", *args]), "seconds": seconds}
        self.layout.job_record(job.name).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.layout.job_record(job.name), json.dumps(record, indent=2) + "\n")
        return None
