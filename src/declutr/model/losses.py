"""The two training objectives: NT-Xent over anchor/positive embeddings, and MLM at masked positions."""

import torch
import torch.nn.functional as F


def nt_xent_loss(anchors: torch.Tensor, positives: torch.Tensor, temperature: float = 0.05) -> torch.Tensor:
    """NT-Xent (InfoNCE) with cosine similarity, as in SimCLR and DeCLUTR.

    ``anchors`` and ``positives`` are ``(n, hidden)``; row ``i`` of each forms a positive pair, in both
    directions, and every other of the ``2n`` embeddings is a negative for it (``2n - 2`` negatives).
    Returns the mean over the ``2n`` directed pairs. The similarities are computed in fp32 with autocast off.
    """
    n = anchors.shape[0]
    # fp32 logits even under autocast (bf16-mixed would run the matmul in bf16: steps of ~0.08 at temperature 0.05)
    with torch.autocast(device_type=anchors.device.type, enabled=False):
        z = F.normalize(torch.cat([anchors, positives]).float(), dim=-1)
        logits = z @ z.T / temperature
    logits.fill_diagonal_(float("-inf"))  # an embedding is never its own negative
    targets = torch.cat([torch.arange(n, 2 * n), torch.arange(n)]).to(z.device)
    return F.cross_entropy(logits, targets)


def masked_lm_loss(logits: torch.Tensor, labels: torch.Tensor, total: torch.Tensor | int | None = None) -> torch.Tensor:
    """Cross-entropy of ``logits`` ``(n_masked, vocab)`` against ``labels`` ``(n_masked,)``, summed and
    divided by ``total`` (default ``n_masked``; the masked-token count of the global batch under DDP).
    0 when nothing is masked."""
    if labels.numel() == 0:
        return logits.sum() * 0.0  # keeps the graph connected for DDP when a batch happens to mask nothing
    return F.cross_entropy(logits.float(), labels, reduction="sum") / (labels.numel() if total is None else total)
