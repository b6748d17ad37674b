"""``task=export``: a run folder, checkpoint or model -> a Hugging Face + sentence-transformers folder with a model card."""

from __future__ import annotations

from omegaconf import DictConfig

from declutr.encoder import Encoder
from declutr.errors import DeclutrConfigError
from declutr.export import read_provenance, write_export


def run(cfg: DictConfig) -> dict:
    options = cfg.export
    if not options.model:
        raise DeclutrConfigError("task=export needs export.model=<run folder | .ckpt | model folder | Hugging Face name>.")
    encoder = Encoder(options.model, device="cpu", max_length=options.max_length)
    target = write_export(encoder.model, encoder.tokenizer, options.output, read_provenance(options.model),
                          encoder.max_length, overwrite=options.overwrite)
    print(f"Exported {options.model} to {target} (Hugging Face + sentence-transformers folder, model card in README.md).")
    return {"output": str(target)}
