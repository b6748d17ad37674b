"""Mean pooling over non-padding tokens."""

import torch


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average ``hidden`` ``(batch, seq, hidden)`` over positions where ``attention_mask`` ``(batch, seq)``
    is 1 (special tokens included, padding excluded). Returns ``(batch, hidden)``."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
