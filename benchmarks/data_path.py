"""Data path throughput: anchor-positive examples per second per worker, from raw text and from token-id shards.

    python benchmarks/data_path.py [--source text|tokens|both] [--docs 300] [--anchors 2] [--positives 2]
        [--min-span-len 32] [--max-span-len 512] [--batch-size 4] [--repeats 3] [--step-seconds 2.3]
        [--corpus .cache/corpus] [--cache-dir .cache/bench/data_path] [--tokenizer <folder or name>]

Does in this process what one DataLoader worker does (one torch thread): a ``DocumentStream`` over the prepared
corpus, span sampling and the collator (special tokens, padding, MLM masking), with the MiniLM tokenizer. The
text path reads the ``.jsonl.gz`` shards and tokenises every document; the token path memory-maps the token-id
shards. If the corpus has no token-id shards for this tokenizer, a copy with them is made once in --cache-dir
(timed and printed: the one-off cost of tokenising once). One example = one document's A anchors and A x P
positives; documents too short for the spans are read and skipped, and count against the rate ("span tokens":
the non-padding tokens of the collated batches). Prints the median over --repeats passes and how many times
faster than a training step consumes documents that is (--batch-size documents per --step-seconds; target: 10x).
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections import Counter
from functools import partial
from pathlib import Path

import torch

from declutr.data.collate import DeCLUTRCollator
from declutr.data.documents import resolve_files
from declutr.data.prepare import add_token_ids
from declutr.data.spans import SpanSampler
from declutr.data.stream import SKIPPED_SHORT, DocumentStream
from declutr.data.token_shards import MANIFEST, corpus_sources, has_token_ids_of
from declutr.tokenizer import load_tokenizer, tokenizer_identity

ROOT = Path(__file__).resolve().parents[1]


def corpus_with_token_ids(corpus: Path, cache_dir: Path, tokenizer) -> Path:
    """``corpus`` if it has token-id shards of ``tokenizer``, else a copy in ``cache_dir`` given them (made once)."""
    identity = tokenizer_identity(tokenizer)
    for folder in (corpus, cache_dir):
        manifest = folder / MANIFEST
        if manifest.is_file() and has_token_ids_of(json.loads(manifest.read_text()), identity):
            return folder
    if not (corpus / MANIFEST).is_file():
        raise SystemExit(f"No prepared corpus in {corpus}: run `python run.py task=prepare` or pass --corpus.")
    shutil.rmtree(cache_dir, ignore_errors=True)
    cache_dir.mkdir(parents=True)
    for name in [MANIFEST, *json.loads((corpus / MANIFEST).read_text())["shards"]]:
        shutil.copy(corpus / name, cache_dir / name)
    start = time.perf_counter()
    tokens = add_token_ids(cache_dir, tokenizer)
    seconds = time.perf_counter() - start
    print(f"Wrote token-id shards into {cache_dir}: {tokens:,} tokens in {seconds:.1f}s "
          f"({tokens / seconds:,.0f} tokens/s, once per corpus and tokenizer).")
    return cache_dir


def one_pass(stream: DocumentStream, collator: DeCLUTRCollator, examples: int, batch_size: int) -> dict:
    """Time the stream and the collator until ``examples`` examples were collated."""
    start, done, tokens, skipped, batch, documents = time.perf_counter(), 0, 0, Counter(), [], []
    for example in stream:
        batch.append(example)
        skipped.update(example["skipped"])
        if example["doc"] is not None:
            done += 1
            documents.append(example["doc"])
        if len(batch) == batch_size or done == examples:
            collated = collator(batch)
            tokens += collated["num_tokens"]
            batch = []
        if done == examples:
            break
    seconds = time.perf_counter() - start
    read = done + sum(skipped.values())
    short = sum(n for (reason, _), n in skipped.items() if reason == SKIPPED_SHORT)
    return {"seconds": seconds, "examples": done, "read": read, "short": short, "tokens": tokens, "documents": documents}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", choices=["text", "tokens", "both"], default="both")
    parser.add_argument("--docs", type=int, default=300, help="examples (usable documents) per timed pass")
    parser.add_argument("--anchors", type=int, default=2)
    parser.add_argument("--positives", type=int, default=2)
    parser.add_argument("--min-span-len", type=int, default=32)
    parser.add_argument("--max-span-len", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=4, help="documents per training step")
    parser.add_argument("--mlm-probability", type=float, default=0.15)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--step-seconds", type=float, default=2.3, help="seconds one training step takes")
    parser.add_argument("--corpus", type=Path, default=ROOT / ".cache" / "corpus", help="a prepared corpus")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / ".cache" / "bench" / "data_path")
    parser.add_argument("--tokenizer", default=None, help="tokenizer folder or name (default: all-MiniLM-L6-v2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)  # as in a DataLoader worker

    if args.tokenizer is None:
        from declutr.config.resolvers import _minilm_path  # (needs omegaconf: pass --tokenizer where it is missing)

        args.tokenizer = _minilm_path()
    tokenizer = load_tokenizer(args.tokenizer)
    sampler = SpanSampler(args.anchors, args.positives, args.min_span_len, args.max_span_len)
    collator = DeCLUTRCollator(tokenizer, args.mlm_probability)
    corpus = corpus_with_token_ids(args.corpus, args.cache_dir, tokenizer)
    files = resolve_files([str(corpus)])
    formats = ["text", "tokens"] if args.source == "both" else [args.source]
    print(f"Data path, one process, tokenizer {tokenizer.name_or_path}; A={args.anchors} P={args.positives} spans "
          f"{args.min_span_len}-{args.max_span_len} (documents need {sampler.min_doc_tokens} tokens), batch "
          f"{args.batch_size}; {args.docs} examples per pass, median of {args.repeats}; corpus {corpus}")
    print(f"{'source':<8}{'examples/s':>12}{'anchors/s':>11}{'docs read/s':>13}{'too short':>11}{'span tokens/s':>15}")
    rates, documents = {}, {}
    for data_format in formats:
        sources = corpus_sources(files, data_format, tokenizer)
        make = partial(DocumentStream, sources, tokenizer, sampler, seed=args.seed)
        one_pass(make(), collator, min(args.docs, 50), args.batch_size)  # warm-up: file cache, tokenizer
        runs = [one_pass(make(), collator, args.docs, args.batch_size) for _ in range(args.repeats)]
        run = sorted(runs, key=lambda r: r["seconds"])[len(runs) // 2]
        rate = run["examples"] / run["seconds"]
        rates[data_format], documents[data_format] = rate, run["documents"]
        print(f"{data_format:<8}{rate:>12,.1f}{rate * args.anchors:>11,.1f}{run['read'] / run['seconds']:>13,.1f}"
              f"{run['short']:>11}{run['tokens'] / run['seconds']:>15,.0f}")
        if run["examples"] < args.docs:
            print(f"  (the corpus ran out after {run['examples']} examples)")
    if len(documents) == 2:
        print(f"Same documents from text and token ids: {'yes' if documents['text'] == documents['tokens'] else 'NO'}; "
              f"token ids {rates['tokens'] / rates['text']:.1f}x the text path.")
    consumed = args.batch_size / args.step_seconds
    print(f"A training step consumes {args.batch_size} documents per {args.step_seconds} s = {consumed:.2f} examples/s: "
          + ", ".join(f"{name} {rate / consumed:,.0f}x" for name, rate in rates.items()) + " that (target: >= 10x).")


if __name__ == "__main__":
    main()
