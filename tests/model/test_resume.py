"""What a checkpoint and the run resuming it must agree on, read from the checkpoint before anything is built."""

import pytest
import torch

from declutr.errors import DeclutrConfigError
from declutr.model.resume import DATA_STATE_KEY, TOKENIZER_KEY, check_resume, tokenizer_record
from tests.helpers.paths import STATE_UNION

TINY = ["model=tiny", f"data.files=[{STATE_UNION}]"]
TINY_CONFIG = {"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
               "intermediate_size": 64, "vocab_size": 30522, "max_position_embeddings": 512, "type_vocab_size": 2}


def checkpoint(tokenizer, changes: dict | None = None) -> dict:
    """A checkpoint as a tiny run with 1 reader saves it, with ``changes``."""
    return {"state_dict": {"encoder.weight": torch.ones(2, 2)}, "hf_config": dict(TINY_CONFIG),
            TOKENIZER_KEY: tokenizer_record(tokenizer), DATA_STATE_KEY: {"num_shards": 1, "consumed": {"0": 8}},
            **(changes or {})}


def test_a_checkpoint_of_the_same_run_resumes(make_config, tokenizer):
    check_resume(checkpoint(tokenizer), make_config(*TINY, "data.num_workers=1"), tokenizer, "last.ckpt")


def test_every_mismatch_is_listed_with_its_fix(make_config, tokenizer):
    record = {"vocab_size": 100, "vocab_sha256": "0" * 64}
    saved = checkpoint(tokenizer, {"state_dict": {"encoder.weight": torch.tensor([1.0, float("nan")])},
                                   "hf_config": TINY_CONFIG | {"hidden_size": 64}, TOKENIZER_KEY: record})
    with pytest.raises(DeclutrConfigError) as refused:
        check_resume(saved, make_config(*TINY, "data.num_workers=2"), tokenizer, "last.ckpt")
    message = str(refused.value)
    assert message.startswith("ckpt_path=last.ckpt cannot resume this run:")
    assert "1 of its weight tensors hold NaN or infinite values (e.g. encoder.weight)" in message
    assert "another architecture than model.encoder here (hidden_size 64 -> 32)" in message
    assert "another tokenizer (100 tokens, vocabulary sha256 000000000000) than model.encoder.name_or_path's " \
           "here (30522 tokens)" in message
    assert "saved with 1 readers (devices x data.num_workers) and this run has 2" in message


def test_a_checkpoint_from_before_any_data_was_read_or_without_records_is_not_refused(make_config, tokenizer):
    """Older checkpoints lack the records: only what they hold is checked (the datamodule checks the readers too)."""
    bare = {"state_dict": {"encoder.weight": torch.ones(1)}, DATA_STATE_KEY: {"num_shards": 1, "consumed": {}}}
    check_resume(bare, make_config(*TINY, "data.num_workers=2"), tokenizer, "old.ckpt")


def test_the_tokenizer_record_names_the_vocabulary(tokenizer):
    record = tokenizer_record(tokenizer)
    assert record["vocab_size"] == 30522 and len(record["vocab_sha256"]) == 64
    assert record == tokenizer_record(tokenizer)
