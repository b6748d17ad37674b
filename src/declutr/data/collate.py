"""Collation: add special tokens, pad dynamically, and MLM-mask the anchors."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence
from typing import NotRequired, TypedDict

import numpy as np
import torch

from declutr.tokenizer import pad, special_token_template

MASK_SHARE, RANDOM_SHARE = 0.8, 0.1  # of the chosen tokens: [MASK], a random token; the rest (10%) stay as they are


def mask_tokens(
    input_ids: torch.Tensor,
    maskable: torch.Tensor,
    mask_id: int,
    vocab_size: int,
    probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT-style masking: choose ``probability`` of the ``maskable`` positions; 80% -> ``mask_id``,
    10% -> a random token, 10% unchanged. Returns ``(masked_ids, labels)``, labels ``-100`` where not
    chosen. ``input_ids`` and ``maskable`` are ``(batch, seq)``."""
    chosen = (torch.rand(input_ids.shape, generator=generator) < probability) & maskable
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    roll = torch.rand(input_ids.shape, generator=generator)
    masked = input_ids.clone()
    masked[chosen & (roll < MASK_SHARE)] = mask_id
    randomised = chosen & (roll >= MASK_SHARE) & (roll < MASK_SHARE + RANDOM_SHARE)
    masked[randomised] = torch.randint(vocab_size, input_ids.shape, generator=generator)[randomised]
    return masked, labels


class Batch(TypedDict):
    """What :class:`DeCLUTRCollator` yields and every consumer reads (module, datamodule, callbacks): one step's
    anchors, positives, MLM labels and data bookkeeping."""

    anchor_input_ids: torch.Tensor  # (n_anchors, La) int64, MLM-masked when masking
    anchor_attention_mask: torch.Tensor  # (n_anchors, La), 1 on real tokens
    mlm_labels: NotRequired[torch.Tensor]  # (n_anchors, La): the original id where masked, -100 elsewhere
    positive_input_ids: torch.Tensor  # (n_anchors * P, Lp): anchor i's positives at rows i*P .. i*P+P-1
    positive_attention_mask: torch.Tensor  # (n_anchors * P, Lp)
    num_positives: int  # P (0 for a sampler without positives)
    num_tokens: int  # non-pad tokens of the batch, anchors and positives
    skipped: Counter  # input skipped while reading, by (reason, file)
    docs: list[str]  # the documents' keys
    positions: list[tuple[int, int]]  # (shard, position) per document, for exact resuming


class DeCLUTRCollator:
    """Turns :class:`~declutr.data.stream.DocumentStream` examples into a batch.

    The batch is a :class:`Batch`; ``mlm_labels`` is there only when masking.

    The MLM masks are drawn from a generator seeded by ``seed`` and the batch's document keys, so a batch
    is masked the same way whichever worker collates it and whether or not the run was resumed.
    """

    def __init__(self, tokenizer, mlm_probability: float = 0.15, seed: int = 0) -> None:
        if tokenizer.pad_token_id is None:
            raise ValueError("The tokenizer has no pad token; set tokenizer.pad_token before training.")
        if mlm_probability and tokenizer.mask_token_id is None:
            raise ValueError("MLM needs a tokenizer with a mask token; set model.mlm_weight=0 to train without MLM.")
        self.tokenizer = tokenizer
        self.mlm_probability = mlm_probability
        self.seed = seed
        self.special_ids = torch.tensor(sorted(set(tokenizer.all_special_ids)), dtype=torch.long)
        self.prefix, self.suffix = special_token_template(tokenizer)

    def with_special_tokens(self, ids: np.ndarray) -> np.ndarray:
        return np.concatenate([self.prefix, ids, self.suffix])

    def _mask_generator(self, docs: Sequence[str]) -> torch.Generator:
        key = zlib.crc32("\n".join(docs).encode())
        return torch.Generator().manual_seed(int(np.random.SeedSequence([self.seed, key]).generate_state(1)[0]))

    def __call__(self, examples: Sequence[dict]) -> Batch:
        anchors = [self.with_special_tokens(a) for ex in examples for a in ex["anchors"]]
        positives = [self.with_special_tokens(p) for ex in examples for group in ex["positives"] for p in group]
        num_positives = next((len(ex["positives"][0]) for ex in examples if ex["positives"]), 0)
        skipped = sum((Counter(ex["skipped"]) for ex in examples), Counter())
        anchor_ids, anchor_mask = pad(anchors, self.tokenizer.pad_token_id)
        positive_ids, positive_mask = pad(positives, self.tokenizer.pad_token_id)
        batch: Batch = {  # type: ignore[typeddict-item]  (anchor_input_ids is set below, after masking)
            "anchor_attention_mask": anchor_mask,
            "positive_input_ids": positive_ids,
            "positive_attention_mask": positive_mask,
            "num_positives": num_positives,
            "num_tokens": int(anchor_mask.sum() + positive_mask.sum()),
            "skipped": skipped,
            "docs": [ex["doc"] for ex in examples if ex["doc"] is not None],
            "positions": [(ex["shard"], ex["position"]) for ex in examples if ex["doc"] is not None],
        }
        if self.mlm_probability:
            maskable = anchor_mask.bool() & ~torch.isin(anchor_ids, self.special_ids)
            anchor_ids, batch["mlm_labels"] = mask_tokens(
                anchor_ids, maskable, self.tokenizer.mask_token_id, len(self.tokenizer), self.mlm_probability,
                generator=self._mask_generator(batch["docs"]),
            )
        batch["anchor_input_ids"] = anchor_ids
        return batch
