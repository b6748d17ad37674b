"""Loading HF masked-LM encoders: config overrides, another architecture at random init, the MLM head."""

import pytest
import torch

from declutr.config.resolvers import _minilm_path
from declutr.errors import DeclutrConfigError
from declutr.export import TrainingRecord, write_export
from declutr.model.huggingface import check_vocabulary_fits, encoder_config, load_masked_lm, mlm_head, model_max_tokens
from tests.helpers.model import TINY

SMALL = {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 128}
PRE_LN = {"model_type": "roberta-prelayernorm", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2,
          "intermediate_size": 128, "max_position_embeddings": 514}


def test_overrides_change_the_source_config():
    config = encoder_config(_minilm_path(), config_overrides={"num_hidden_layers": 2})
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("bert", 2, 384)


def test_another_architecture_keeps_the_tokenizers_vocabulary_and_special_ids(tokenizer):
    config = encoder_config(_minilm_path(), random_init=True, config_overrides=PRE_LN)
    assert config.model_type == "roberta-prelayernorm"
    assert (config.vocab_size, config.pad_token_id) == (len(tokenizer), tokenizer.pad_token_id)
    assert (config.hidden_size, config.num_hidden_layers) == (64, 2)


def test_another_architecture_at_random_init_trains_with_the_source_tokenizer(tokenizer):
    model = load_masked_lm(_minilm_path(), random_init=True, config_overrides=PRE_LN)
    assert type(model).__name__ == "RobertaPreLayerNormForMaskedLM" and model.training
    enc = tokenizer(["a short sentence", "and a somewhat longer second one"], padding=True, return_tensors="pt")
    hidden = model.base_model(**enc).last_hidden_state
    logits = mlm_head(model)(hidden[enc["attention_mask"].bool()])
    assert logits.shape == (int(enc["attention_mask"].sum()), len(tokenizer))
    logits.logsumexp(-1).mean().backward()
    assert model.base_model.embeddings.word_embeddings.weight.grad is not None


def test_the_length_limit_reads_the_overridden_positions_after_roberta_s_padding_offset(tokenizer):
    encoder = {"name_or_path": _minilm_path(), "random_init": True,
               "config_overrides": {**PRE_LN, "max_position_embeddings": 258}}
    assert model_max_tokens(tokenizer, encoder) == 257  # positions 1..257: RoBERTa's start after the pad id (0)
    model = load_masked_lm(**encoder)
    ids = torch.full((1, 257), tokenizer.mask_token_id)
    assert model.base_model(input_ids=ids).last_hidden_state.shape == (1, 257, 64)


def test_another_architecture_needs_random_init():
    with pytest.raises(DeclutrConfigError, match=r"model\.encoder\.random_init=true"):
        load_masked_lm(_minilm_path(), config_overrides=PRE_LN)


def test_an_unknown_architecture_is_named():
    with pytest.raises(DeclutrConfigError, match=r"config_overrides\.model_type='not-a-model'"):
        encoder_config(_minilm_path(), random_init=True, config_overrides={"model_type": "not-a-model"})


def test_the_source_s_own_model_type_is_a_plain_override():
    same = encoder_config(_minilm_path(), config_overrides={"model_type": "bert", "num_hidden_layers": 2})
    assert same.to_dict() == encoder_config(_minilm_path(), config_overrides={"num_hidden_layers": 2}).to_dict()


def test_the_attention_kernels_are_a_setting_and_give_the_same_embeddings():
    ids = torch.randint(1000, 5000, (2, 12))
    mask = torch.ones_like(ids)
    mask[1, 8:] = 0
    outputs = {}
    for kernels in ("eager", "sdpa"):
        torch.manual_seed(0)
        model = load_masked_lm(_minilm_path(), random_init=True, config_overrides=SMALL, attn_implementation=kernels)
        assert model.config._attn_implementation == kernels
        outputs[kernels] = model.eval().base_model(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.allclose(outputs["eager"][mask.bool()], outputs["sdpa"][mask.bool()], atol=1e-5)


@pytest.mark.parametrize("tied", [False, True])
def test_an_export_resumes_pretraining_with_its_trained_mlm_head(tokenizer, tmp_path, tied):
    """The export holds the encoder alone and the head beside it: load_masked_lm of the folder (model.encoder.
    name_or_path=<export>) gives back the whole masked LM, head included, weight for weight."""
    torch.manual_seed(0)
    trained = load_masked_lm(**{**TINY, "config_overrides": {**TINY["config_overrides"], "tie_word_embeddings": tied}})
    decoder, embeddings = trained.cls.predictions.decoder.weight, trained.bert.embeddings.word_embeddings.weight
    assert (decoder is embeddings) == tied
    with torch.no_grad():  # a head unlike any freshly initialised one
        for parameter in trained.cls.parameters():
            parameter.add_(torch.randn_like(parameter))
    folder = write_export(trained, tokenizer, tmp_path / "export", TrainingRecord(base_model="x"))
    torch.manual_seed(1)
    reloaded = load_masked_lm(str(folder))
    assert type(reloaded) is type(trained) and reloaded.training
    assert reloaded.state_dict().keys() == trained.state_dict().keys()
    for name, tensor in trained.state_dict().items():
        assert torch.equal(reloaded.state_dict()[name], tensor), name
    reloaded_decoder = reloaded.cls.predictions.decoder.weight
    assert (reloaded_decoder is reloaded.bert.embeddings.word_embeddings.weight) == tied


def test_a_tokenizer_larger_than_the_models_vocabulary_is_refused_with_the_fix(tokenizer):
    encoder = {"name_or_path": _minilm_path(), "random_init": True, "config_overrides": {**SMALL, "vocab_size": 8192}}
    with pytest.raises(DeclutrConfigError, match=r"30,522 tokens.*vocab_size=8,192.*config_overrides.vocab_size=30522"):
        check_vocabulary_fits(tokenizer, encoder)
    check_vocabulary_fits(tokenizer, {**encoder, "config_overrides": SMALL})  # the model's own vocabulary
