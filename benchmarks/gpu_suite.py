"""The GPU benchmark in one call: tokens/s, model FLOPs utilisation and peak memory of the real training step for a
DistilRoBERTa-sized and a RoBERTa-base-sized encoder at the paper's spans (32-512 tokens).

    PYTHONPATH=src python benchmarks/gpu_suite.py [--device cuda] [--peak-tflops 989] [--steps 10] [--warmup 3]
        [--only NAME ...] [--out benchmarks/results/gpu_suite] [OVERRIDE ...]

Each case is a ``benchmarks/train_step.py`` configuration (real batches from the prepared corpus, the real
module under a Lightning Trainer, a fresh process each): both sizes in fp32 and bf16-mixed, with and without
MLM; then for the base size in bf16 with MLM, ``model.compile=true``, and 128 anchors a step with GradCache at
two chunk sizes. The encoders are BERT-architecture with the MiniLM tokenizer, random weights and RoBERTa's
shapes (6 or 12 layers x 768, 12 heads, 3,072 FFN, a 50,265-token vocabulary); the architecture differences
(token types, position offset) cost nothing measurable. With the default batch (16 documents x 2 anchors x 2
positives) and about 8 minutes on an H100-class GPU for the whole suite.

MFU = model FLOPs per second / ``--peak-tflops`` (default from the GPU's name: bf16 dense peak), with model FLOPs
per non-padding token = 6 x non-embedding parameters + 12 x layers x hidden x mean sequence length (the
PaLM-paper formula: forward and backward, attention included); the MLM head's decoder is not counted, so MFU
is slightly underestimated with MLM on. Padding the encoder computes is not useful work and is not counted.
Writes ``<out>.json`` and ``<out>.md`` (the table), adding each case as it finishes.

On a CPU (``--device cpu``, the tiny model with ``--tiny``) it checks the suite end to end, not the numbers.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from train_step import run_in_fresh_process
from training_harness import benchmark_overrides, command_line, machine

SIZES = {  # RoBERTa's shapes; the tokenizer (and so the data) is MiniLM's
    "distilroberta": {"layers": 6, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 50265},
    "roberta-base": {"layers": 12, "hidden": 768, "heads": 12, "ffn": 3072, "vocab": 50265},
    "tiny": {"layers": 2, "hidden": 32, "heads": 2, "ffn": 64, "vocab": 30522},  # --tiny: the CPU check
}
PAPER_SPANS = ["data.sampler.min_span_len=32", "data.sampler.max_span_len=510"]  # + 2 special tokens = 512
TINY_SPANS = ["data.sampler.min_span_len=8", "data.sampler.max_span_len=32"]
PEAK_BF16_TFLOPS = {"H200": 989, "H100": 989, "A100": 312, "L40S": 362, "L4": 121, "A10": 125}  # dense


def model_overrides(size: str) -> list[str]:
    shape = SIZES[size]
    base = "model.encoder.config_overrides"
    return ["model=tiny", f"{base}.num_hidden_layers={shape['layers']}", f"{base}.hidden_size={shape['hidden']}",
            f"{base}.num_attention_heads={shape['heads']}", f"{base}.intermediate_size={shape['ffn']}",
            f"+{base}.vocab_size={shape['vocab']}", f"+{base}.max_position_embeddings=512"]


def cases(large: str, small: str, large_batch: int = 64) -> list[tuple[str, str, list[str]]]:
    """``(name, size, overrides)``: the suite's configurations, in order (GradCache's with ``large_batch``
    documents a step, 2 anchors each)."""
    out = []
    for size in (small, large):
        for precision in ("32-true", "bf16-mixed"):
            for mlm in (1.0, 0.0):
                name = f"{size} {precision.split('-')[0]} {'MLM' if mlm else 'no MLM'}"
                out.append((name, size, [f"trainer.precision={precision}", f"model.mlm_weight={mlm}"]))
    best = ["trainer.precision=bf16-mixed", "model.mlm_weight=1.0"]
    out.append((f"{large} bf16 MLM compiled", large, [*best, "model.compile=true"]))
    for chunk in (32, 128):
        out.append((f"{large} bf16 MLM {2 * large_batch} anchors, GradCache {chunk}", large,
                    [*best, f"data.batch_size={large_batch}", f"model.grad_cache.chunk_size={chunk}"]))
    return out


def non_embedding_parameters(size: str) -> int:
    """Transformer layers (attention, FFN, layer norms) and the pooler: what 6N counts."""
    s = SIZES[size]
    h, f = s["hidden"], s["ffn"]
    layer = 4 * (h * h + h) + (h * f + f) + (f * h + h) + 2 * 2 * h
    return s["layers"] * layer + h * h + h


def model_tflops_per_s(size: str, result: dict) -> float:
    s = SIZES[size]
    mean_length = result["tokens_per_step"] / result["sequences"]
    per_token = 6 * non_embedding_parameters(size) + 12 * s["layers"] * s["hidden"] * mean_length
    return per_token * result["tokens_per_s"] / 1e12


def default_peak(device: str) -> float | None:
    if device != "cuda":
        return None
    import torch

    name = torch.cuda.get_device_name()
    return next((peak for key, peak in PEAK_BF16_TFLOPS.items() if key in name), None)


def markdown(rows: list[dict], peak: float | None) -> str:
    lines = ["| case | anchors | tokens/step | pad % | step ms | tokens/s | TFLOP/s | MFU % | peak MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r = row["result"]
        if "error" in r:
            lines.append(f"| {row['name']} | failed: {r['error']} |||||||| ")
            continue
        mfu = f"{100 * row['tflops'] / peak:.1f}" if peak else "n/a"
        lines.append(f"| {row['name']} | {r['anchors']} | {r['tokens_per_step']:,.0f} | {100 * r['padding']:.1f} | "
                     f"{r['step_ms']:,.1f} | {r['tokens_per_s']:,.0f} | {row['tflops']:.2f} | {mfu} | "
                     f"{r['peak_mib']:,.0f} |")
    lines.append("")
    lines.append(f"MFU against {peak} TFLOP/s (bf16 dense peak)." if peak else "No peak given: MFU not computed.")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("overrides", nargs="*", help="config overrides for every case")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cuda")
    parser.add_argument("--peak-tflops", type=float, help="the GPU's bf16 dense peak (default: from its name)")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per case")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (compilation, allocation)")
    parser.add_argument("--only", nargs="+", help="run only the cases whose name contains one of these")
    parser.add_argument("--tiny", action="store_true", help="the tiny model and short spans: a quick CPU check")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/gpu_suite"),
                        help="writes <out>.json and <out>.md")
    args = parser.parse_intermixed_args()
    large, small = ("tiny", "tiny") if args.tiny else ("roberta-base", "distilroberta")
    everything = cases(large, small, large_batch=24 if args.tiny else 64)  # the test corpus has 65 documents
    chosen = [c for c in everything if not args.only or any(key in c[0] for key in args.only)]
    if args.tiny:
        chosen = list({name: (name, size, o) for name, size, o in chosen}.values())  # both sizes are "tiny"
    peak = args.peak_tflops or default_peak(args.device)
    common = [*benchmark_overrides(args.device, None), *(TINY_SPANS if args.tiny else PAPER_SPANS),
              "data.batch_size=16", *args.overrides]
    print(f"{command_line()}\n{machine()}\n{len(chosen)} cases, {args.warmup} warm-up + {args.steps} timed steps each",
          flush=True)
    args.threads = None  # run_in_fresh_process's settings
    rows = []
    args.out.parent.mkdir(parents=True, exist_ok=True)
    for number, (name, size, overrides) in enumerate(chosen, 1):
        print(f"[{number}/{len(chosen)}] {name}", file=sys.stderr, flush=True)
        result = run_in_fresh_process([*common, *model_overrides(size), *overrides], args)
        tflops = model_tflops_per_s(size, result) if "error" not in result else None
        rows.append({"name": name, "size": size, "overrides": overrides, "result": result, "tflops": tflops,
                     "mfu": tflops / peak if tflops and peak else None})
        args.out.with_suffix(".json").write_text(json.dumps(
            {"command": command_line(), "machine": machine(), "common": common, "peak_tflops": peak, "cases": rows},
            indent=1) + "\n")
        args.out.with_suffix(".md").write_text(markdown(rows, peak) + "\n")
    print(markdown(rows, peak))


if __name__ == "__main__":
    main()
