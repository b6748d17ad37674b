"""The contrastive losses (NT-Xent and its one-way variant) against slow, obviously-correct references and against
the NT-Xent the project trained with before the loss became a configured object; MLM loss edge cases."""

import io
import math

import pytest
import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf
from sentence_transformers.losses import MultipleNegativesRankingLoss

from declutr.model.losses import NTXentLoss, OneWayNTXentLoss, masked_lm_loss
from tests.helpers.losses import reference_nt_xent
from tests.helpers.paths import ROOT

LOSSES = [NTXentLoss, OneWayNTXentLoss]
CASES = [(1, 4, 0.05, 0), (2, 8, 0.05, 1), (7, 16, 0.5, 2), (16, 32, 0.05, 3)]  # n, hidden, temperature, seed


def pairs(n: int, dim: int, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=gen).to(dtype), torch.randn(n, dim, generator=gen).to(dtype)


def committed_nt_xent(anchors: torch.Tensor, positives: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """``nt_xent_loss`` as committed before the loss became an object (8868cb2), verbatim: every run trained with it,
    so :class:`NTXentLoss` must give its bits."""
    n = anchors.shape[0]
    with torch.autocast(device_type=anchors.device.type, enabled=False):
        z = F.normalize(torch.cat([anchors, positives]).float(), dim=-1)
        logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def reference_one_way(anchors: torch.Tensor, positives: torch.Tensor, temperature: float) -> float:
    """Loop over the n anchors in float64: -log(exp(s(i, p_i)) / sum over j of exp(s(i, p_j))), s the cosine
    similarity over ``temperature``: only positives in the denominator."""
    a, p = anchors.double(), positives.double()
    cos = lambda i, j: float(a[i] @ p[j] / (a[i].norm() * p[j].norm()))  # noqa: E731
    n = a.shape[0]
    return sum(-math.log(math.exp(cos(i, i) / temperature) / sum(math.exp(cos(i, j) / temperature) for j in range(n)))
               for i in range(n)) / n


@pytest.mark.parametrize("n, dim, temperature, seed", CASES)
def test_nt_xent_matches_the_reference(n, dim, temperature, seed):
    anchors, positives = pairs(n, dim, seed)
    assert NTXentLoss(temperature)(anchors, positives).item() == pytest.approx(
        reference_nt_xent(anchors, positives, temperature), rel=1e-4, abs=1e-5)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("n, dim, temperature, seed", [*CASES, (64, 384, 0.05, 4)])
def test_nt_xent_gives_the_bits_of_the_committed_function_value_and_gradient(n, dim, temperature, seed, dtype):
    results = []
    for loss in (NTXentLoss(temperature), lambda a, p: committed_nt_xent(a, p, temperature)):
        anchors, positives = (x.requires_grad_() for x in pairs(n, dim, seed, dtype))
        with torch.autocast(device_type="cpu", dtype=torch.bfloat16, enabled=dtype == torch.bfloat16):
            value = loss(anchors, positives)
        value.backward()
        results.append((value.detach(), anchors.grad, positives.grad))
    for new, old in zip(*results):
        assert torch.equal(new, old)


@pytest.mark.parametrize("n, dim, temperature, seed", CASES)
def test_one_way_matches_the_reference_and_cross_entropy_over_anchor_positive_cosines(n, dim, temperature, seed):
    anchors, positives = pairs(n, dim, seed)
    loss = OneWayNTXentLoss(temperature)(anchors, positives)
    assert loss.item() == pytest.approx(reference_one_way(anchors, positives, temperature), rel=1e-4, abs=1e-5)
    cosines = F.normalize(anchors, dim=-1) @ F.normalize(positives, dim=-1).T
    assert loss.item() == pytest.approx(F.cross_entropy(cosines / temperature, torch.arange(n)).item(), rel=1e-6)


@pytest.mark.parametrize("n, dim, temperature, seed", CASES)
def test_one_way_equals_sentence_transformers_multiple_negatives_ranking_loss(n, dim, temperature, seed):
    """Its default direction (query_to_doc) at scale 1 / temperature, on the same embeddings (its ``model`` only
    encodes texts, which ``compute_loss_from_embeddings`` skips)."""
    anchors, positives = pairs(n, dim, seed)
    theirs = MultipleNegativesRankingLoss(None, scale=1 / temperature).compute_loss_from_embeddings(
        [anchors, positives], labels=None)
    assert OneWayNTXentLoss(temperature)(anchors, positives).item() == pytest.approx(theirs.item(), rel=1e-5, abs=1e-6)


def test_one_way_never_uses_anchors_as_negatives_nor_matches_positives_back():
    """Moving anchor 4 next to positive 0 leaves the gradients of anchors 0-3 as they were under the one-way loss
    (no anchor is a negative), while under NT-Xent it changes them (every other anchor is a negative of each);
    one pair gives 0."""
    anchors, positives = pairs(5, 8, seed=7)
    moved = anchors.clone()
    moved[4] = positives[0] * 3

    def anchor_gradients(loss, rows):
        rows = rows.clone().requires_grad_()
        loss(rows, positives).backward()
        return rows.grad[:4]

    one_way, nt_xent = OneWayNTXentLoss(0.05), NTXentLoss(0.05)
    assert torch.allclose(anchor_gradients(one_way, moved), anchor_gradients(one_way, anchors), rtol=1e-6, atol=0)
    assert not torch.allclose(anchor_gradients(nt_xent, moved), anchor_gradients(nt_xent, anchors), rtol=1e-2)
    assert one_way(anchors[:1], positives[:1]).item() == 0.0


@pytest.mark.parametrize("loss_class", LOSSES)
def test_identical_pairs_far_from_others_give_near_zero_loss(loss_class):
    anchors = torch.eye(4) * 3
    assert loss_class(0.05)(anchors, anchors.clone()).item() < 1e-6


@pytest.mark.parametrize("loss_class", LOSSES)
def test_gradient_flows_to_both_sides(loss_class):
    anchors = torch.randn(5, 8, requires_grad=True)
    positives = torch.randn(5, 8, requires_grad=True)
    loss_class()(anchors, positives).backward()
    assert anchors.grad.abs().sum() > 0 and positives.grad.abs().sum() > 0


@pytest.mark.parametrize("loss_class", LOSSES)
def test_similarities_stay_fp32_under_bf16_autocast(loss_class):
    """bf16-mixed runs matmuls in bf16; at temperature 0.05 that would quantise the logits in steps of ~0.08."""
    anchors, positives = pairs(32, 64, seed=0, dtype=torch.bfloat16)
    expected = loss_class(0.05)(anchors.float(), positives.float())
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        loss = loss_class(0.05)(anchors, positives)
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx(expected.item(), rel=1e-4)


@pytest.mark.parametrize("path", sorted((ROOT / "conf" / "model" / "loss").glob("*.yaml")), ids=lambda p: p.stem)
def test_each_option_builds_the_loss_it_names_and_its_config_rebuilds_it(path):
    """``name`` is the option's file name; ``config()`` is the option's node (plain values, so checkpoints loaded
    with ``weights_only`` read it), and rebuilds the same loss."""
    loss = instantiate(OmegaConf.load(path))
    assert loss.name == path.stem and loss.config() == OmegaConf.to_container(OmegaConf.load(path))
    buffer = io.BytesIO()
    torch.save({"hyper_parameters": {"loss": loss.config()}}, buffer)
    buffer.seek(0)
    config = torch.load(buffer, weights_only=True)["hyper_parameters"]["loss"]
    rebuilt = instantiate(config)
    assert type(rebuilt) is type(loss) and rebuilt.temperature == loss.temperature


def test_mlm_loss_is_zero_without_masked_tokens_and_keeps_the_graph():
    logits = torch.randn(0, 10, requires_grad=True)
    loss = masked_lm_loss(logits, torch.zeros(0, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0
