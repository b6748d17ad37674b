"""``task=prepare``: raw corpus folders -> ``.jsonl.gz`` shards of documents with at least N tokens."""

from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from declutr.data.prepare import PREPARE_FORMAT, prepare_corpus
from declutr.model.encoder import load_tokenizer


def run(cfg: DictConfig) -> dict:
    options = cfg.prepare
    output = Path(options.output_dir)
    manifest = output / "manifest.json"
    settings = {"format": PREPARE_FORMAT, "min_tokens": options.min_tokens, "chunk_words": options.chunk_words,
                "tokenizer": str(cfg.model.encoder.name_or_path), "corpus_dir": str(Path(options.corpus_dir).resolve())}
    if manifest.is_file() and not options.overwrite:
        previous = json.loads(manifest.read_text()).get("settings")
        if previous == settings:
            print(f"Corpus already prepared in {output} with the same settings (prepare.overwrite=true to redo).")
            return {"output_dir": str(output)}
        raise SystemExit(
            f"{output} holds a corpus prepared with other settings ({previous}); "
            "set prepare.overwrite=true to replace it, or prepare.output_dir to write elsewhere."
        )
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.model.encoder.name_or_path)
    for old in output.glob("shard-*.jsonl.gz"):  # overwrite: no stale shard may survive next to new ones
        old.unlink()
    report = prepare_corpus(options.corpus_dir, output, tokenizer, options.min_tokens, options.chunk_words,
                            options.shard_size, settings)
    print(report.summary())
    print(f"Wrote {output} in {time.perf_counter() - start:.0f}s.")
    return {"output_dir": str(output), "documents": sum(report.kept.values())}
