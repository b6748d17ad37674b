"""Batched sentence embedding: sort by length, pad per batch, mean-pool, restore input order."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from declutr.model.pooling import mean_pool


@torch.inference_mode()
def embed_texts(
    body: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
) -> torch.Tensor:
    """Mean-pooled embeddings ``(len(texts), hidden)`` (float32, CPU) in the order of ``texts``.

    ``body`` is a transformer returning ``last_hidden_state``. Texts are tokenised once, sorted by
    length so each batch pads little, and truncated to ``max_length`` (default: the tokenizer's limit).
    The module is put in eval mode for the call and restored afterwards.
    """
    max_length = max_length or min(tokenizer.model_max_length, 512)
    encoded = tokenizer(list(texts), truncation=True, max_length=max_length, return_attention_mask=False)["input_ids"]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]), reverse=True)
    device = next(body.parameters()).device
    was_training = body.training
    body.eval()
    out = torch.empty(len(texts), body.config.hidden_size, dtype=torch.float32)
    try:
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            batch = tokenizer.pad({"input_ids": [encoded[i] for i in rows]}, return_tensors="pt")
            batch = {k: v.to(device) for k, v in batch.items()}
            hidden = body(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state
            out[rows] = mean_pool(hidden, batch["attention_mask"]).float().cpu()
    finally:
        body.train(was_training)
    return out
