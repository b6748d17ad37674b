"""Batched embedding returns input order and equals one-at-a-time embedding."""

import torch

from declutr.embedding import embed_texts
from declutr.model.encoder import load_masked_lm
from declutr.model.pooling import mean_pool
from declutr.resolvers import _minilm_path


def test_sorted_batches_equal_single_texts_in_input_order(tokenizer):
    model = load_masked_lm(_minilm_path())
    texts = ["a short one", "a considerably longer sentence with many more words in it than the others", "mid length text",
             "x", "another sentence of middling size here"]
    batched = embed_texts(model.base_model, tokenizer, texts, batch_size=2)
    assert model.training, "train mode is restored after embedding"
    model.eval()
    for row, text in zip(batched, texts):
        enc = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            single = mean_pool(model.base_model(**enc).last_hidden_state, enc["attention_mask"])[0]
        assert torch.allclose(row, single, atol=1e-5)
