"""Where an encoder comes from: base model, corpus, steps, config and results, and how it trained (time, documents,
hardware, losses), for its model card.

The end of training stores this record as ``declutr_training.json`` beside the saved model, so a later
``task=export`` of the run can write the same card. For a checkpoint the steps come from the checkpoint and
the config from its run (that record, or ``.hydra/config.yaml``); a model not trained here gets a record
naming only itself.
"""

from __future__ import annotations

import json
import os
import platform
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

import declutr.config.resolvers  # noqa: F401  (saved configs refer to ${minilm_path:} and friends)
from declutr.config.settings import OUTPUT_DIR
from declutr.files.checkpoints import load_checkpoint

RECORD_FILE = "declutr_training.json"
LOSSES = ("train/loss", "train/contrastive_loss", "train/mlm_loss")  # the CSV columns the card's loss table shows
LOSS_ROWS = 10  # steps of the loss table, evenly spaced from the first logged step to the last


@dataclass(frozen=True)
class TrainingRecord:
    """What the model card states; ``results`` maps a column (e.g. "before training") to ``{metric: value}``;
    ``seconds`` is the training loop's wall-clock time, ``documents`` the documents it trained on, ``hardware`` what
    it ran on (device, torch version) and ``losses`` the logged losses at up to ``LOSS_ROWS`` evenly spaced steps
    (``{"step": s, "train/loss": v, ...}``, the last one the final losses). Unknown: ``None`` or empty."""

    base_model: str
    random_init: bool = False
    corpus: list[str] = field(default_factory=list)
    steps: int | None = None
    config: dict | None = None
    results: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float | None = None
    documents: int | None = None
    hardware: str | None = None
    losses: list[dict[str, float]] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_dict(cls, data: dict) -> TrainingRecord:
        """A record as :meth:`to_json` wrote it, by any version: missing keys are unknown, unknown keys ignored."""
        known = {f.name for f in fields(cls)}
        return cls(**{key: value for key, value in data.items() if key in known})


def training_record(cfg: DictConfig, steps: int, results: dict[str, dict[str, float]], seconds: float | None = None,
                    documents: int | None = None) -> TrainingRecord:
    """The record of a run that just trained with ``cfg`` for ``steps`` optimizer steps, on this machine, for
    ``seconds`` (the training loop's time) on ``documents`` documents (default: the last ``data/documents`` the
    run's CSV log holds). The losses come from that log (``<run>/csv/version_*/metrics.csv``), where there is one."""
    config = OmegaConf.to_container(cfg, resolve=True)
    output_dir = OmegaConf.select(cfg, OUTPUT_DIR)
    if documents is None and output_dir:
        logged = _logged(Path(output_dir), "data/documents")
        documents = int(logged[-1][1]) if logged else None
    record = _record(config, steps, results)
    return TrainingRecord(**{**asdict(record), "seconds": seconds, "documents": documents,
                             "hardware": hardware(config), "losses": loss_rows(Path(output_dir)) if output_dir else []})


def hardware(config: dict) -> str:
    """What a run of ``config`` trains on, here: the accelerator (GPU name and count, or the CPU) and torch's
    version."""
    trainer = config.get("trainer", {}) or {}
    accelerator = str(trainer.get("accelerator", "auto"))
    devices = trainer.get("devices", 1)
    nodes = int(trainer.get("num_nodes", 1) or 1)
    versions = f"torch {torch.__version__}"
    if accelerator in ("gpu", "cuda", "auto") and torch.cuda.is_available():
        return f"{_gpus(devices) * nodes} x {torch.cuda.get_device_name(0)} (CUDA {torch.version.cuda}), {versions}"
    processor = platform.processor() or platform.machine() or "unknown"
    return f"CPU ({processor}, {os.cpu_count()} cores), {versions}"


def _gpus(devices) -> int:
    """The GPUs per node of Lightning's ``trainer.devices`` (a count, a list or "0,1" of ids, "auto" or -1: all)."""
    if isinstance(devices, list | tuple):
        return len(devices)
    if isinstance(devices, str) and "," in devices:
        return len([d for d in devices.split(",") if d.strip()])
    try:
        count = int(devices)
    except (TypeError, ValueError):
        count = -1
    return count if count > 0 else torch.cuda.device_count()


def loss_rows(run_dir: Path, up_to: int | None = None, rows: int = LOSS_ROWS) -> list[dict[str, float]]:
    """The losses (``LOSSES``) a run logged to its CSV, at up to ``rows`` evenly spaced steps (the first and the last
    included; a step past ``up_to`` left out); ``[]`` without a log."""
    by_step: dict[int, dict[str, float]] = {}
    for metric in LOSSES:
        for step, value in _logged(run_dir, metric):
            if up_to is None or step <= up_to:
                by_step.setdefault(step, {"step": step})[metric] = value
    steps = sorted(by_step)
    if len(steps) > rows:
        steps = sorted({steps[round(i * (len(steps) - 1) / (rows - 1))] for i in range(rows)})
    return [by_step[step] for step in steps]


def _logged(run_dir: Path, metric: str) -> list[tuple[int, float]]:
    from declutr.report.plot import training_curve

    try:
        return training_curve(run_dir, metric)
    except (OSError, ValueError, KeyError):  # a log cut short or written by another version: no table, no failure
        return []


def read_provenance(source: str | Path) -> TrainingRecord:
    """The record of an export source: a run or model folder, a ``.ckpt`` of a run, or any other model."""
    path = Path(source)
    if path.suffix == ".ckpt":
        return _checkpoint_record(path)
    saved = _saved_record(path)
    if saved:
        return saved
    run_config = _run_config(path)
    if run_config:  # a run folder from before records were written
        return _record(run_config, None, {})
    return TrainingRecord(base_model=str(source))


def _checkpoint_record(path: Path) -> TrainingRecord:
    """Steps from the checkpoint; config and corpus from its run when it sits in ``<run>/checkpoints/``, else
    from its hyper-parameters; no results (those of the run belong to its final model)."""
    checkpoint = load_checkpoint(path)
    run_dir = path.parent.parent
    saved = _saved_record(run_dir)
    config = (saved.config if saved else None) or _run_config(run_dir) or {"model": checkpoint["hyper_parameters"]}
    record = _record(config, checkpoint["global_step"], {})
    return TrainingRecord(**{**asdict(record), "hardware": saved.hardware if saved else None,
                             "losses": loss_rows(run_dir, up_to=checkpoint["global_step"])})


def _saved_record(folder: Path) -> TrainingRecord | None:
    """The record the end of training wrote into a model folder (or a run folder's ``model/``)."""
    for candidate in (folder / RECORD_FILE, folder / "model" / RECORD_FILE):
        if candidate.is_file():
            return TrainingRecord.from_dict(json.loads(candidate.read_text()))
    return None


def _record(config: dict, steps: int | None, results: dict) -> TrainingRecord:
    encoder = config["model"]["encoder"]
    data = config.get("data", {})
    corpus = ([f"hf:{data['hf_dataset']}/{data.get('hf_split', 'train')}"] if data.get("hf_dataset")
              else data.get("files", []))
    return TrainingRecord(base_model=str(encoder["name_or_path"]), random_init=bool(encoder.get("random_init")),
                          corpus=[str(f) for f in corpus], steps=steps, config=config, results=results)


def _run_config(run_dir: Path) -> dict | None:
    """A run's ``.hydra/config.yaml``, resolved with ``paths.output_dir`` set to the run folder it describes."""
    saved = run_dir / ".hydra" / "config.yaml"
    if not saved.is_file():
        return None
    cfg = OmegaConf.load(saved)
    OmegaConf.update(cfg, OUTPUT_DIR, str(run_dir))  # saved as ${hydra:runtime.output_dir} of that run
    return OmegaConf.to_container(cfg, resolve=True)
