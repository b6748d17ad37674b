"""Batched sentence embedding: sort by length, pad per batch, mean-pool, restore input order.

Texts longer than the model's window are truncated (``long_texts="truncate"``, what training's evaluation
and sentence-transformers do) or cut into consecutive windows whose embeddings are averaged, weighted by
their token counts (``long_texts="chunk"``): that is the mean over every token of every window.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from tqdm.auto import tqdm

from declutr.errors import DeclutrConfigError
from declutr.model.pooling import mean_pool
from declutr.tokenizer import pad, special_token_template

LONG_TEXTS = ("truncate", "chunk")


def window_length(tokenizer, max_length: int | None = None) -> int:
    """Tokens per sequence, special tokens included: ``max_length`` or the tokenizer's limit (at most 512)."""
    return int(max_length or min(tokenizer.model_max_length, 512))


def _sequences(tokenizer, texts: list[str], window: int, long_texts: str) -> tuple[list[list[int]], list[int]]:
    """Token ids of every sequence to embed and, for each, the index of the text it belongs to."""
    if long_texts not in LONG_TEXTS:
        raise DeclutrConfigError(f"long_texts={long_texts!r} is not an option: use 'truncate' or 'chunk'.")
    if long_texts == "truncate":
        ids = tokenizer(texts, truncation=True, max_length=window, return_attention_mask=False,
                        return_token_type_ids=False)["input_ids"]
        return ids, list(range(len(texts)))
    prefix, suffix = (ids.tolist() for ids in special_token_template(tokenizer))
    step = window - len(prefix) - len(suffix)
    if step < 1:
        raise DeclutrConfigError(f"max_length={window} leaves no room for text next to the special tokens: raise it.")
    plain = tokenizer(texts, add_special_tokens=False, return_attention_mask=False, return_token_type_ids=False,
                      verbose=False)["input_ids"]  # verbose=False: long inputs are expected here, no warning
    sequences, owners = [], []
    for owner, ids in enumerate(plain):
        for start in range(0, max(len(ids), 1), step):  # an empty text still gets one (special-tokens-only) window
            sequences.append(prefix + ids[start : start + step] + suffix)
            owners.append(owner)
    return sequences, owners


@torch.inference_mode()
def embed_texts(
    body: torch.nn.Module,
    tokenizer,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int | None = None,
    long_texts: str = "truncate",
    show_progress: bool = False,
) -> torch.Tensor:
    """Mean-pooled embeddings ``(len(texts), hidden)`` (float32, CPU) in the order of ``texts``.

    ``body`` is a transformer returning ``last_hidden_state`` ``(batch, seq, hidden)``, in any dtype and on
    any device. Texts are tokenised once and sorted by length so each batch pads little; ``max_length``
    is the window in tokens (default :func:`window_length`); ``long_texts`` is ``"truncate"`` or ``"chunk"``
    (see the module docstring). The module is put in eval mode for the call and restored afterwards.
    """
    texts = list(texts)
    if not texts:  # tokenizers fail on an empty batch
        return torch.empty(0, body.config.hidden_size)
    sequences, owners = _sequences(tokenizer, texts, window_length(tokenizer, max_length), long_texts)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]), reverse=True)
    device = next(body.parameters()).device
    pooled = torch.empty(len(sequences), body.config.hidden_size, dtype=torch.float32)
    counts = torch.tensor([len(s) for s in sequences], dtype=torch.float32)
    was_training = body.training
    body.eval()
    try:
        for start in tqdm(range(0, len(order), batch_size), desc="Embedding", unit="batch", disable=not show_progress):
            rows = order[start : start + batch_size]
            ids, mask = pad([sequences[i] for i in rows], tokenizer.pad_token_id)
            ids, mask = ids.to(device), mask.to(device)
            hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled[rows] = mean_pool(hidden.float(), mask).cpu()
    finally:
        body.train(was_training)
    if long_texts == "truncate":
        return pooled
    owner_index = torch.tensor(owners, dtype=torch.long)
    sums = torch.zeros(len(texts), pooled.shape[1]).index_add_(0, owner_index, pooled * counts[:, None])
    return sums / torch.zeros(len(texts)).index_add_(0, owner_index, counts)[:, None]
