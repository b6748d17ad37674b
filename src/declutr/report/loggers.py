"""Every logger backend's extras in one place: the settings left null that a job fills in, the checks made before
anything runs, tags, histograms, tables, evaluation scores and finishing. Training, ``task=eval`` and
:class:`~declutr.callbacks.span_log.SpanLog` call these functions with any Lightning logger; each does what the
backend supports (W&B: histograms, tables, summaries; TensorBoard: histograms, tables as text; MLflow: tables as CSV
artifacts; CSV: scalars only) and nothing for the others.
"""

from __future__ import annotations

import csv
import importlib.util
import io
import logging
import sys
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import numpy as np
from hydra.core.hydra_config import HydraConfig
from lightning.pytorch.loggers import Logger, MLFlowLogger, TensorBoardLogger, WandbLogger
from omegaconf import DictConfig, OmegaConf

from declutr.config.instantiate import build
from declutr.errors import DeclutrConfigError
from declutr.report.wandb_run import group, job_name, log_model_folder, run_folder, start_wandb_run, wandb_defaults

TENSORBOARD_TARGET = "lightning.pytorch.loggers.TensorBoardLogger"
MLFLOW_TARGET = "lightning.pytorch.loggers.MLFlowLogger"
PACKAGES = {TENSORBOARD_TARGET: "tensorboard", MLFLOW_TARGET: "mlflow"}
log = logging.getLogger(__name__)
SERVER_TIMEOUT_S = 5
MAX_FOLDER_NAME = 255


def build_loggers(cfg: DictConfig, context: dict) -> list[Logger]:
    """The loggers of ``cfg.logger``, all checked (:func:`check_loggers`) before any is built, each with the
    settings it leaves null filled in (:func:`defaults`)."""
    check_loggers(cfg)
    note_logger_change(cfg)
    return [build(node, **defaults(cfg, node, context)) for node in (cfg.get("logger") or {}).values()]


def note_logger_change(cfg: DictConfig) -> None:
    """Say so when a resumed run logs to other loggers than the run it resumes (read from that run's
    ``.hydra/config.yaml``): the checkpoint resumes as usual, and the earlier metrics stay where they were logged."""
    saved = run_folder(cfg) / ".hydra" / "config.yaml" if cfg.get("ckpt_path") else None
    if saved is None or not saved.is_file():
        return
    before = sorted((OmegaConf.load(saved).get("logger") or {}).keys())
    now = sorted((cfg.get("logger") or {}).keys())
    if before != now:
        log.warning("Resuming %s with other loggers: it logged to %s, this run logs to %s. The checkpoint resumes as "
                    "usual; the metrics logged before stay in the earlier loggers' stores.", run_folder(cfg),
                    ", ".join(before) or "none", ", ".join(now) or "none")


def check_loggers(cfg: DictConfig) -> None:
    """Raise :class:`DeclutrConfigError`, naming the setting and the fix, for a logger that would fail later: its
    package missing, a TensorBoard or MLflow folder that cannot be written, an MLflow server that does not answer."""
    for key, node in (cfg.get("logger") or {}).items():
        target = node.get("_target_")
        if target in PACKAGES and importlib.util.find_spec(PACKAGES[target]) is None:
            raise DeclutrConfigError(f"logger={key} needs the {PACKAGES[target]} package: pip install -e "
                                     "'.[dashboards]' (or choose another logger, e.g. logger=csv).")
        if target == TENSORBOARD_TARGET:
            _check_writable(node.save_dir, f"logger.{key}.save_dir")
        elif target == MLFLOW_TARGET:
            _check_tracking_uri(node.get("tracking_uri"), f"logger.{key}.tracking_uri")
            if node.get("artifact_location"):
                _check_writable(node.artifact_location, f"logger.{key}.artifact_location")


def _check_writable(folder: str, setting: str) -> None:
    """Create ``folder`` and a file in it, or raise naming ``setting``."""
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as err:
        raise DeclutrConfigError(f"{setting}: the folder {folder} cannot be written ({err.strerror or err}). Point "
                                 f"{setting} to a place you can write, or leave it at its default (inside the run "
                                 "folder).") from None


def _check_tracking_uri(uri: str | None, setting: str) -> None:
    """A local store (``sqlite:///``, ``file:``) must be writable, an ``http(s)`` server must answer; other schemes
    (``databricks``, ...) and a null URI (``MLFLOW_TRACKING_URI``) are left to MLflow."""
    if not uri:
        return
    parsed = urlparse(uri)
    if parsed.scheme == "sqlite":
        _check_writable(str(Path(uri.removeprefix("sqlite:///")).parent), setting)
    elif parsed.scheme == "file":
        _check_writable(parsed.path, setting)
    elif parsed.scheme in ("http", "https"):
        try:  # any HTTP answer, even an error status, shows a server is there; MLflow's client would retry for minutes
            urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=SERVER_TIMEOUT_S).close()
        except urllib.error.HTTPError:
            pass
        except (urllib.error.URLError, OSError) as err:
            raise DeclutrConfigError(
                f"{setting}={uri}: no MLflow server answers there ({getattr(err, 'reason', err)}). Start one "
                "(mlflow server --backend-store-uri sqlite:///mlflow.db --host 127.0.0.1 --port 5000), correct the "
                "address, or leave the setting at its default (a database inside the run folder).") from None


def defaults(cfg: DictConfig, node: DictConfig, context: dict) -> dict:
    """Values for the settings ``node`` leaves null. W&B: :func:`declutr.report.wandb_run.wandb_defaults`;
    TensorBoard: ``version``, the sub-folder of ``save_dir`` shown as the run's name, is :func:`run_name` (as a
    folder name, :func:`_folder_name`), so the jobs of a sweep writing into one ``save_dir`` stay apart; MLflow:
    the experiment is the run's W&B group (``<axis>@<scale>`` or the experiment; else ``declutr``) and the run is
    named by :func:`run_name`. A run without a name takes its run folder's."""
    target = node.get("_target_")
    fallback = run_folder(cfg).name
    if target == TENSORBOARD_TARGET:
        chosen = {"version": _folder_name(run_name(cfg, context)) or fallback}
    elif target == MLFLOW_TARGET:
        chosen = {"experiment_name": group(context) or "declutr", "run_name": run_name(cfg, context) or fallback}
    else:
        return wandb_defaults(cfg, node, context)
    return {key: value for key, value in chosen.items() if node.get(key) is None}


def run_name(cfg: DictConfig, context: dict) -> str | None:
    """A run's name in TensorBoard and MLflow: the values of the settings its sweep varies when known
    (``data.sampler.num_anchors=4,seed=2``; ``task=eval`` of a trained model: that model's), else the job's
    overrides without the logger settings, which every job of a sweep shares (a sweep-level ``save_dir`` or
    ``tracking_uri``) and which would bury what tells the jobs apart; a resumed job keeps its first attempt's name
    (:func:`declutr.report.wandb_run.job_name`)."""
    swept = context.get("swept") or {}
    if swept:
        return ",".join(f"{key}={value}" for key, value in swept.items())
    if cfg.get("ckpt_path") or not HydraConfig.initialized():
        return job_name(cfg)
    overrides = [item for item in HydraConfig.get().overrides.task if not item.lstrip("+~").startswith("logger")]
    return ",".join(sorted(overrides)) or None


def _folder_name(name: str | None) -> str | None:
    """``name`` as one folder name (a path in an override would nest folders: its ``/`` become ``_``); ``None`` if
    too long for one (the file system's limit is 255 bytes)."""
    folder = (name or "").replace("/", "_")
    return folder if 0 < len(folder.encode()) <= MAX_FOLDER_NAME else None


def start_runs(loggers: list[Logger], cfg: DictConfig, context: dict, global_zero: bool) -> None:
    """Each logger's run: tagged (:func:`start_run`, on global rank zero only) with the run's :func:`run_tags`, and
    given the whole resolved config as its hyperparameters."""
    for logger in loggers:
        if global_zero:  # to find and filter runs in the dashboard
            start_run(logger, run_tags(context))
        logger.log_hyperparams(OmegaConf.to_container(cfg, resolve=True))


def log_metrics(loggers: list[Logger], metrics: dict[str, float], step: int) -> None:
    """``metrics`` at ``step`` on every logger."""
    for logger in loggers:
        logger.log_metrics(metrics, step=step)


def start_run(logger: Logger, tags: list[str]) -> None:
    """Tag the run (``experiment:<name>``, ``axis:<axis>``, ``<key>=<value>``, ...) where the backend has tags:
    W&B (:func:`declutr.report.wandb_run.start_wandb_run`), MLflow (``experiment: <name>``, ...)."""
    if isinstance(logger, WandbLogger):
        start_wandb_run(logger, tags)
    elif isinstance(logger, MLFlowLogger) and tags:
        from mlflow.entities import RunTag

        pairs = (tag.split("=", 1) if "=" in tag else tag.split(":", 1) for tag in tags)
        logger.experiment.log_batch(logger.run_id, tags=[RunTag(key, value) for key, value in pairs])


def log_histograms(logger: Logger, histograms: dict[str, np.ndarray], step: int) -> None:
    """Histograms of ``values`` under their keys, on W&B and TensorBoard (MLflow and CSV have none)."""
    if isinstance(logger, WandbLogger):
        import wandb

        logger.log_metrics({key: wandb.Histogram(values) for key, values in histograms.items()}, step=step)
    elif isinstance(logger, TensorBoardLogger):
        for key, values in histograms.items():
            logger.experiment.add_histogram(key, values, global_step=step)


def log_table(logger: Logger, key: str, columns: list[str], rows: list[list], step: int | None = None) -> None:
    """A table: a W&B Table, TensorBoard text (a Markdown table), an MLflow artifact ``<key>.csv``; nothing on CSV."""
    if isinstance(logger, WandbLogger):
        logger.log_table(key=key, columns=columns, data=rows, step=step)
    elif isinstance(logger, TensorBoardLogger):
        logger.experiment.add_text(key, _markdown(columns, rows), global_step=step)
    elif isinstance(logger, MLFlowLogger):
        text = io.StringIO()
        csv.writer(text).writerows([columns, *rows])
        logger.experiment.log_text(logger.run_id, text.getvalue(), f"{key}.csv")


def _markdown(columns: list[str], rows: list[list]) -> str:
    """A Markdown table; a ``|`` inside a cell is escaped so that it stays in its cell."""
    lines = [columns, ["---"] * len(columns), *rows]
    return "\n".join("| " + " | ".join(str(cell).replace("|", "\\|") for cell in line) + " |" for line in lines)


def log_scores(logger: Logger, name: str, scores: dict[str, float], rows: list[list], model: str) -> None:
    """An evaluation suite's ``scores`` (its averages included) and its table (task, metric, score) as ``eval/<name>``:
    on W&B as summary keys, with the evaluated ``model``, and a Table; elsewhere as metrics ``eval/<score>`` at step 0
    and the table where the backend takes one (:func:`log_table`)."""
    if isinstance(logger, WandbLogger):
        logger.experiment.summary.update({**scores, "model": model})
    else:
        logger.log_metrics({f"eval/{key}": value for key, value in scores.items()}, step=0)
    log_table(logger, f"eval/{name}", ["task", "metric", "score"], rows)


def finish_run(logger: Logger, model_dir: Path | None = None) -> None:
    """End a run's logging: W&B uploads the exported ``model_dir`` (with ``log_model`` on); its run stays open for
    :func:`close_wandb_run` (called by :func:`declutr.runs.record.record_run`), which records how the job ended. The others write out what they
    hold (the metrics logged after Lightning's own ``finalize`` at the end of fit included) and mark the run
    finished."""
    if isinstance(logger, WandbLogger):
        if model_dir is not None:
            log_model_folder(logger, model_dir, name=f"encoder-{logger.experiment.id}")  # (Lightning: model-<id>)
    else:
        logger.finalize("success")


def run_tags(context: dict) -> list[str]:
    """A run's tags (W&B tags, MLflow tags): ``experiment:<name>``, ``axis:<axis>``, ``scale:<scale>``, ``commit:<sha>``, each only when known,
    and ``<key>=<value>`` for each setting the sweep varies (a chart of the axis groups its runs by these)."""
    named = [f"{name}:{context[key]}" for name, key in (("experiment", "experiment"), ("axis", "axis"),
                                                        ("scale", "scale"), ("commit", "git_commit"))
             if context.get(key)]
    return named + [f"{key}={value}" for key, value in (context.get("swept") or {}).items()]


def close_wandb_run(exit_code: int, status: str | None = None) -> None:
    """Close this job's W&B run, so the next job of a multirun starts its own (Lightning's WandbLogger would
    otherwise log into the open one); a training run's ``status`` goes into its summary: a job that did not finish
    shows as failed in the dashboard (non-zero ``exit_code``) and says why."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        if status is not None:
            wandb.run.summary["status"] = status
        wandb.finish(exit_code=exit_code)
