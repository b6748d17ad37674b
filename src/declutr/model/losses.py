"""The training objectives: a contrastive loss over anchor/positive embeddings (``model.loss``: NT-Xent, the paper's,
or its one-way variant), and MLM at masked positions."""

import torch
import torch.nn.functional as F
from torch import nn


class ContrastiveLoss(nn.Module):
    """A contrastive loss over ``anchors`` and ``positives`` ``(n, hidden)``, row ``i`` of each a positive pair, every
    other row a negative: ``loss(anchors, positives)`` is a scalar. Cosine similarities divided by ``temperature``
    are the logits, computed in fp32 with autocast off: under bf16-mixed a bf16 matmul would quantise them in steps of
    ~0.08 at temperature 0.05 (its range is checked with the config's, :mod:`declutr.config.schema`). ``name`` is the
    option of ``conf/model/loss/`` that selects it."""

    name: str

    def __init__(self, temperature: float = 0.05) -> None:
        super().__init__()
        self.temperature = temperature

    def _logits(self, rows: torch.Tensor, columns: torch.Tensor | None = None) -> torch.Tensor:
        """``(len(rows), len(columns))`` fp32 cosine similarities over the temperature (``columns``: ``rows``)."""
        with torch.autocast(device_type=rows.device.type, enabled=False):
            z = F.normalize(rows.float(), dim=-1)
            other = z if columns is None else F.normalize(columns.float(), dim=-1)
            return z @ other.T / self.temperature

    def config(self) -> dict:
        """This loss as a ``model.loss`` config node (``hydra.utils.instantiate`` rebuilds it): plain values, which a
        checkpoint's hyper-parameters can hold and ``weights_only`` loading can read."""
        return {"_target_": f"{type(self).__module__}.{type(self).__qualname__}", "temperature": self.temperature}

    def extra_repr(self) -> str:
        return f"temperature={self.temperature}"


class NTXentLoss(ContrastiveLoss):
    """NT-Xent (InfoNCE) with cosine similarity, as in SimCLR and DeCLUTR: each of the ``2n`` embeddings is matched to
    its partner against the ``2n - 2`` others (the other anchors and positives), in both directions. The mean over
    the ``2n`` directed pairs."""

    name = "ntxent"

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        n = anchors.shape[0]
        logits = self._logits(torch.cat([anchors, positives]))
        logits.fill_diagonal_(float("-inf"))  # an embedding is never its own negative
        targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(logits.device)
        return F.cross_entropy(logits, targets)


class OneWayNTXentLoss(ContrastiveLoss):
    """NT-Xent in one direction, as sentence-transformers' ``MultipleNegativesRankingLoss`` (its default
    ``query_to_doc`` direction, scale = 1 / temperature): each anchor is matched to its positive against the ``n - 1``
    other positives; no anchor is a negative, and positives are not matched back to anchors. The mean over the ``n``
    anchors."""

    name = "ntxent_one_way"

    def forward(self, anchors: torch.Tensor, positives: torch.Tensor) -> torch.Tensor:
        logits = self._logits(anchors, positives)
        return F.cross_entropy(logits, torch.arange(anchors.shape[0], device=logits.device))


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, total: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy of ``logits`` ``(n_masked, vocab)`` against ``labels`` ``(n_masked,)``, summed and
    divided by ``total`` (default ``n_masked``; the masked-token count of the global batch under DDP).
    0 when nothing is masked."""
    if labels.numel() == 0:
        return logits.sum() * 0.0  # keeps the graph connected for DDP when a batch happens to mask nothing
    return F.cross_entropy(logits.float(), labels, reduction="sum") / (labels.numel() if total is None else total)
