"""Sentences/s of ``declutr.Encoder.encode`` against ``SentenceTransformer.encode``: same model, same process.

    python benchmarks/encode_speed.py [--sentences 2000] [--batch-size 64] [--repeats 7] [--threads N]

Both embed the same STS-B sentences with all-MiniLM-L6-v2 (offline copy) on the CPU, with the same window
and unit-length output, so they do the same work (their vectors are checked to agree). After a warm-up the
two are timed alternately, swapping which goes first each repetition, so load from other processes on a
shared machine falls on both; the medians and the median of the per-repetition ratios are printed.
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch
from sentence_transformers import SentenceTransformer

from declutr import Encoder
from declutr.config.resolvers import _minilm_path

STSB = Path(os.environ.get("DECLUTR_DATA_DIR", Path(__file__).resolve().parents[2] / "shared" / "data")) \
    / "eval" / "stsb" / "senteval_tok_lower"


def stsb_sentences(count: int) -> list[str]:
    """The first ``count`` sentences of STS-B dev then test (both sentences of each pair)."""
    sentences = []
    for split in ("dev", "test"):
        with (STSB / f"sts-{split}.csv").open(encoding="utf-8") as handle:
            for row in csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
                sentences += row[5:7] if len(row) >= 7 else []
    return sentences[:count]


def timed(encode, texts: list[str]) -> float:
    start = time.perf_counter()
    encode(texts)
    return len(texts) / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    texts = stsb_sentences(args.sentences)
    st = SentenceTransformer(_minilm_path(), device="cpu")  # Transformer (window 256) + mean pooling + Normalize
    ours = Encoder(_minilm_path(), device="cpu", max_length=st.max_seq_length)
    runners = {
        "declutr.Encoder": lambda x: ours.encode(x, batch_size=args.batch_size, normalize_embeddings=True),
        "SentenceTransformer": lambda x: st.encode(x, batch_size=args.batch_size, convert_to_numpy=True),
    }
    difference = np.abs(runners["declutr.Encoder"](texts[:256]) - runners["SentenceTransformer"](texts[:256])).max()
    print(f"{len(texts)} STS-B sentences, batch {args.batch_size}, {args.repeats} repetitions, "
          f"{torch.get_num_threads()} torch threads, load average {os.getloadavg()[0]:.1f}; "
          f"max |difference| of the vectors: {difference:.1e}")
    for runner in runners.values():  # warm-up
        runner(texts[:256])
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for repeat in range(args.repeats):
        names = list(runners) if repeat % 2 == 0 else list(reversed(runners))
        for name in names:
            rates[name].append(timed(runners[name], texts))
        print(f"  repetition {repeat + 1}: " + ", ".join(f"{n} {rates[n][-1]:,.0f}/s" for n in runners), flush=True)
    for name, values in rates.items():
        print(f"{name:<20} median {statistics.median(values):8,.0f} sentences/s  (min {min(values):,.0f}, "
              f"max {max(values):,.0f})")
    ratios = [a / b for a, b in zip(rates["declutr.Encoder"], rates["SentenceTransformer"])]
    print(f"ratio declutr / sentence-transformers: median {statistics.median(ratios):.3f} "
          f"(per repetition: {', '.join(f'{r:.2f}' for r in ratios)})")


if __name__ == "__main__":
    main()
