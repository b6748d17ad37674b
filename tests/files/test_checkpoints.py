"""Atomic checkpoint writes with a sha256 side file, safe and clear checkpoint reads, local and through fsspec
(``memory://``, and ``s3://`` on a local moto server), and temporary files of each writer's own."""

import hashlib
import logging
import shutil
import subprocess
import threading
import uuid

import fsspec
import lightning as L
import pytest
import torch
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.demos.boring_classes import BoringModel

from declutr.errors import DeclutrConfigError
from declutr.files import checkpoints
from declutr.files.atomic import atomic_path
from declutr.files.checkpoints import AtomicCheckpointIO, load_checkpoint

DAMAGED = r"Cannot use checkpoint .*last\.ckpt: its sha256 does not match .*last\.ckpt\.sha256: the bytes were damaged"


def damage_the_middle(data: bytes) -> bytes:
    """The same bytes with 8 of them in the middle (inside the tensor data) overwritten: the length is kept."""
    middle = len(data) // 2
    return data[:middle] + b"\xff" * 8 + data[middle + 8:]


@pytest.fixture
def bucket():
    """A ``memory://`` folder of this test's own (the in-memory filesystem is shared by the whole process)."""
    url = f"memory://bucket-{uuid.uuid4().hex[:8]}/run"
    yield url
    fs = fsspec.filesystem("memory")
    if fs.exists(url):
        fs.rm(url, recursive=True)


def test_a_failed_write_leaves_the_previous_checkpoint_intact(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "ckpts" / "last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.ones(3)}, path)
    with pytest.raises(Exception):  # noqa: B017 (whatever torch.save raises half-way)
        io.save_checkpoint({"step": 2, "unpicklable": lambda: None}, path)  # fails half-way through torch.save
    assert load_checkpoint(path)["step"] == 1, "the old side file still matches the old checkpoint"
    assert sorted(p.name for p in path.parent.iterdir()) == ["last.ckpt", "last.ckpt.sha256"], "no temporary file"


def test_truncated_missing_and_foreign_checkpoints_fail_clearly(tmp_path):
    io = AtomicCheckpointIO()
    good, cut = tmp_path / "good.ckpt", tmp_path / "cut.ckpt"
    io.save_checkpoint({"weights": torch.randn(1000)}, good)
    cut.write_bytes(good.read_bytes()[:2000])
    with pytest.raises(DeclutrConfigError, match=r"Cannot read checkpoint .*cut\.ckpt.*corrupt or cut short"):
        load_checkpoint(cut)
    with pytest.raises(DeclutrConfigError, match="not found"):
        load_checkpoint(tmp_path / "missing.ckpt")
    with pytest.raises(DeclutrConfigError, match=r"Cannot reach checkpoint nofs://b/last.ckpt: Protocol not known"):
        load_checkpoint("nofs://b/last.ckpt")
    assert torch.equal(load_checkpoint(good)["weights"], torch.load(good)["weights"])


def test_checkpoints_with_code_are_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    torch.save({"payload": print}, path)  # a pickled callable: weights_only loading must refuse it
    with pytest.raises(DeclutrConfigError, match="evil.ckpt"):
        load_checkpoint(path)


def test_the_side_file_is_sha256sum_of_the_bytes_written(tmp_path):
    path = tmp_path / "last.ckpt"
    AtomicCheckpointIO().save_checkpoint({"weights": torch.randn(300_000)}, path)  # > 1 MiB: hashed in chunks
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    assert (tmp_path / "last.ckpt.sha256").read_text() == f"{digest}  last.ckpt\n"
    if shutil.which("sha256sum"):
        check = subprocess.run(["sha256sum", "-c", "last.ckpt.sha256"], cwd=tmp_path, capture_output=True, text=True)
        assert check.returncode == 0 and check.stdout == "last.ckpt: OK\n"


def test_a_checkpoint_damaged_in_the_middle_is_refused_everywhere_it_is_read(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"weights": torch.zeros(100_000)}, path)
    path.write_bytes(damage_the_middle(path.read_bytes()))
    assert torch.load(path, weights_only=True)["weights"].isnan().any(), "torch alone loads the garbage"
    with pytest.raises(DeclutrConfigError, match=DAMAGED + r" after it was written\. Use an earlier checkpoint"):
        load_checkpoint(path)
    with pytest.raises(DeclutrConfigError, match=DAMAGED):
        io.load_checkpoint(path, weights_only=True)  # what Lightning's resume calls


def test_a_checkpoint_without_a_side_file_loads_with_a_warning(tmp_path, caplog):
    path = tmp_path / "by-hand.ckpt"
    torch.save({"step": 3}, path)
    with caplog.at_level(logging.WARNING, logger=checkpoints.__name__):
        assert load_checkpoint(path)["step"] == 3
    assert f"Checkpoint {path} has no by-hand.ckpt.sha256 beside it" in caplog.text
    assert "cannot be verified" in caplog.text


def test_a_crash_before_the_side_file_is_written_leaves_an_unverified_checkpoint_never_a_wrong_pair(
        tmp_path, monkeypatch, caplog):
    """Step 4 of the write order fails (as a crash right after the rename would): the new checkpoint is in place
    without the old side file, so it loads with a warning instead of being refused for the old checksum."""
    io, path = AtomicCheckpointIO(), tmp_path / "last.ckpt"
    io.save_checkpoint({"step": 1}, path)

    def crash(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "_checksum_line", crash)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"step": 2}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.ckpt"]
    with caplog.at_level(logging.WARNING, logger=checkpoints.__name__):
        assert load_checkpoint(path)["step"] == 2
    assert "cannot be verified" in caplog.text


def test_removing_a_checkpoint_removes_its_side_file(tmp_path):
    io, path = AtomicCheckpointIO(), tmp_path / "step=2.ckpt"
    io.save_checkpoint({"step": 2}, path)
    io.remove_checkpoint(path)
    assert list(tmp_path.iterdir()) == []


def test_file_urls_are_local_paths(tmp_path):
    io = AtomicCheckpointIO()
    io.save_checkpoint({"step": 5}, f"file://{tmp_path}/ckpts/last.ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpts").iterdir()) == ["last.ckpt", "last.ckpt.sha256"]
    assert load_checkpoint(f"file://{tmp_path}/ckpts/last.ckpt")["step"] == 5


def test_memory_urls_are_written_loaded_verified_and_removed(bucket, tmp_path):
    io, fs, url = AtomicCheckpointIO(), fsspec.filesystem("memory"), f"{bucket}/checkpoints/last.ckpt"
    io.save_checkpoint({"step": 1, "weights": torch.zeros(100_000)}, url)
    assert sorted(fs.ls(f"{bucket}/checkpoints", detail=False)) == [url.removeprefix("memory:/") + suffix
                                                                     for suffix in ("", ".sha256")]
    assert load_checkpoint(url)["step"] == io.load_checkpoint(url)["step"] == 1
    assert not any(tmp_path.parent.glob("memory:*")) and not any(tmp_path.glob("memory:*")), "nothing local"

    with pytest.raises(Exception):  # noqa: B017 (a failed upload is discarded: the previous one stays)
        io.save_checkpoint({"step": 2, "unpicklable": lambda: None}, url)
    assert load_checkpoint(url)["step"] == 1

    fs.pipe_file(url, damage_the_middle(fs.cat_file(url)))
    with pytest.raises(DeclutrConfigError, match=DAMAGED):
        load_checkpoint(url)
    io.remove_checkpoint(url)
    assert fs.ls(f"{bucket}/checkpoints", detail=False) == []


class CountingModel(BoringModel):
    """BoringModel that counts the training steps this process ran."""

    def __init__(self):
        super().__init__()
        self.steps_run = 0

    def training_step(self, batch, batch_idx):
        self.steps_run += 1
        return super().training_step(batch, batch_idx)


def fit(dirpath: str, max_steps: int, ckpt_path: str | None = None) -> CountingModel:
    """A real Lightning fit through AtomicCheckpointIO, a checkpoint every 2 steps, the newest 1 kept plus last."""
    model = CountingModel()
    checkpoint = ModelCheckpoint(dirpath=dirpath, every_n_train_steps=2, save_top_k=1, save_last=True)
    trainer = L.Trainer(max_steps=max_steps, accelerator="cpu", logger=False, enable_progress_bar=False,
                        enable_model_summary=False, limit_val_batches=0, callbacks=[checkpoint],
                        plugins=[AtomicCheckpointIO()])
    trainer.fit(model, ckpt_path=ckpt_path, weights_only=True)
    assert trainer.global_step == max_steps
    return model


def test_a_lightning_run_checkpoints_to_memory_urls_and_resumes_from_them(bucket):
    fs, folder = fsspec.filesystem("memory"), f"{bucket}/checkpoints"
    fit(folder, max_steps=4)
    names = sorted(path.rsplit("/", 1)[1] for path in fs.ls(folder, detail=False))
    assert names == ["epoch=0-step=4.ckpt", "epoch=0-step=4.ckpt.sha256", "last.ckpt", "last.ckpt.sha256"], \
        "the top-k rotation removed step=2 and its side file"
    assert fit(folder, max_steps=6, ckpt_path=f"{folder}/last.ckpt").steps_run == 2, "resumed at step 4"

    fs.pipe_file(f"{folder}/last.ckpt", damage_the_middle(fs.cat_file(f"{folder}/last.ckpt")))
    with pytest.raises(DeclutrConfigError, match=DAMAGED):
        fit(folder, max_steps=8, ckpt_path=f"{folder}/last.ckpt")


@pytest.fixture
def s3_bucket(monkeypatch):
    """A bucket on a moto S3 server on localhost, reached through s3fs as ``s3://`` URLs."""
    pytest.importorskip("s3fs", reason="s3:// checkpoints need s3fs (pip install '.[test]')")
    moto_server = pytest.importorskip("moto.moto_server.threaded_moto_server",
                                      reason="the local S3 server needs moto[server] (pip install '.[test]')")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": f"http://{host}:{port}"})
    fsspec.filesystem("s3").mkdir("checkpoints")
    yield "s3://checkpoints"
    server.stop()


def test_s3_checkpoints_are_written_verified_and_resumed(s3_bucket):
    folder = f"{s3_bucket}/run/checkpoints"
    fit(folder, max_steps=4)
    fs = fsspec.filesystem("s3")
    names = sorted(path.rsplit("/", 1)[1] for path in fs.ls(folder, detail=False))
    assert names == ["epoch=0-step=4.ckpt", "epoch=0-step=4.ckpt.sha256", "last.ckpt", "last.ckpt.sha256"]
    assert load_checkpoint(f"{folder}/last.ckpt")["global_step"] == 4
    assert fit(folder, max_steps=6, ckpt_path=f"{folder}/last.ckpt").steps_run == 2

    fs.pipe_file(f"{folder}/last.ckpt", damage_the_middle(fs.cat_file(f"{folder}/last.ckpt")))
    with pytest.raises(DeclutrConfigError, match=DAMAGED):
        load_checkpoint(f"{folder}/last.ckpt")


def test_concurrent_writers_of_one_file_each_write_their_own_temporary_file(tmp_path):
    """Two writers are both half-way through the same target at once: each finishes its own file, the last
    rename wins, and neither fails nor leaves a temporary file (a shared temporary name lost one of them)."""
    target, both_half_way, errors = tmp_path / "model.bin", threading.Barrier(2, timeout=30), []

    def write(byte: bytes) -> None:
        try:
            with atomic_path(target) as tmp, open(tmp, "wb") as handle:
                handle.write(byte * 1_000_000)
                handle.flush()
                both_half_way.wait()
                handle.write(byte * 1_000_000)
        except Exception as err:  # reported below: an exception in a thread would otherwise pass unnoticed
            errors.append(err)

    writers = [threading.Thread(target=write, args=(byte,)) for byte in (b"a", b"b")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert errors == []
    assert target.read_bytes() in (b"a" * 2_000_000, b"b" * 2_000_000)
    assert [p.name for p in tmp_path.iterdir()] == ["model.bin"]
