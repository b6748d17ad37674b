"""Batched embedding: input order, equality with one-at-a-time embedding, and chunk-and-average of long texts."""

import pytest
import torch

from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError
from declutr.model.embedding import embed_texts
from declutr.model.huggingface import load_masked_lm
from declutr.model.pooling import mean_pool

TEXTS = ["a short one", "a considerably longer sentence with many more words in it than the others", "mid length text",
         "x", "another sentence of middling size here"]


@pytest.fixture(scope="module")
def model():
    return load_masked_lm(_minilm_path())


def test_sorted_batches_equal_single_texts_in_input_order(model, tokenizer):
    model.train()  # the module's model is shared: whatever mode another test left it in
    batched = embed_texts(model.base_model, tokenizer, TEXTS, batch_size=2)
    assert model.training, "train mode is restored after embedding"
    model.eval()
    for row, text in zip(batched, TEXTS):
        enc = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            single = mean_pool(model.base_model(**enc).last_hidden_state, enc["attention_mask"])[0]
        assert torch.allclose(row, single, atol=1e-5)
    model.train()


def test_chunking_changes_nothing_for_texts_that_fit(model, tokenizer):
    truncated = embed_texts(model.base_model, tokenizer, TEXTS, batch_size=3)
    chunked = embed_texts(model.base_model, tokenizer, TEXTS, batch_size=3, long_texts="chunk")
    assert torch.allclose(truncated, chunked, atol=1e-5)


def test_chunked_long_text_is_the_mean_over_all_tokens_of_all_windows(model, tokenizer):
    long_text = " ".join(TEXTS * 3)  # ~60 tokens: windows of 16 tokens = [CLS] + 14 tokens + [SEP]
    ids = tokenizer(long_text, add_special_tokens=False)["input_ids"]
    windows = [[tokenizer.cls_token_id, *ids[i : i + 14], tokenizer.sep_token_id] for i in range(0, len(ids), 14)]
    assert len(windows) >= 4 and len(windows[-1]) < 16  # a short last window weighs less
    model.eval()
    with torch.no_grad():
        hidden = torch.cat([model.base_model(input_ids=torch.tensor([w])).last_hidden_state[0] for w in windows])
    expected = hidden.mean(0)  # (hidden,): every token of every window counts once

    chunked, truncated = embed_texts(model.base_model, tokenizer, [long_text, "x"], max_length=16, long_texts="chunk")
    assert torch.allclose(chunked, expected, atol=1e-5)
    assert not torch.allclose(truncated, embed_texts(model.base_model, tokenizer, [long_text], max_length=16)[0])
    assert torch.allclose(embed_texts(model.base_model, tokenizer, ["x"])[0], truncated, atol=1e-5)
    model.train()  # as the fixture made it, for the tests that share it


def test_no_texts_give_an_empty_matrix(model, tokenizer):
    assert embed_texts(model.base_model, tokenizer, []).shape == (0, 384)


def test_unknown_long_text_option_is_refused(model, tokenizer):
    with pytest.raises(DeclutrConfigError, match="long_texts='split'.*'truncate' or 'chunk'"):
        embed_texts(model.base_model, tokenizer, TEXTS, long_texts="split")
