"""The training signal is the method's: on a real batch, the module's contrastive loss is the one computed by hand
(each row encoded alone, unpadded, mean-pooled; anchor i paired with the mean of its own positives, rows i*P ..
i*P+P-1; a slow NT-Xent at the configured temperature), and five optimizer steps on that batch lower that loss and
move the weights. Seconds, so every run of the suite checks what a longer run (tests/tasks/test_quality.py) shows."""

import lightning as L
import pytest
import torch
from torch.utils.data import DataLoader

from declutr.config.instantiate import build
from tests.helpers.losses import reference_nt_xent
from tests.helpers.runs import FAST


@pytest.fixture
def cfg(make_config):
    return make_config(*FAST, "data.sampler.max_span_len=64", "data.num_workers=0")


@pytest.fixture
def batch(cfg, tokenizer) -> dict:
    """The configured stream's first batch: 4 documents, 8 MLM-masked anchors, 2 positives each."""
    return next(iter(build(cfg.data, tokenizer=tokenizer).train_dataloader()))


@pytest.fixture
def module(cfg, tokenizer):
    return build(cfg.model, tokenizer=tokenizer, _convert_="all")


@torch.no_grad()
def hand_loss(module, batch: dict, temperature: float) -> float:
    """NT-Xent of the batch computed without the module's pooling, chunking, pairing or loss code (dropout off; the
    module's mode is restored)."""
    training = module.training
    module.eval()

    def embed(ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        return [module.body(input_ids=row[keep.bool()][None]).last_hidden_state[0].mean(0) for row, keep in zip(ids, mask)]

    anchors = embed(batch["anchor_input_ids"], batch["anchor_attention_mask"])
    positives = embed(batch["positive_input_ids"], batch["positive_attention_mask"])
    p = batch["num_positives"]
    own = [torch.stack(positives[i * p : (i + 1) * p]).mean(0) for i in range(len(anchors))]
    module.train(training)
    return reference_nt_xent(torch.stack(anchors), torch.stack(own), temperature)


def test_the_modules_contrastive_loss_is_the_hand_computed_one(cfg, batch, module):
    assert batch["num_positives"] == 2 and len(batch["anchor_input_ids"]) == 8
    expected = hand_loss(module, batch, cfg.model.loss.temperature)
    module.eval()
    with torch.no_grad():
        _, metrics = module.compute_loss(batch)
    assert metrics["train/contrastive_loss"].item() == pytest.approx(expected, rel=1e-4)


def test_five_steps_on_a_batch_lower_its_loss_and_move_the_weights(cfg, batch, module):
    temperature = cfg.model.loss.temperature
    before = hand_loss(module, batch, temperature)
    weights = {name: param.detach().clone() for name, param in module.named_parameters() if param.requires_grad}
    trainer = L.Trainer(max_steps=5, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)
    trainer.fit(module, DataLoader([batch] * 5, batch_size=None))
    assert trainer.global_step == 5
    after = hand_loss(module, batch, temperature)
    assert after < 0.8 * before, f"NT-Xent of the batch {before:.3f} -> {after:.3f} in 5 steps on it"
    moved = [name for name, param in module.named_parameters() if name in weights and not torch.equal(param, weights[name])]
    assert len(moved) == len(weights), f"unchanged: {sorted(set(weights) - set(moved))}"
