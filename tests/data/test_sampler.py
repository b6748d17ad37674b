"""The sampler interface: both shipped samplers keep its contract, and a sampler written outside the package (the
document's first tokens as the anchor, the next ones as its positive) trains through the datamodule, the stream,
the collator and the start-up checks."""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch

from declutr.data.checks import check_corpus_has_usable_document, check_objective_fits_sampler, check_spans_fit_model
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.data.sampler import Sampler, SpanSample
from declutr.data.spans import SpanSampler
from declutr.data.windows import WindowSampler
from declutr.model.module import DeCLUTRModule
from declutr.tokenizer import tokenize_document
from tests.helpers.model import TINY
from tests.helpers.paths import STATE_UNION


@dataclass(frozen=True)
class PrefixSampler:
    """A new sampler, written against the interface only: the first ``length`` tokens are the one anchor, the
    ``length`` after them its positive."""

    length: int = 16

    has_positives = True
    length_setting = "data.sampler.length"

    @property
    def max_span_len(self) -> int:
        return self.length

    @property
    def min_doc_tokens(self) -> int:
        return 2 * self.length

    def requirement(self) -> str:
        return f"at least 2 * data.sampler.length = {self.min_doc_tokens} tokens: use longer documents"

    def sample(self, num_tokens: int, rng: np.random.Generator) -> SpanSample | None:
        if num_tokens < self.min_doc_tokens:
            return None
        return SpanSample([(0, self.length)], [[(self.length, 2 * self.length)]])


SAMPLERS = [SpanSampler(2, 2, 8, 32), SpanSampler(3, 1, 4, 4, "adjacent"), SpanSampler(1, 3, 8, 16, "subsumed"),
            WindowSampler(16), WindowSampler(16, 3), PrefixSampler()]


@pytest.mark.parametrize("sampler", SAMPLERS, ids=repr)
def test_every_sampler_keeps_the_contract_the_stream_and_collator_rely_on(sampler):
    assert isinstance(sampler, Sampler)
    assert sampler.sample(sampler.min_doc_tokens - 1, np.random.default_rng(0)) is None
    assert sampler.length_setting.startswith("data.sampler.") and str(sampler.min_doc_tokens) in sampler.requirement()
    for num_tokens in (sampler.min_doc_tokens, sampler.min_doc_tokens + 1, 7 * sampler.min_doc_tokens + 3):
        sample = sampler.sample(num_tokens, np.random.default_rng(num_tokens))
        assert sample == sampler.sample(num_tokens, np.random.default_rng(num_tokens)), "the generator alone decides"
        assert sample.anchors and len(sample.positives) == len(sample.anchors)
        sizes = {len(group) for group in sample.positives}
        assert len(sizes) == 1 and (sizes.pop() > 0) == sampler.has_positives  # the collator's one P per batch
        for start, end in sample.anchors + [span for group in sample.positives for span in group]:
            assert 0 <= start < end <= num_tokens and end - start <= sampler.max_span_len


def test_what_lacks_a_member_is_no_sampler():
    @dataclass(frozen=True)
    class NoLengthSetting:
        has_positives = True
        max_span_len = 8
        min_doc_tokens = 8

        def requirement(self) -> str:
            return "8 tokens"

        def sample(self, num_tokens, rng):
            return None

    assert not isinstance(NoLengthSetting(), Sampler)


def test_a_new_sampler_trains_through_the_stream_the_collator_and_the_checks(tokenizer):
    sampler = PrefixSampler(16)
    data = DeCLUTRDataModule(tokenizer, [str(STATE_UNION)], sampler, batch_size=4, shuffle=False, num_workers=0)
    check_objective_fits_sampler(sampler, {"contrastive_weight": 1.0})
    check_spans_fit_model(sampler, tokenizer, TINY)
    check_corpus_has_usable_document(data)
    batch = next(iter(data.train_dataloader()))

    assert batch["num_positives"] == 1 and len(batch["docs"]) == 4
    for row, key in enumerate(batch["docs"]):
        ids = tokenize_document(tokenizer, Path(key.rsplit(":", 1)[0]).read_text().strip())
        expected = [tokenizer.cls_token_id, *ids[16:32], tokenizer.sep_token_id]
        assert batch["positive_input_ids"][row].tolist() == expected  # positives are never masked
        anchor = batch["anchor_input_ids"][row][1:17]
        labels = batch["mlm_labels"][row][1:17]
        assert torch.where(labels == -100, anchor, labels).tolist() == ids[:16]  # the prefix, MLM-masked

    torch.manual_seed(0)
    module = DeCLUTRModule(TINY, optimizer=partial(torch.optim.AdamW, lr=1e-3), tokenizer=tokenizer)
    module.eval()  # no dropout: the losses before and after the steps are comparable
    optimizer = torch.optim.AdamW(module.parameters(), lr=1e-3)
    losses = []
    for _ in range(4):
        optimizer.zero_grad()
        loss, metrics = module.compute_loss(batch)
        loss.backward()
        optimizer.step()
        losses.append(metrics["train/contrastive_loss"].item())
    assert all(np.isfinite(losses)) and losses[-1] < losses[0], losses
