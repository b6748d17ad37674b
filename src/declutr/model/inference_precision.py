"""Inference precision: float32, or bfloat16 autocast where the hardware computes bfloat16 natively (CUDA GPUs of
compute capability 8.0 and above; CPUs with AMX or AVX512-BF16, where it embeds about 2x faster). Pooling and
everything after it stay float32."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext

import torch

PRECISIONS = ("auto", "float32", "bfloat16")


def native_bf16(device: torch.device) -> bool:
    """Whether ``device`` multiplies bfloat16 matrices in hardware (elsewhere autocast emulates it, slowly)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        checks = [getattr(torch.cpu, name, None) for name in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
        return any(check is not None and check() for check in checks)
    return False


def resolve(precision: str, device: torch.device) -> str:
    """``"float32"`` or ``"bfloat16"``: ``auto`` takes bfloat16 where it is native to ``device``."""
    if precision == "auto":
        return "bfloat16" if native_bf16(device) else "float32"
    return precision


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The context to run the encoder in at ``precision`` (``"float32"`` or ``"bfloat16"``, as :func:`resolve`
    gives)."""
    if precision == "bfloat16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()
