"""A WordPiece vocabulary learnt from a corpus: BERT's pipeline, saved as a model source, and the unigram entropy."""

from collections import Counter

from transformers import AutoConfig

from declutr.data.corpus_tokenizer import (
    SPECIAL_TOKENS,
    save_model_source,
    token_counts,
    train_wordpiece,
)
from declutr.tokenizer import load_tokenizer, special_token_template
from tests.helpers.paths import STATE_UNION

TEXTS = [path.read_text(encoding="utf-8", errors="replace") for path in sorted(STATE_UNION.glob("*.txt"))[:12]]


def test_the_vocabulary_is_learnt_from_the_texts_uncased_with_bert_special_tokens(tmp_path):
    tokenizer = train_wordpiece(TEXTS, vocab_size=600)
    assert len(tokenizer) <= 600 and all(token in tokenizer.get_vocab() for token in SPECIAL_TOKENS)
    ids = tokenizer("The Congress", add_special_tokens=False)["input_ids"]
    assert ids == tokenizer("the congress", add_special_tokens=False)["input_ids"]  # uncased
    assert tokenizer.decode(ids) == "the congress"
    assert tokenizer.unk_token_id not in ids  # words of the corpus are spelt from its pieces
    save_model_source(tokenizer, tmp_path / "wp")
    loaded = load_tokenizer(tmp_path / "wp")
    assert loaded.get_vocab() == tokenizer.get_vocab()
    prefix, suffix = special_token_template(loaded)
    assert prefix.tolist() == [loaded.cls_token_id] and suffix.tolist() == [loaded.sep_token_id]
    config = AutoConfig.from_pretrained(tmp_path / "wp")
    assert config.model_type == "bert" and config.vocab_size == len(loaded) and config.pad_token_id == loaded.pad_token_id


def test_token_counts_count_every_token_of_every_text_without_specials():
    tokenizer = train_wordpiece(TEXTS, vocab_size=600)
    counts = token_counts(tokenizer, TEXTS[:3], batch=2)
    expected = Counter(i for text in TEXTS[:3] for i in tokenizer(text, add_special_tokens=False)["input_ids"])
    assert counts == expected and tokenizer.cls_token_id not in counts
