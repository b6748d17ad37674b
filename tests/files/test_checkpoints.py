"""Atomic checkpoint writes and safe, clear checkpoint reads."""

import pytest
import torch

from declutr.errors import DeclutrConfigError
from declutr.files.checkpoints import AtomicCheckpointIO, load_checkpoint


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.ones(3)}, path)
    with pytest.raises(Exception):  # noqa: B017 (whatever torch.save raises half-way)
        io.save_checkpoint({"step": 2, "unpicklable": lambda: None}, path)  # fails half-way through torch.save
    assert load_checkpoint(path)["step"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["last.ckpt"], "no temporary file is left behind"


def test_truncated_missing_and_foreign_checkpoints_fail_clearly(tmp_path):
    io = AtomicCheckpointIO()
    good, cut = tmp_path / "good.ckpt", tmp_path / "cut.ckpt"
    io.save_checkpoint({"weights": torch.randn(1000)}, good)
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(DeclutrConfigError, match=r"Cannot read checkpoint .*cut\.ckpt.*corrupt or cut short"):
        load_checkpoint(cut)
    with pytest.raises(DeclutrConfigError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    assert torch.equal(load_checkpoint(good)["weights"], torch.load(good)["weights"])


def test_checkpoints_with_code_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"payload": print}, path)  # a pickled callable: weights_only loading must refuse it
    with pytest.raises(DeclutrConfigError, match="evil.ckpt"):
        load_checkpoint(path)
