"""A training run's outcome written to ``<run>/results.json`` (:mod:`declutr.report.results`), whether it succeeded or
failed, with what identifies the run (:func:`declutr.runs.context.run_context`), and its W&B run closed.

In a multirun a failed job is recorded and returns instead of raising, so the sweep's other jobs still run; the
sweep's end lists the failures and exits non-zero (:class:`declutr.report.sweep_summary.SweepSummary`). A single
run raises as before (a configuration error leaves no run folder: ``run.py`` removes it). An interrupted job
(Ctrl+C, SIGTERM) is recorded and stops the whole sweep.

With ``skip_finished=true`` a run whose folder already holds a finished run with the same key settings is not
trained again: rerunning a stopped sweep with the same command trains only the jobs that did not finish.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig

from declutr.callbacks.interrupt import Interrupts
from declutr.errors import DeclutrConfigError, DeclutrInterrupted, DeclutrNumericalError
from declutr.report.loggers import close_wandb_run
from declutr.report.results import (
    FAILED,
    INTERRUPTED,
    OK,
    STOPPED_NONFINITE,
    RunResult,
    read_result,
    write_failure,
    write_result,
)
from declutr.runs.context import multirun, run_context

log = logging.getLogger(__name__)


def record_run(cfg: DictConfig, train: Callable[[DictConfig, dict], dict]) -> dict:
    """``train(cfg, context)`` (``context``: :func:`run_context`, plus ``interrupts``, the run's
    :class:`~declutr.callbacks.interrupt.Interrupts`), its outcome written to ``results.json`` by global rank zero
    whichever way it ends (:data:`declutr.report.results.STATUSES`), its W&B run finished either way. ``train``
    returns an outcome dict with ``before``, ``after``, ``steps``, ``nonfinite_steps``, ``tokens_per_s`` and
    ``earlier_seconds`` (the training time of the attempts before a resume, which ``seconds`` adds to this one's wall
    time); an empty dict on the other ranks. An interrupted run is recorded, then raises
    :class:`~declutr.errors.DeclutrInterrupted` even in a sweep: Ctrl+C stops the sweep, not just its current job.
    Signals are ignored while a record is written."""
    start = time.perf_counter()
    context = run_context(cfg)
    if cfg.get("skip_finished"):
        finished = finished_run(cfg.paths.output_dir, context["settings"])
        if finished is not None:
            log.info("%s already holds this finished run (results.json): skipped, as skip_finished=true asks.",
                     cfg.paths.output_dir)
            return {"objective": finished.after.get("stsb_dev"), "before": finished.before, "after": finished.after}
    with Interrupts() as interrupts:
        try:
            outcome = train(cfg, {**context, "interrupts": interrupts})
        except DeclutrInterrupted as stop:
            with interrupts.ignored():  # a third Ctrl+C cannot cut the record short
                _record_interrupt(cfg, stop, time.perf_counter() - start, context)
            raise
        except Exception as err:
            with interrupts.ignored():
                return _record_failure(cfg, err, time.perf_counter() - start, context)
        with interrupts.ignored():  # the model is exported: its record is written whole, Ctrl+C or not
            close_wandb_run(exit_code=0, status=OK)
            if outcome:  # global rank zero
                write_result(cfg.paths.output_dir, RunResult(
                    status=OK, before=outcome["before"], after=outcome["after"], steps=outcome["steps"],
                    nonfinite_steps=outcome["nonfinite_steps"], tokens_per_s=outcome["tokens_per_s"],
                    seconds=time.perf_counter() - start + outcome["earlier_seconds"], **context))
    return outcome


def _record_interrupt(cfg: DictConfig, stop: DeclutrInterrupted, seconds: float, context: dict) -> None:
    close_wandb_run(exit_code=stop.exit_code, status=INTERRUPTED)
    if rank_zero_only.rank == 0:
        write_result(cfg.paths.output_dir, RunResult(status=INTERRUPTED, steps=stop.step, checkpoint=stop.checkpoint,
                                                     seconds=seconds, error=f"{stop}", **context))
        if multirun():
            log.error("Sweep stopped: job %s was %s (recorded in %s). The jobs after it did not run; to finish the "
                      "sweep, run the same command again with skip_finished=true.", HydraConfig.get().job.num, stop,
                      cfg.paths.output_dir)


def _record_failure(cfg: DictConfig, err: Exception, seconds: float, context: dict) -> dict:
    """A run that failed (``failed``) or stopped on non-finite values (``stopped_nonfinite``): recorded, then raised
    again in a single run; in a multirun the sweep goes on (its summary lists the failures)."""
    status = STOPPED_NONFINITE if isinstance(err, DeclutrNumericalError) else FAILED
    close_wandb_run(exit_code=1, status=status)
    in_sweep = multirun()
    # A single run's configuration error leaves no folder behind (run.py removes it): nothing is written then.
    if rank_zero_only.rank == 0 and (in_sweep or not isinstance(err, DeclutrConfigError)):
        path = write_failure(cfg.paths.output_dir, err, status=status, seconds=seconds,
                             steps=getattr(err, "step", None), checkpoint=getattr(err, "checkpoint", None), **context)
        if in_sweep:
            log.error("Job failed (recorded in %s; the sweep goes on): %s: %s", path, type(err).__name__, err)
    if not in_sweep:
        raise err
    return {"objective": None, "status": status, "error": f"{type(err).__name__}: {err}"}


def finished_run(run_dir: str, settings: dict) -> RunResult | None:
    """The run that finished in ``run_dir`` with these key settings, or ``None``: none finished there (none ran, it
    failed or it was killed), or the one that did had other settings (logged: it will be trained over)."""
    result = read_result(run_dir)
    if result is None or result.status != OK:
        return None
    changed = sorted(name for name in settings.keys() | result.settings.keys()
                     if settings.get(name) != result.settings.get(name))
    if changed:
        log.warning("%s holds a finished run with other settings (%s): training this one over it.", run_dir,
                    ", ".join(f"{name}: {result.settings.get(name)!r} -> {settings.get(name)!r}" for name in changed))
        return None
    return result
