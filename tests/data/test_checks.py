"""The start-up checks of the data settings: each refuses its bad case naming the setting and the fix, and lets the
good one through."""

import json

import pytest

from declutr.data.checks import check_corpus_has_usable_document, check_objective_fits_sampler, check_spans_fit_model
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.data.spans import SpanSampler
from declutr.data.windows import WindowSampler
from declutr.errors import DeclutrConfigError
from tests.helpers.model import TINY

# TINY has MiniLM's 512 positions (BERT's: no padding offset); its tokenizer adds 2 special tokens: 510 for a span.
# ROBERTA_LIKE: the same tokenizer on a RoBERTa-style architecture with 258 position embeddings.
ROBERTA_LIKE = {**TINY, "config_overrides": {**TINY["config_overrides"], "model_type": "roberta-prelayernorm",
                                             "max_position_embeddings": 258}}


@pytest.mark.parametrize("sampler", [SpanSampler(max_span_len=510), WindowSampler(window_len=510)], ids=repr)
def test_the_longest_span_that_fits_the_model_passes(tokenizer, sampler):
    check_spans_fit_model(sampler, tokenizer, TINY)


@pytest.mark.parametrize("sampler, setting", [(SpanSampler(max_span_len=511), "data.sampler.max_span_len"),
                                              (WindowSampler(window_len=511), "data.sampler.window_len")], ids=repr)
def test_a_span_too_long_for_the_model_names_the_sampler_s_own_setting(tokenizer, sampler, setting):
    with pytest.raises(DeclutrConfigError, match=rf"^{setting}=511 plus 2 special tokens exceeds the model's 512 "
                                                 rf"positions: set {setting}<=510\.$"):
        check_spans_fit_model(sampler, tokenizer, TINY)


def test_the_positions_come_from_the_overridden_config_after_roberta_s_padding_offset(tokenizer):
    """258 position embeddings, RoBERTa's ids starting after the pad id (0): 257 tokens, 255 of them a span."""
    check_spans_fit_model(SpanSampler(min_span_len=8, max_span_len=255), tokenizer, ROBERTA_LIKE)
    with pytest.raises(DeclutrConfigError, match=r"max_span_len=256 plus 2 special tokens exceeds the model's 257 "
                                                 r"positions: set data.sampler.max_span_len<=255"):
        check_spans_fit_model(SpanSampler(min_span_len=8, max_span_len=256), tokenizer, ROBERTA_LIKE)


def test_windows_with_a_contrastive_loss_are_refused_and_without_one_pass():
    check_objective_fits_sampler(WindowSampler(), {"contrastive_weight": 0.0, "mlm_weight": 1.0})
    check_objective_fits_sampler(SpanSampler(), {"contrastive_weight": 1.0})
    with pytest.raises(DeclutrConfigError, match=r"data.sampler=WindowSampler gives no positives, so "
                                                 r"model.contrastive_weight=1.0 has nothing to contrast: set "
                                                 r"model.contrastive_weight=0"):
        check_objective_fits_sampler(WindowSampler(), {"contrastive_weight": 1.0})


def test_a_sampler_lacking_a_member_is_named_before_the_corpus_is_read(tokenizer, tmp_path):
    class HalfSampler:
        has_positives = True

        def sample(self, num_tokens, rng):
            return None

    with pytest.raises(DeclutrConfigError, match=r"data.sampler builds a HalfSampler, which lacks max_span_len, "
                                                 r"length_setting, min_doc_tokens, requirement: a sampler needs"):
        DeCLUTRDataModule(tokenizer, [str(tmp_path / "not-there.txt")], HalfSampler())


def test_a_corpus_without_a_long_enough_document_says_what_a_document_needs(tokenizer, tmp_path):
    corpus = tmp_path / "short.jsonl"
    corpus.write_text("\n".join(json.dumps({"text": f"a short document number {i}"}) for i in range(3)) + "\n")
    data = DeCLUTRDataModule(tokenizer, [str(corpus)], SpanSampler(2, 2, 8, 32), num_workers=0)
    with pytest.raises(DeclutrConfigError, match=r"No usable document in data.files=.*\(3 too_short\)\. Each document "
                                                 r"needs at least num_anchors \* max_span_len \* 2 = 128 tokens"):
        check_corpus_has_usable_document(data)
