"""The weights check behind every state called good."""

import pytest
import torch
from torch import nn

from declutr.errors import DeclutrNumericalError
from declutr.model.finite import check_finite_weights, nonfinite_parameters


def test_names_every_non_finite_parameter():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2), nn.LayerNorm(2))
    assert nonfinite_parameters(model) == []
    with torch.no_grad():
        model[0].weight[0, 0] = float("nan")
        model[2].bias[1] = float("-inf")
    assert nonfinite_parameters(model) == ["0.weight", "2.bias"]


def test_the_refusal_says_what_was_refused_and_carries_the_step_and_checkpoint():
    model = nn.Linear(2, 2)
    check_finite_weights(model, "Not exported")  # finite: nothing happens
    with torch.no_grad():
        model.weight.fill_(float("inf"))
    with pytest.raises(DeclutrNumericalError, match=r"Not exported: 1 weight tensor\(s\) hold NaN or infinite values "
                                                   r"\(weight\) at step 7\. The last good checkpoint is a\.ckpt\.") as err:
        check_finite_weights(model, "Not exported", step=7, checkpoint="a.ckpt")
    assert (err.value.step, err.value.checkpoint) == (7, "a.ckpt")
