"""A training run's bookkeeping: what identifies it (key settings, experiment, axis, code version), its W&B run
closed and tagged, and its outcome written to ``<run>/results.json`` (:mod:`declutr.report.results`), whether it
succeeded or failed.

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
from hydra.types import RunMode
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, OmegaConf

from declutr.callbacks.interrupt import Interrupts
from declutr.errors import DeclutrConfigError, DeclutrInterrupted, DeclutrNumericalError
from declutr.report.git_commit import git_commit
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

log = logging.getLogger(__name__)

# What results.json records of a run's resolved config (the full config is in <run>/.hydra/config.yaml).
KEY_SETTINGS = {
    "encoder": "model.encoder.name_or_path", "random_init": "model.encoder.random_init",
    "num_anchors": "data.sampler.num_anchors", "num_positives": "data.sampler.num_positives",
    "strategy": "data.sampler.strategy", "min_span_len": "data.sampler.min_span_len",
    "max_span_len": "data.sampler.max_span_len", "contrastive_weight": "model.contrastive_weight",
    "mlm_weight": "model.mlm_weight", "temperature": "model.temperature", "lr": "model.optimizer.lr",
    "documents_per_step": "data.batch_size", "max_steps": "trainer.max_steps", "seed": "seed",
}

ABLATION_PREFIX = "ablation/"  # experiment=ablation/<axis> names the axis


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
        if _multirun():
            log.error("Sweep stopped: job %s was %s (recorded in %s). The jobs after it did not run; to finish the "
                      "sweep, run the same command again with skip_finished=true.", HydraConfig.get().job.num, stop,
                      cfg.paths.output_dir)


def _record_failure(cfg: DictConfig, err: Exception, seconds: float, context: dict) -> dict:
    """A run that failed (``failed``) or stopped on non-finite values (``stopped_nonfinite``): recorded, then raised
    again in a single run; in a multirun the sweep goes on (its summary lists the failures)."""
    status = STOPPED_NONFINITE if isinstance(err, DeclutrNumericalError) else FAILED
    close_wandb_run(exit_code=1, status=status)
    multirun = _multirun()
    # A single run's configuration error leaves no folder behind (run.py removes it): nothing is written then.
    if rank_zero_only.rank == 0 and (multirun or not isinstance(err, DeclutrConfigError)):
        path = write_failure(cfg.paths.output_dir, err, status=status, seconds=seconds,
                             steps=getattr(err, "step", None), checkpoint=getattr(err, "checkpoint", None), **context)
        if multirun:
            log.error("Job failed (recorded in %s; the sweep goes on): %s: %s", path, type(err).__name__, err)
    if not multirun:
        raise err
    return {"objective": None, "status": status, "error": f"{type(err).__name__}: {err}"}


def _multirun() -> bool:
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


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


def run_context(cfg: DictConfig) -> dict:
    """What identifies a run in a sweep's report and dashboard: its key settings (``None`` for any that cannot be
    resolved: the run may be failing on exactly that), experiment, ablation axis, scale (``experiment/scale``), the
    values of the settings its sweep varies, and code version."""
    choices = HydraConfig.get().runtime.choices if HydraConfig.initialized() else {}
    settings = {"model": choices.get("model")}
    settings |= {name: OmegaConf.select(cfg, key, throw_on_resolution_failure=False)
                 for name, key in KEY_SETTINGS.items()}
    experiment = choices.get("experiment")
    return {"settings": settings, "experiment": experiment, "axis": run_axis(cfg, experiment),
            "scale": choices.get("experiment/scale"), "swept": swept_values(), "git_commit": git_commit()}


def swept_values() -> dict[str, str]:
    """This sweep job's value of each setting its sweep varies (``hydra.sweeper.params``, and the command line's
    comma lists), as typed: ``{"data.sampler.num_anchors": "4"}``; empty outside a multirun."""
    if not _multirun():
        return {}
    hydra = HydraConfig.get()
    swept = set((hydra.sweeper.get("params") or {}).keys())
    overrides = dict(override.split("=", 1) for override in hydra.overrides.task if "=" in override)
    return {key.lstrip("+~"): value for key, value in overrides.items() if key.lstrip("+~") in swept}


def run_axis(cfg: DictConfig, experiment: str | None) -> str | None:
    """The ablation axis of a run: ``report.axis`` when set, else ``<axis>`` of ``experiment=ablation/<axis>``."""
    axis = OmegaConf.select(cfg, "report.axis", throw_on_resolution_failure=False)
    if axis is None and experiment and experiment.startswith(ABLATION_PREFIX):
        axis = experiment.removeprefix(ABLATION_PREFIX)
    return axis
