"""Where an encoder comes from: base model, corpus, steps, config and results, for its model card.

The end of training stores this record as ``declutr_training.json`` beside the saved model, so a later
``task=export`` of the run can write the same card. For a checkpoint the steps come from the checkpoint and
the config from its run (that record, or ``.hydra/config.yaml``); a model not trained here gets a record
naming only itself.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

import declutr.config.resolvers  # noqa: F401  (saved configs refer to ${minilm_path:} and friends)
from declutr.files.checkpoints import load_checkpoint

RECORD_FILE = "declutr_training.json"


@dataclass(frozen=True)
class TrainingRecord:
    """What the model card states; ``results`` maps a column (e.g. "before training") to ``{metric: value}``."""

    base_model: str
    random_init: bool = False
    corpus: list[str] = field(default_factory=list)
    steps: int | None = None
    config: dict | None = None
    results: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def training_record(cfg: DictConfig, steps: int, results: dict[str, dict[str, float]]) -> TrainingRecord:
    """The record of a run that just trained with ``cfg`` for ``steps`` optimizer steps."""
    return _record(OmegaConf.to_container(cfg, resolve=True), steps, results)


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
    return _record(config, checkpoint["global_step"], {})


def _saved_record(folder: Path) -> TrainingRecord | None:
    """The record the end of training wrote into a model folder (or a run folder's ``model/``)."""
    for candidate in (folder / RECORD_FILE, folder / "model" / RECORD_FILE):
        if candidate.is_file():
            return TrainingRecord(**json.loads(candidate.read_text()))
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
    OmegaConf.update(cfg, "paths.output_dir", str(run_dir))  # saved as ${hydra:runtime.output_dir} of that run
    return OmegaConf.to_container(cfg, resolve=True)
