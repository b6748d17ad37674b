"""``task=prepare``: raw corpus folders -> ``.jsonl.gz`` shards of documents with at least N tokens, and their
token-id shards (``prepare.token_ids``) so that training reads ids instead of tokenising."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from omegaconf import DictConfig

from declutr.config.settings import ENCODER
from declutr.data.hub_dataset import HubDataset
from declutr.data.prepare import PREPARE_FORMAT, add_token_ids, prepare_corpus, remove_prepared
from declutr.data.token_shards import MANIFEST, has_token_ids_of
from declutr.errors import DeclutrConfigError
from declutr.tokenizer import load_tokenizer, tokenizer_identity


def run(cfg: DictConfig) -> dict:
    options = cfg.prepare
    output = Path(options.output_dir)
    manifest_path = output / MANIFEST
    settings = {"format": PREPARE_FORMAT, "min_tokens": options.min_tokens, "chunk_words": options.chunk_words,
                "tokenizer": str(cfg.model.encoder.name_or_path), "corpus_dir": str(Path(options.corpus_dir).resolve())}
    if options.text_field != "text":  # recorded only when set, so corpora prepared before the key existed still match
        settings["text_field"] = options.text_field
    hub = None
    if options.hf_dataset:  # a Hugging Face dataset by name (or local dataset folder) instead of corpus_dir
        hub = HubDataset(options.hf_dataset, options.hf_split, options.hf_config, options.text_field)
        hub.check()
        settings["corpus_dir"] = f"hf:{options.hf_dataset}/{options.hf_split}"
    start = time.perf_counter()
    tokenizer = load_tokenizer(cfg.model.encoder.name_or_path, setting=ENCODER)
    if manifest_path.is_file() and not options.overwrite:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if not same_settings(manifest.get("settings"), settings):
            raise DeclutrConfigError(
                f"{output} holds a corpus prepared with other settings ({manifest.get('settings')}); "
                "set prepare.overwrite=true to replace it, or prepare.output_dir to write elsewhere."
            )
        if options.token_ids and not has_token_ids_of(manifest, tokenizer_identity(tokenizer)):
            # The text shards are kept; only their ids are (re)written.
            tokens = add_token_ids(output, tokenizer, progress=options.progress)
            print(f"Corpus already prepared in {output}; wrote its token-id shards ({tokens:,} tokens) "
                  f"in {time.perf_counter() - start:.0f}s.")
            return {"output_dir": str(output), "documents": manifest["documents"]}
        print(f"Corpus already prepared in {output} with the same settings (prepare.overwrite=true to redo).")
        return {"output_dir": str(output)}
    remove_prepared(output)  # overwrite: no stale shard or manifest may survive next to new ones
    report = prepare_corpus(options.corpus_dir, output, tokenizer, options.min_tokens, options.chunk_words,
                            options.shard_size, settings, options.token_ids, progress=options.progress,
                            num_proc=options.num_proc or len(os.sched_getaffinity(0)), text_field=options.text_field,
                            hub=hub)
    print(report.summary())
    seconds = time.perf_counter() - start
    print(f"Wrote {output} in {seconds:.0f}s ({report.tokens / max(seconds, 1e-9):,.0f} tokens/s, tokenizer loading "
          "included).")
    return {"output_dir": str(output), "documents": sum(report.kept.values())}


def same_settings(recorded: dict | None, wanted: dict) -> bool:
    """Whether a manifest's settings are ``wanted``: equal, except that the tokenizer may be one local folder spelt
    two ways (relative or absolute, through a link): ``.cache/tokenizer/x`` and ``/repo/.cache/tokenizer/x`` match."""
    if recorded is None or recorded.keys() != wanted.keys():
        return False
    if any(recorded[key] != wanted[key] for key in wanted if key != "tokenizer"):
        return False
    before, now = Path(str(recorded["tokenizer"])), Path(str(wanted["tokenizer"]))
    return recorded["tokenizer"] == wanted["tokenizer"] or (
        before.is_dir() and now.is_dir() and before.resolve() == now.resolve())
