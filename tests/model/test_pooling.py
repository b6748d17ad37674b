"""Mean pooling ignores padding."""

import torch

from declutr.model.pooling import mean_pool


def test_padding_does_not_change_the_mean():
    hidden = torch.randn(1, 3, 4)
    padded = torch.cat([hidden, torch.full((1, 5, 4), 1e6)], dim=1)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0, 0, 0]])
    assert torch.allclose(mean_pool(padded, mask), hidden.mean(1))
    assert torch.allclose(mean_pool(hidden, torch.ones(1, 3, dtype=torch.long)), hidden.mean(1))


def test_rows_pool_independently():
    hidden = torch.arange(24, dtype=torch.float).view(2, 3, 4)
    mask = torch.tensor([[1, 0, 0], [1, 1, 1]])
    out = mean_pool(hidden, mask)
    assert torch.equal(out[0], hidden[0, 0]) and torch.allclose(out[1], hidden[1].mean(0))
