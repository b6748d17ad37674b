"""What identifies a training run in a sweep's report, its ``results.json`` and its dashboards: its key settings,
experiment, ablation axis, scale, the values its sweep varies, and the code version."""

from __future__ import annotations

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from declutr.config.settings import (
    BATCH_SIZE,
    CONTRASTIVE_WEIGHT,
    ENCODER,
    LOSS,
    LR,
    MAX_SPAN_LEN,
    MAX_STEPS,
    MIN_SPAN_LEN,
    MLM_WEIGHT,
    NUM_ANCHORS,
    NUM_POSITIVES,
    RANDOM_INIT,
    REPORT_AXIS,
    SEED,
    STRATEGY,
    TEMPERATURE,
)
from declutr.runs.git_commit import git_commit

# What results.json records of a run's resolved config (the full config is in <run>/.hydra/config.yaml).
KEY_SETTINGS = {
    "encoder": ENCODER, "random_init": RANDOM_INIT, "num_anchors": NUM_ANCHORS, "num_positives": NUM_POSITIVES,
    "strategy": STRATEGY, "min_span_len": MIN_SPAN_LEN, "max_span_len": MAX_SPAN_LEN,
    "contrastive_weight": CONTRASTIVE_WEIGHT, "mlm_weight": MLM_WEIGHT,
    "loss": LOSS, "temperature": TEMPERATURE,
    "lr": LR, "documents_per_step": BATCH_SIZE, "max_steps": MAX_STEPS, "seed": SEED,
}

ABLATION_PREFIX = "ablation/"  # experiment=ablation/<axis> names the axis


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


def multirun() -> bool:
    """Whether this job is one of a sweep's (``python run.py -m ...``)."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def swept_values() -> dict[str, str]:
    """This sweep job's value of each setting its sweep varies (``hydra.sweeper.params``, and the command line's
    comma lists), as typed: ``{"data.sampler.num_anchors": "4"}``; empty outside a multirun."""
    if not multirun():
        return {}
    hydra = HydraConfig.get()
    swept = set((hydra.sweeper.get("params") or {}).keys())
    overrides = dict(override.split("=", 1) for override in hydra.overrides.task if "=" in override)
    return {key.lstrip("+~"): value for key, value in overrides.items() if key.lstrip("+~") in swept}


def run_axis(cfg: DictConfig, experiment: str | None) -> str | None:
    """The ablation axis of a run: ``report.axis`` when set, else ``<axis>`` of ``experiment=ablation/<axis>``."""
    axis = OmegaConf.select(cfg, REPORT_AXIS, throw_on_resolution_failure=False)
    if axis is None and experiment and experiment.startswith(ABLATION_PREFIX):
        axis = experiment.removeprefix(ABLATION_PREFIX)
    return axis
