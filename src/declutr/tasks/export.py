"""``task=export``: a run folder, checkpoint or model -> a Hugging Face + sentence-transformers folder with a model card."""

from __future__ import annotations

from omegaconf import DictConfig

from declutr.encoder import Encoder
from declutr.errors import DeclutrConfigError
from declutr.export import read_provenance, write_export
from declutr.export.folder import check_repo_id, push_to_hub


def run(cfg: DictConfig) -> dict:
    options = cfg.export
    if not options.model:
        raise DeclutrConfigError("task=export needs export.model=<run folder | .ckpt | model folder | Hugging Face name>.")
    if options.push_to_hub:
        check_repo_id(options.hub_model_id)  # before any work
    encoder = Encoder(options.model, device="cpu", max_length=options.max_length)
    target = write_export(encoder.model, encoder.tokenizer, options.output, read_provenance(options.model),
                          encoder.max_length, overwrite=options.overwrite, license=options.license,
                          language=options.language)
    print(f"Exported {options.model} to {target} (Hugging Face + sentence-transformers folder, model card in README.md).")
    if options.push_to_hub:
        url = push_to_hub(target, options.hub_model_id, private=options.private)
        print(f"Uploaded to the Hugging Face Hub: {url}")
        return {"output": str(target), "hub": url}
    return {"output": str(target)}
