"""The machine's practical matrix-product peak: the best TFLOP/s of square ``torch.matmul`` at a few sizes, per
dtype. The denominator for a training step's FLOP rate (``benchmarks/train_step.py`` prints that rate).

    python benchmarks/matmul_peak.py [--device cpu|cuda] [--sizes 1024 2048 4096] [--dtypes float32 bfloat16]
        [--seconds 3]

Each (dtype, size) runs products back to back for about ``--seconds`` after one warm-up product and reports
``2 n^3`` FLOPs per product over the elapsed time (CUDA synchronised). A dtype the hardware has no units for is
emulated and shows up as a small number: that is the point (bf16 on a CPU without AMX or AVX512-BF16).
"""

from __future__ import annotations

import argparse
import time

import torch
from training_harness import command_line, machine, synchronize


def rate(size: int, dtype: torch.dtype, device: str, seconds: float) -> float:
    """TFLOP/s of ``size`` x ``size`` products in ``dtype`` on ``device`` over about ``seconds``."""
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)
    torch.matmul(a, b)  # warm-up: kernel selection, allocation
    synchronize()
    count, start = 0, time.perf_counter()
    while True:
        torch.matmul(a, b)
        count += 1
        if count % 4 == 0:
            synchronize()
            elapsed = time.perf_counter() - start
            if elapsed >= seconds:
                return 2 * size**3 * count / elapsed / 1e12


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 2048, 4096])
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    print(f"{command_line()}\n{machine()}\n")
    print("dtype      " + "  ".join(f"{n:>6}" for n in args.sizes) + "    best (TFLOP/s)")
    for name in args.dtypes:
        rates = [rate(n, getattr(torch, name), args.device, args.seconds) for n in args.sizes]
        print(f"{name:<10} " + "  ".join(f"{r:6.3f}" for r in rates) + f"    {max(rates):.3f}")


if __name__ == "__main__":
    main()
