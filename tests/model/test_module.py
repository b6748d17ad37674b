"""The LightningModule's pieces: MLM at masked positions only, parameter groups, the LR schedule."""

from functools import partial

import pytest
import torch

from declutr.errors import DeclutrConfigError
from declutr.model.module import DeCLUTRModule, warmup_linear_decay
from declutr.resolvers import _minilm_path

TINY = {"name_or_path": _minilm_path(), "random_init": True,
        "config_overrides": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}}


@pytest.fixture
def module(tokenizer):
    torch.manual_seed(0)
    return DeCLUTRModule(TINY, optimizer=partial(torch.optim.AdamW, lr=1e-3, weight_decay=0.1), tokenizer=tokenizer)


def test_loaded_encoder_is_in_train_mode(module):
    assert module.encoder.training and module.head is module.encoder.cls


def test_mlm_on_masked_positions_equals_the_full_logits_loss(module):
    module.eval()  # no dropout, so both paths see the same activations
    ids = torch.randint(1000, 2000, (3, 12))
    mask = torch.ones_like(ids)
    labels = torch.full_like(ids, -100)
    labels[0, 2], labels[1, 5], labels[2, 7] = 1500, 1600, 1700
    _, mlm = module._anchor_pass({"anchor_input_ids": ids, "anchor_attention_mask": mask, "mlm_labels": labels})
    full = module.encoder(input_ids=ids, attention_mask=mask, labels=labels).loss
    assert mlm.item() == pytest.approx(full.item(), rel=1e-5)


def test_no_weight_decay_on_biases_and_layernorm(module):
    class FakeTrainer:
        estimated_stepping_batches = 100

    module.trainer = FakeTrainer()
    config = module.configure_optimizers()
    decay, no_decay = config["optimizer"].param_groups
    names = {id(p): n for n, p in module.named_parameters()}
    assert decay["weight_decay"] == 0.1 and no_decay["weight_decay"] == 0.0
    assert all("bias" in names[id(p)] or "LayerNorm" in names[id(p)] for p in no_decay["params"])
    assert not any("bias" in names[id(p)] or "LayerNorm" in names[id(p)] for p in decay["params"])
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(module.parameters()))


def test_unbounded_schedule_is_refused(module):
    class Endless:
        estimated_stepping_batches = float("inf")

    module.trainer = Endless()
    with pytest.raises(DeclutrConfigError, match="trainer.max_steps"):
        module.configure_optimizers()


def test_warmup_then_linear_decay():
    factor = warmup_linear_decay(warmup_steps=10, total_steps=110)
    assert factor(0) == pytest.approx(0.1) and factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0) and factor(60) == pytest.approx(0.5) and factor(110) == 0.0


def test_both_objectives_off_is_refused(tokenizer):
    with pytest.raises(DeclutrConfigError, match="nothing to train"):
        DeCLUTRModule(TINY, optimizer=torch.optim.AdamW, contrastive_weight=0, mlm_weight=0)
