"""``task=reproduce`` (``make reproduce``): the paper's experiment in miniature, end to end, as ``run.py`` jobs.

Every stage runs the commands a user would type (``python run.py ...``), each job in its own process, up to
``reproduce.parallel`` at a time, each as soon as the jobs it needs have finished (the baselines run beside the
lr and axes stages), its output in ``<output_dir>/logs/<job>.log``:

1. ``base``: ``reproduce.base.setup``'s jobs (e.g. a vocabulary and the corpus in it), then
   ``experiment=<reproduce.base.experiment>``, a small BERT pretrained with MLM only (the paper's starting point); a
   base folder (``reproduce.base.dir``) whose run ended ok is reused, not retrained, and one stopped partway resumes
   from its ``last.ckpt``;
2. ``baselines``: ``task=eval`` (``eval=stsb``, and ``eval=quick`` when an axis shows transfer) of the untrained
   references in :data:`BASELINES`;
3. ``lr``: the miniature run once per ``reproduce.learning_rates`` (seed 0, ``reproduce.lr_steps`` steps); the best on
   STS-B dev trains the axes;
4. ``axes``: ``-m experiment=ablation/<axis> experiment/scale=miniature seed=<s>``, one sweep per axis and seed;
5. ``transfer``: ``task=eval eval=quick`` on every run of ``reproduce.transfer_axes``;
6. ``reports``: ``task=report`` per axis;
7. ``doc``: ``reproduce.doc`` (see :mod:`declutr.report.reproduction`).

A job that finished before (its ``<output_dir>/jobs/<job>.json`` exists) is skipped, and so is each training run of
an axis sweep that finished before (``skip_finished=true``), so a reproduction that was interrupted continues where it
stopped; each job's wall time is kept in that file for the write-up.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from declutr.config.settings import (
    EVAL_MODEL,
    EVAL_OUTPUT_DIR,
    EVAL_RANDOM_INIT,
    EVAL_REPRESENTATION,
    LR,
    MAX_STEPS,
    MLM_BASE_DIR,
    REPORT_OUTPUT_DIR,
)
from declutr.errors import DeclutrConfigError, DeclutrRunError
from declutr.files.atomic import write_text_atomically
from declutr.report.reproduction import STAGES, Layout, write_reproduction
from declutr.report.results import OK, read_result

RUN_PY = Path(__file__).resolve().parents[3] / "run.py"

# Untrained references: name -> task=eval overrides (``{base}``: the MLM base's model folder).
BASELINES = {
    "random_init": [f"{EVAL_MODEL}={{base}}", f"{EVAL_RANDOM_INIT}=true"],
    "mlm_base": [f"{EVAL_MODEL}={{base}}"],
    "word_embeddings": [f"{EVAL_MODEL}={{base}}", f"{EVAL_REPRESENTATION}=word_embeddings"],
    "minilm": [f"{EVAL_MODEL}=${{minilm_path:}}"],
    "minilm_word_embeddings": [f"{EVAL_MODEL}=${{minilm_path:}}", f"{EVAL_REPRESENTATION}=word_embeddings"],
}


@dataclass(frozen=True)
class Job:
    """One ``python run.py <args>`` process, started once every job named in ``after`` has finished; ``args`` may be
    a function, called then (the axes need the learning rate the lr stage chose). ``name`` names its files. A job
    with ``done`` is skipped when the run in that folder ended ok with a model (the base trained by hand)."""

    name: str
    stage: str
    args: list[str] | Callable[[], list[str]]
    after: tuple[str, ...] = ()
    done: Path | None = None  # a run folder: the job counts as finished when the run there ended ok

    def finished_before(self, layout: Layout) -> bool:
        """Whether an earlier invocation (its job record) or an earlier run by hand (``done``'s result) finished it."""
        if layout.job_record(self.name).is_file():
            return True
        result = read_result(self.done) if self.done is not None else None
        return result is not None and result.status == OK and (self.done / "model").is_dir()


def run(cfg: DictConfig) -> dict:
    options = cfg.reproduce
    layout = Layout(Path(options.output_dir), options.base.dir)
    stages = list(options.stages)
    unknown = [s for s in stages if s not in STAGES] + [b for b in options.baselines if b not in BASELINES]
    if unknown:
        raise DeclutrConfigError(f"reproduce.stages / reproduce.baselines: unknown {unknown}; stages are {STAGES}, "
                                 f"baselines {list(BASELINES)}.")
    sizes = {axis: sweep_size(axis) for axis in options.axes}
    jobs = [job for job in plan(options, layout, sizes) if job.stage in stages]
    names = {job.name for job in jobs}
    jobs = [replace(job, after=tuple(a for a in job.after if a in names)) for job in jobs]  # stages not rerun
    JobRunner(layout, int(options.parallel)).run_all(jobs)
    if "doc" in stages:
        path = write_reproduction(layout, Path(options.doc), OmegaConf.to_container(options, resolve=True))
        print(f"Wrote {path}")
    return {"output_dir": str(layout.root), "doc": str(options.doc)}


def sweep_size(axis: str) -> int:
    """Jobs in one sweep of ``experiment=ablation/<axis>``: the product of its swept values' counts."""
    path = RUN_PY.parent / "conf" / "experiment" / "ablation" / f"{axis}.yaml"
    if not path.is_file():
        raise DeclutrConfigError(f"reproduce.axes: no experiment=ablation/{axis} ({path} does not exist).")
    params = OmegaConf.load(path).hydra.sweeper.params
    return math.prod(len(str(values).split(",")) for values in params.values())


def plan(options: DictConfig, layout: Layout, sizes: dict[str, int]) -> list[Job]:
    """Every job of the reproduction, in the order they should start, with what each waits for."""
    common = [*map(str, options.overrides), f"{MLM_BASE_DIR}={layout.base}"]
    overrides = [*common, *map(str, options.base.overrides)]  # the DeCLUTR runs'
    evals = list(map(str, options.eval_overrides))
    base = layout.base / "model"
    suites = ("stsb", "quick") if options.transfer_axes else ("stsb",)  # transfer only for tables that show it
    setup = [Job(f"base-setup-{k}", "base", list(map(str, args)), (f"base-setup-{k - 1}",) if k else ())
             for k, args in enumerate(options.base.setup)]
    def base_args() -> list[str]:  # a base stopped partway resumes from its last checkpoint
        last = layout.base / "checkpoints" / "last.ckpt"
        return [f"experiment={options.base.experiment}", *common, f"hydra.run.dir={layout.base}",
                *([f"ckpt_path={last}"] if last.is_file() else [])]

    jobs = [*setup, Job("base", "base", base_args, tuple(job.name for job in setup[-1:]), done=layout.base)]
    probe = [f"{MAX_STEPS}={options.lr_steps}"] if options.get("lr_steps") else []  # short lr probes
    lr_jobs = [Job(f"lr-{lr:g}", "lr", ["experiment=scale/miniature", "seed=0", f"{LR}={lr}", *probe,
                                        *overrides, f"hydra.run.dir={layout.lr_run(lr)}"], ("base",))
               for lr in options.learning_rates]
    jobs += lr_jobs
    lr_names = tuple(job.name for job in lr_jobs)
    # Axes first (the objective first of all: its runs wait for transfer too); baselines fill the gaps.
    for axis in options.axes:
        for seed in options.seeds:
            sweep = layout.axis(axis) / f"seed{seed}"

            def args(axis=axis, seed=seed, sweep=sweep) -> list[str]:
                lr = chosen_lr(layout, options.learning_rates)
                return ["-m", f"experiment=ablation/{axis}", "experiment/scale=miniature", f"seed={seed}",
                        *([f"{LR}={lr}"] if lr is not None else []), *overrides,
                        "skip_finished=true", f"hydra.sweep.dir={sweep}"]

            jobs.append(Job(f"{axis}-seed{seed}", "axes", args, ("base", *lr_names)))
            if axis in options.transfer_axes:
                jobs += [Job(f"transfer-{axis}-seed{seed}-{k}", "transfer",
                             ["task=eval", "eval=quick", f"{EVAL_MODEL}={sweep / str(k)}", *evals], (f"{axis}-seed{seed}",))
                         for k in range(sizes[axis])]
    jobs += [Job(f"baseline-{name}-{suite}", "baselines",
                 ["task=eval", f"eval={suite}", f"{EVAL_OUTPUT_DIR}={layout.baseline(name)}",
                  *(a.replace("{base}", str(base)) for a in BASELINES[name]), *evals], ("base",))
             for name in options.baselines for suite in suites]
    for axis in options.axes:
        waits = tuple(job.name for job in jobs if job.name.startswith(f"{axis}-seed")
                      or job.name.startswith(f"transfer-{axis}-"))
        jobs.append(Job(f"report-{axis}", "reports", ["task=report", f"sweep_dir={layout.axis(axis)}",
                                                      f"{REPORT_OUTPUT_DIR}={layout.report(axis)}"], waits))
    return jobs


def chosen_lr(layout: Layout, learning_rates) -> float | None:
    """The learning rate whose lr-stage run scored best on STS-B dev (``None``: no lr stage ran)."""
    scores = {}
    for lr in learning_rates:
        result = read_result(layout.lr_run(lr))
        if result and result.status == OK and "stsb_dev" in result.after:
            scores[lr] = result.after["stsb_dev"]
    return max(scores, key=scores.get) if scores else None


class JobRunner:
    """Runs jobs ``parallel`` at a time, in order, each once the jobs it waits for have finished; each is
    ``python run.py <args>`` with its output in ``logs/<job>.log``. A job whose record ``jobs/<job>.json`` exists
    (it finished in an earlier invocation) is skipped; a job whose prerequisite failed is not started. Torch's
    threads are split between parallel jobs."""

    def __init__(self, layout: Layout, parallel: int) -> None:
        self.layout, self.parallel = layout, parallel

    def run_all(self, jobs: list[Job]) -> None:
        finished = {job.name for job in jobs if job.finished_before(self.layout)}
        if finished:
            print(f"{len(finished)} job(s) finished before: skipped.")
        pending = [job for job in jobs if job.name not in finished]
        failed: set[str] = set()
        running: dict = {}
        with ThreadPoolExecutor(self.parallel) as pool:
            while pending or running:
                for job in list(pending):
                    if any(a in failed for a in job.after):
                        pending.remove(job)
                        failed.add(job.name)
                        print(f"skip {job.name}: a job it needs failed", flush=True)
                    elif all(a in finished for a in job.after) and len(running) < self.parallel:
                        pending.remove(job)
                        running[pool.submit(self._run, job)] = job
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    job = running.pop(future)
                    (finished if future.result() else failed).add(job.name)
        if failed:
            raise DeclutrRunError(f"{len(failed)} job(s) failed or were not started: {', '.join(sorted(failed))}; logs "
                                  f"in {self.layout.logs}. Rerun the same command to retry just those.")

    def _run(self, job: Job) -> bool:
        """Runs ``job``; whether it succeeded."""
        log_path = self.layout.logs / f"{job.name}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        args = job.args() if callable(job.args) else list(job.args)
        if "-m" not in args and not any(a.startswith("hydra.run.dir=") for a in args):
            args.append(f"hydra.run.dir={self.layout.root / 'hydra' / job.name}")  # never two jobs in one folder
        env = dict(os.environ)
        env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // self.parallel)))
        print(f"[{time.strftime('%H:%M:%S')}] start {job.name}", flush=True)
        started, start = time.time(), time.perf_counter()
        with open(log_path, "w", encoding="utf-8") as out:
            code = subprocess.call([sys.executable, str(RUN_PY), *args], stdout=out, stderr=subprocess.STDOUT,
                                   cwd=RUN_PY.parent, env=env)
        seconds = time.perf_counter() - start
        print(f"[{time.strftime('%H:%M:%S')}] {'done' if code == 0 else f'FAILED ({code})'} {job.name} "
              f"in {seconds / 60:.1f} min", flush=True)
        if code != 0:
            return False
        record = {"job": job.name, "stage": job.stage, "command": " ".join(["python run.py", *args]),
                  "seconds": seconds, "started": started, "ended": started + seconds}
        self.layout.job_record(job.name).parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(self.layout.job_record(job.name), json.dumps(record, indent=2) + "\n")
        return True
