"""Collation: special tokens, dynamic padding, positives layout and the MLM masking rules."""

from collections import Counter

import numpy as np
import torch

from declutr.data.collate import DeCLUTRCollator, mask_tokens


def _example(rng, lengths_a, lengths_p, doc="d"):
    ids = lambda n: rng.integers(1000, 20000, n)  # noqa: E731 (ordinary word pieces, no special ids)
    return {"doc": doc, "shard": 0, "position": 0, "anchors": [ids(n) for n in lengths_a],
            "positives": [[ids(n) for n in group] for group in lengths_p], "skipped": Counter({("too_short", "f"): 1})}


def test_layout_special_tokens_and_padding(tokenizer):
    rng = np.random.default_rng(0)
    examples = [_example(rng, [5, 9], [[3, 4], [6, 2]]), _example(rng, [7, 4], [[5, 5], [1, 8]])]
    batch = DeCLUTRCollator(tokenizer, mlm_probability=0.0)(examples)
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    assert batch["anchor_input_ids"].shape == (4, 9 + 2) and batch["positive_input_ids"].shape == (8, 8 + 2)
    assert "mlm_labels" not in batch
    # anchor i's P positives are rows i*P .. i*P+P-1, in document order
    assert batch["positive_attention_mask"].sum(1).tolist() == [n + 2 for n in [3, 4, 6, 2, 5, 5, 1, 8]]
    for row, example_anchor in zip(batch["anchor_input_ids"], [a for e in examples for a in e["anchors"]]):
        n = len(example_anchor)
        assert row[0] == cls and row[n + 1] == sep and (row[n + 2 :] == pad).all()
        assert row[1 : n + 1].tolist() == example_anchor.tolist()
    assert batch["num_tokens"] == sum(n + 2 for n in [5, 9, 7, 4, 3, 4, 6, 2, 5, 5, 1, 8])
    assert batch["skipped"] == Counter({("too_short", "f"): 2}) and batch["num_positives"] == 2


def test_masking_never_touches_special_or_padding_and_labels_only_chosen(tokenizer):
    torch.manual_seed(0)
    rng = np.random.default_rng(1)
    examples = [_example(rng, [int(n) for n in rng.integers(20, 120, 2)], [[30], [30]]) for _ in range(32)]
    batch = DeCLUTRCollator(tokenizer, mlm_probability=0.15)(examples)
    clean = DeCLUTRCollator(tokenizer, mlm_probability=0.0)(examples)["anchor_input_ids"]
    labels, masked, attention = batch["mlm_labels"], batch["anchor_input_ids"], batch["anchor_attention_mask"]
    special = torch.isin(clean, torch.tensor(tokenizer.all_special_ids)) | (attention == 0)
    chosen = labels != -100
    assert not (chosen & special).any(), "special and pad tokens are never chosen"
    assert torch.equal(masked[~chosen], clean[~chosen]), "unchosen tokens are untouched"
    assert torch.equal(labels[chosen], clean[chosen]), "labels hold the original ids"
    share = chosen.sum() / (~special).sum()
    assert abs(share - 0.15) < 0.02
    replaced = masked[chosen] == tokenizer.mask_token_id
    kept = masked[chosen] == clean[chosen]
    assert abs(replaced.float().mean() - 0.8) < 0.05
    assert abs(kept.float().mean() - 0.1) < 0.04  # (a random token can also equal the original, rarely)


def test_mask_tokens_statistics_on_a_large_grid():
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(5, 1000, (200, 500), generator=gen)
    maskable = torch.ones_like(ids, dtype=torch.bool)
    maskable[:, :10] = False
    masked, labels = mask_tokens(ids, maskable, mask_id=3, vocab_size=1000, probability=0.15, generator=gen)
    chosen = labels != -100
    assert not chosen[:, :10].any()
    assert abs(chosen.float().sum() / maskable.sum() - 0.15) < 0.005
    changed_randomly = chosen & (masked != 3) & (masked != ids)
    assert abs(changed_randomly.sum() / chosen.sum() - 0.1 * 999 / 1000) < 0.01


def test_masks_depend_on_the_documents_and_seed_not_on_the_global_rng(tokenizer):
    rng = np.random.default_rng(2)
    examples = [_example(rng, [60, 80], [[30], [30]], doc=f"shard.jsonl.gz:{i}") for i in range(4)]
    labels = []
    for global_seed, seed, docs in [(0, 7, None), (1, 7, None), (0, 8, None), (0, 7, "other")]:
        torch.manual_seed(global_seed)
        batch_examples = [dict(e, doc=f"{docs}:{i}") for i, e in enumerate(examples)] if docs else examples
        labels.append(DeCLUTRCollator(tokenizer, mlm_probability=0.15, seed=seed)(batch_examples)["mlm_labels"])
    assert torch.equal(labels[0], labels[1]), "the worker's global RNG state does not change the masks"
    assert not torch.equal(labels[0], labels[2]), "another seed masks differently"
    assert not torch.equal(labels[0], labels[3]), "other documents are masked differently"
