"""Two-process (gloo, CPU) comparisons with one process: a free port, the tiny module without dropout, a
collated global batch and each rank's rows of it."""

import socket
from functools import partial

import numpy as np
import torch

from declutr.config.resolvers import _minilm_path
from declutr.data.collate import DeCLUTRCollator
from declutr.model.module import DeCLUTRModule
from declutr.tokenizer import load_tokenizer
from tests.helpers.model import TINY

A, P = 2, 2  # anchors per document, positives per anchor


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_module(mlm_weight: float, grad_cache: int | None = None, scale_fix: bool = True) -> DeCLUTRModule:
    torch.manual_seed(0)
    module = DeCLUTRModule(TINY, optimizer=partial(torch.optim.AdamW), mlm_weight=mlm_weight,
                           grad_cache={"chunk_size": grad_cache}, scale_fix=scale_fix)
    return module.eval()  # no dropout: the two computations must see identical activations


def global_batch(docs: int = 6) -> dict:
    rng = np.random.default_rng(0)
    span = lambda: rng.integers(1000, 20000, int(rng.integers(5, 40)))  # noqa: E731
    examples = [{"doc": f"d{i}", "shard": 0, "position": i, "skipped": {},
                 "anchors": [span() for _ in range(A)], "positives": [[span() for _ in range(P)] for _ in range(A)]}
                for i in range(docs)]
    torch.manual_seed(1)
    return DeCLUTRCollator(load_tokenizer(_minilm_path()), mlm_probability=0.15)(examples)


def rows(batch: dict, docs: slice) -> dict:
    """The part of a collated batch that holds documents ``docs`` (rows of anchors and of positives)."""
    a = slice(docs.start * A, docs.stop * A)
    p = slice(docs.start * A * P, docs.stop * A * P)
    part = {k: batch[k][a] for k in ("anchor_input_ids", "anchor_attention_mask", "mlm_labels")}
    part.update({k: batch[k][p] for k in ("positive_input_ids", "positive_attention_mask")})
    return {**part, "num_positives": P}


def gradients(module: DeCLUTRModule) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}
