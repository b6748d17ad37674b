"""The context-free MLM loss: the closed form against the conditional entropy of simulated BERT masking."""

import numpy as np
import pytest
import torch

from declutr.data.collate import mask_tokens
from declutr.data.mlm_reference import context_free_loss
from declutr.data.token_shards import entropy_of_counts


def test_the_closed_form_matches_the_best_predictor_of_simulated_masking():
    vocab = 12
    counts = np.array([0, 0, 400, 250, 120, 80, 60, 40, 25, 15, 8, 2])  # ids 0-1 never occur (like special tokens)
    generator = torch.Generator().manual_seed(0)
    answers = torch.multinomial(torch.tensor(counts, dtype=torch.float64), 2_000_000, replacement=True,
                                generator=generator).view(1000, 2000)
    inputs, labels = mask_tokens(answers, torch.ones_like(answers, dtype=torch.bool), mask_id=0, vocab_size=vocab,
                                 probability=1.0, generator=generator)  # every token chosen, as the loss counts them
    pairs = np.zeros((vocab, vocab))  # (input seen, answer): the best context-free predictor is their posterior
    np.add.at(pairs, (inputs.flatten().numpy(), labels.flatten().numpy()), 1)
    posterior = pairs / pairs.sum(axis=1, keepdims=True).clip(min=1)
    simulated = -(pairs[pairs > 0] * np.log(posterior[pairs > 0])).sum() / pairs.sum()
    assert context_free_loss(counts, vocab) == pytest.approx(simulated, abs=2e-3)


def test_it_lies_below_the_unigram_entropy_by_most_of_the_visible_share():
    counts = np.random.default_rng(0).zipf(1.3, 50_000) % 8192
    counts = np.bincount(counts, minlength=8192)
    entropy = entropy_of_counts(counts)
    loss = context_free_loss(counts, 8192)
    assert 0.8 * entropy < loss < entropy  # copying helps on the visible 20%, at most all of it
    assert context_free_loss(counts, 8192, mask_share=1.0, random_share=0.0) == pytest.approx(entropy)  # all masked
    assert context_free_loss(counts, 8192, mask_share=0.8, random_share=0.0) == pytest.approx(0.8 * entropy)  # 20% kept
