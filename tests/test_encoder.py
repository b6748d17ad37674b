"""``Encoder``: loading, input order under length sorting, options, and clear errors for bad sources."""

import inspect

import numpy as np
import pytest
import torch

from declutr import Encoder
from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError
from declutr.model.pooling import mean_pool

TEXTS = ["The cat sat on the mat.", "A considerably longer sentence, with many more words in it than any other here.",
         "Hi", "", "Stocks fell sharply on Monday after the report.", "A man is playing a guitar."]


@pytest.fixture(scope="module")
def encoder():
    return Encoder(_minilm_path(), device="cpu")


def test_embeddings_equal_a_plain_forward_and_keep_input_order(encoder, tokenizer):
    vectors = encoder.encode(TEXTS, batch_size=2)  # length sorting puts them in another order internally
    assert isinstance(vectors, np.ndarray) and vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384)
    for row, text in zip(vectors, TEXTS):
        batch = tokenizer(text, return_tensors="pt")
        with torch.no_grad():
            single = mean_pool(encoder.body(**batch).last_hidden_state, batch["attention_mask"])[0]
        np.testing.assert_allclose(row, single.numpy(), atol=1e-5)
    permutation = [3, 0, 5, 1, 4, 2]
    np.testing.assert_allclose(encoder.encode([TEXTS[i] for i in permutation], batch_size=4), vectors[permutation],
                               atol=1e-5)


def test_single_text_tensor_output_and_normalisation(encoder):
    single = encoder.encode("The cat sat on the mat.", convert_to_tensor=True)
    assert isinstance(single, torch.Tensor) and single.shape == (384,)
    unit = encoder.encode(TEXTS, normalize_embeddings=True)
    np.testing.assert_allclose(np.linalg.norm(unit, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(unit[0], (single / single.norm()).numpy(), atol=1e-5)


def test_long_text_truncated_by_default_or_chunked_and_averaged():
    encoder = Encoder(_minilm_path(), device="cpu", max_length=32)
    long_text = " ".join(TEXTS * 4)  # ~100 tokens: 4 windows of 32
    head = encoder.tokenizer.decode(encoder.tokenizer(long_text, add_special_tokens=False)["input_ids"][:30])
    truncated, chunked = encoder.encode([long_text, long_text], long_texts="truncate"), \
        encoder.encode([long_text], long_texts="chunk")
    np.testing.assert_allclose(truncated[0], encoder.encode(head), atol=1e-5)  # the first window only
    cosine = float(truncated[0] @ chunked[0] / np.linalg.norm(truncated[0]) / np.linalg.norm(chunked[0]))
    assert 0.3 < cosine < 0.999, "the average of all windows differs from the first window alone"
    np.testing.assert_allclose(encoder.encode(TEXTS, long_texts="chunk"), encoder.encode(TEXTS), atol=1e-5)


def test_bfloat16_is_close_to_float32(encoder):
    half = Encoder(_minilm_path(), device="cpu", dtype="bfloat16").encode(TEXTS)
    full = encoder.encode(TEXTS)
    assert half.dtype == np.float32
    cosines = (half * full).sum(1) / np.linalg.norm(half, axis=1) / np.linalg.norm(full, axis=1)
    assert cosines.min() > 0.99


@pytest.mark.parametrize(
    "source, message",
    [
        ("/nonexistent/run", r"/nonexistent/run does not exist; pass a run folder"),
        ("{tmp}", r"holds no model; pass a run folder \(with model/\), a .ckpt file"),
        ("{tmp}/notes.txt", r"notes.txt is a file but not a .ckpt checkpoint"),
        ("{tmp}/missing.ckpt", r"Checkpoint .*missing.ckpt does not exist"),
        ("{tmp}/random.ckpt", r"Cannot read checkpoint .*random.ckpt .*corrupt or cut short"),
        ("no-such-org/no-such-model", r"Cannot load 'no-such-org/no-such-model'.*network access"),
    ],
)
def test_bad_sources_name_the_file_and_the_fix(tmp_path, source, message):
    (tmp_path / "notes.txt").write_text("not a model")
    (tmp_path / "random.ckpt").write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    with pytest.raises(DeclutrConfigError, match=message):
        Encoder(source.format(tmp=tmp_path), device="cpu")


def test_bad_options_are_refused(encoder):
    with pytest.raises(DeclutrConfigError, match="dtype='half precision'"):
        Encoder(_minilm_path(), device="cpu", dtype="half precision")
    with pytest.raises(DeclutrConfigError, match="long_texts='drop'"):
        encoder.encode(TEXTS, long_texts="drop")


def test_word_embedding_baseline_averages_the_input_word_vectors(encoder, tokenizer):
    baseline = Encoder(_minilm_path(), device="cpu", representation="word_embeddings")
    vectors = baseline.encode(TEXTS[:3])
    table = encoder.model.get_input_embeddings().weight.detach()
    for row, text in zip(vectors, TEXTS[:3]):
        ids = tokenizer(text)["input_ids"]  # [CLS] ... [SEP], pooled like every other representation
        np.testing.assert_allclose(row, table[ids].mean(0).numpy(), atol=1e-5)
    assert not np.allclose(vectors, encoder.encode(TEXTS[:3]), atol=1e-2)


def test_random_init_baseline_keeps_the_architecture_and_is_seeded(encoder):
    torch.manual_seed(3)
    first = Encoder(_minilm_path(), device="cpu", random_init=True)
    torch.manual_seed(3)
    again = Encoder(_minilm_path(), device="cpu", random_init=True)
    assert first.model.config.to_dict() == encoder.model.config.to_dict()
    np.testing.assert_allclose(first.encode(TEXTS[:2]), again.encode(TEXTS[:2]), atol=1e-6)
    assert not torch.equal(first.model.get_input_embeddings().weight, encoder.model.get_input_embeddings().weight)
    with pytest.raises(DeclutrConfigError, match="representation='cls' is not an option: use one of last_layer"):
        Encoder(_minilm_path(), device="cpu", representation="cls")


def test_encode_takes_sentence_transformers_argument_names(encoder):
    """Code written for SentenceTransformer.encode runs on an Encoder: every keyword argument has ST's name (the
    texts come first, positionally; ST itself has called them ``sentences`` and ``inputs``)."""
    from sentence_transformers import SentenceTransformer

    keywords = lambda f: list(inspect.signature(f).parameters)[2:]  # noqa: E731 (after self and the texts)
    assert set(keywords(type(encoder).encode)) - {"long_texts"} <= set(keywords(SentenceTransformer.encode))
    vectors = encoder.encode(TEXTS[:2], batch_size=2, show_progress_bar=False, convert_to_numpy=False,
                             normalize_embeddings=True)
    assert isinstance(vectors, torch.Tensor) and torch.allclose(vectors.norm(dim=1), torch.ones(2), atol=1e-5)
