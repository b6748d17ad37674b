"""``task=tokenizer``: a WordPiece vocabulary learnt from a prepared corpus's text shards, saved as a model source
(tokenizer + BERT config, no weights) with ``tokenizer_stats.json``: the corpus's unigram entropy under it, the MLM
loss of predicting each token from its frequency alone. Skipped when the folder holds one made with the same settings.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from declutr.data.corpus_tokenizer import save_model_source, token_counts, train_wordpiece
from declutr.data.prepare import shard_texts
from declutr.data.token_shards import MANIFEST, entropy_of_counts
from declutr.errors import DeclutrConfigError
from declutr.files.atomic import write_text_atomically

STATS = "tokenizer_stats.json"


def run(cfg: DictConfig) -> dict:
    options = cfg.tokenizer
    corpus, output = Path(options.corpus_dir), Path(options.output_dir)
    settings = {"corpus_dir": str(corpus.resolve()), "vocab_size": options.vocab_size,
                "min_frequency": options.min_frequency, "lowercase": options.lowercase}
    shards = _text_shards(corpus)
    stats_path = output / STATS
    if stats_path.is_file():
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        if stats.get("settings") == settings:
            print(f"Tokenizer already in {output} (tokenizer.overwrite=true to redo): {_summary(stats)}")
            return stats
        if not options.overwrite:
            raise DeclutrConfigError(f"{output} holds a tokenizer made with other settings ({stats.get('settings')}): "
                                     "set tokenizer.overwrite=true to replace it, or tokenizer.output_dir to write "
                                     "elsewhere.")
    start = time.perf_counter()
    tokenizer = train_wordpiece(_texts(shards), options.vocab_size, options.min_frequency, options.lowercase)
    trained = time.perf_counter() - start
    counts: Counter = token_counts(tokenizer, _texts(shards))
    save_model_source(tokenizer, output)
    stats = {"settings": settings, "vocab_size": len(tokenizer), "tokens": sum(counts.values()),
             "tokens_used": len(counts), "unigram_entropy": entropy_of_counts(list(counts.values())),
             "train_seconds": round(trained, 1), "config": OmegaConf.to_container(options, resolve=True)}
    write_text_atomically(stats_path, json.dumps(stats, indent=2))
    print(f"Wrote {output} in {time.perf_counter() - start:.0f}s: {_summary(stats)}")
    return stats


def _summary(stats: dict) -> str:
    return (f"{stats['vocab_size']:,} tokens ({stats['tokens_used']:,} seen in the corpus), the corpus is "
            f"{stats['tokens']:,} tokens, unigram entropy {stats['unigram_entropy']:.3f} nats")


def _text_shards(corpus: Path) -> list[Path]:
    """The text shards a prepared corpus's manifest lists."""
    try:
        manifest = json.loads((corpus / MANIFEST).read_text(encoding="utf-8"))
        return [corpus / name for name in manifest["shards"]]
    except (OSError, ValueError, KeyError, TypeError):
        raise DeclutrConfigError(
            f"tokenizer.corpus_dir={corpus} is not a prepared corpus (no readable {MANIFEST}): run "
            "`python run.py task=prepare` first, or point tokenizer.corpus_dir at its prepare.output_dir.") from None


def _texts(shards: list[Path]) -> Iterator[str]:
    for path in shards:
        yield from shard_texts(path)
