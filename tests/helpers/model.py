"""The tiny random encoder of the model tests, and gradients compared up to float32 summation order."""

import torch

from declutr.config.resolvers import _minilm_path

TINY = {"name_or_path": _minilm_path(), "random_init": True,
        "config_overrides": {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
                             "intermediate_size": 64}}


def assert_same_gradients(grads: dict[str, torch.Tensor], reference: dict[str, torch.Tensor], rel: float,
                          floor: float | None = None) -> None:
    """Equal up to float32 summation order: ``rel`` of each gradient's norm, plus ``floor`` (default ``rel``)
    of the whole gradient's norm, since some gradients are analytically 0 (attention key biases)."""
    assert grads.keys() == reference.keys()
    floor = (rel if floor is None else floor) * torch.cat([g.flatten() for g in reference.values()]).norm()
    for name, grad in reference.items():
        error = (grads[name] - grad).norm()
        assert error <= rel * grad.norm() + floor, (name, float(error), float(grad.norm()))


def relative_distance(grads: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> float:
    """How far ``grads`` are from ``reference``, all gradients taken as one vector, relative to its norm."""
    difference = torch.cat([(grads[name] - grad).flatten() for name, grad in reference.items()])
    return float(difference.norm() / torch.cat([grad.flatten() for grad in reference.values()]).norm())
