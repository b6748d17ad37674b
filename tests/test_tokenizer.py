"""Tokenizer helpers: the special tokens around a sequence, padding, a document's ids and the tokenizer's identity."""

import copy

import pytest
import torch

from declutr.errors import DeclutrConfigError
from declutr.tokenizer import load_tokenizer, pad, special_token_template, tokenize_document, tokenizer_identity


def test_the_template_is_what_the_tokenizer_puts_around_a_text(tokenizer):
    prefix, suffix = special_token_template(tokenizer)
    assert prefix.tolist() == [tokenizer.cls_token_id] and suffix.tolist() == [tokenizer.sep_token_id]
    text = "Sentence embeddings from unlabelled text."
    ids = tokenize_document(tokenizer, text)
    assert [*prefix.tolist(), *ids, *suffix.tolist()] == tokenizer(text)["input_ids"]


def test_pad_right_pads_to_the_longest_and_masks_only_real_tokens():
    ids, mask = pad([[5, 6, 7], [8], []], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0], [0, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0], [0, 0, 0]]
    assert ids.dtype == mask.dtype == torch.int64


def test_a_document_is_tokenised_whole_without_special_tokens(tokenizer):
    text = "word " * 2_000  # far beyond the model's 512 positions: stored ids are cut into spans later
    ids = tokenize_document(tokenizer, text)
    assert len(ids) == 2_000 and tokenizer.cls_token_id not in ids


def test_identity_depends_on_the_vocabulary_not_on_where_the_tokenizer_lives(tokenizer):
    identity = tokenizer_identity(tokenizer)
    moved = copy.deepcopy(tokenizer)
    moved.name_or_path = "/somewhere/else"
    assert tokenizer_identity(moved)["vocab_sha256"] == identity["vocab_sha256"]
    grown = copy.deepcopy(tokenizer)
    grown.add_tokens(["declutrnewtoken"])
    assert tokenizer_identity(grown)["vocab_sha256"] != identity["vocab_sha256"]
    assert tokenizer_identity(grown)["vocab_size"] == identity["vocab_size"] + 1


def test_a_folder_without_tokenizer_files_is_refused_naming_the_setting(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(DeclutrConfigError, match=r"model.encoder.name_or_path=.* holds no tokenizer .*config.json.*"
                                                 r"task=tokenizer"):
        load_tokenizer(tmp_path, setting="model.encoder.name_or_path")
