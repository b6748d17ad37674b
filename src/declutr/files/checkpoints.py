"""Checkpoints written atomically with a sha256 beside them, and read back verified: local paths, ``file://`` URLs
and any URL fsspec reaches (``s3://``, ``gs://``, ``memory://``, ... with that filesystem's package installed).

Each ``<name>.ckpt`` gets a side file ``<name>.ckpt.sha256`` in ``sha256sum`` format (``sha256sum -c`` checks it
too). A zip checkpoint has no checksum of its own that loading checks: one whose bytes were damaged in the middle
can load and hold NaN or garbage. Every read here (:func:`load_checkpoint`, and Lightning's resume through
:meth:`AtomicCheckpointIO.load_checkpoint`) refuses a checkpoint that does not match its side file.
"""

from __future__ import annotations

import hashlib
import logging
import os
import posixpath
from pathlib import Path
from typing import IO, Any

import torch
from fsspec.core import url_to_fs
from fsspec.implementations.local import LocalFileSystem
from lightning.pytorch.plugins.io import TorchCheckpointIO

from declutr.errors import DeclutrConfigError
from declutr.files.atomic import atomic_path

log = logging.getLogger(__name__)

CHECKSUM_SUFFIX = ".sha256"  # <name>.ckpt -> <name>.ckpt.sha256
CHUNK = 1 << 20  # bytes hashed per read: a multi-GB checkpoint is never read into memory at once


class AtomicCheckpointIO(TorchCheckpointIO):
    """Checkpoints that are never half-written and carry their sha256.

    A local checkpoint (a plain path or a ``file://`` URL) is ``torch.save``d into a temporary sibling, flushed to
    disk, then renamed over the target. Any other URL is uploaded inside an fsspec transaction, which publishes the
    file only once it is complete (object stores have no rename, but an upload appears whole or not at all). Either
    way a crash or a full disk mid-write leaves the previous checkpoint intact, never half of a new one.

    The sha256 is computed from the bytes as ``torch.save`` writes them (no second read), then written in this order:

    1. the new checkpoint is written completely under its temporary name (remote: the uncommitted upload);
    2. the old side file is deleted;
    3. the new checkpoint is renamed into place (remote: the upload is committed);
    4. the new side file is written atomically.

    A crash between two steps leaves the old or the new checkpoint with either no side file (it then loads with a
    warning that it cannot be verified) or its own side file: never a side file of the other version, which would
    refuse a good checkpoint, and no damaged checkpoint is ever accepted against a checksum. (Two processes saving
    one checkpoint path at once can pair one's checkpoint with the other's side file: that is refused, not accepted.)
    """

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        fs, target = _filesystem(path)
        if isinstance(fs, LocalFileSystem):
            _save_local(checkpoint, Path(target))
        else:
            _save_remote(checkpoint, fs, target)

    def load_checkpoint(self, path, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Lightning's resume reads through here: the side file is checked first (:func:`verify_checksum`), then
        Lightning loads it as usual (its defaults for ``map_location`` and ``weights_only`` kept)."""
        fs, target = _filesystem(path)
        if fs.isfile(target):  # a missing file keeps Lightning's own error
            verify_checksum(path)
        return super().load_checkpoint(path, *args, **kwargs)

    def remove_checkpoint(self, path) -> None:
        """Delete a checkpoint (ModelCheckpoint's top-k rotation) and its side file; the side file goes first, so a
        crash in between leaves a checkpoint that merely cannot be verified."""
        fs, target = _filesystem(path)
        if fs.exists(target + CHECKSUM_SUFFIX):
            fs.rm(target + CHECKSUM_SUFFIX)
        super().remove_checkpoint(path)


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents (a local path or any fsspec URL) with ``weights_only=True`` (no code from the file
    runs), verified against its side file, or a clear error naming the file when it is missing, damaged,
    truncated or not a checkpoint."""
    fs, target = _filesystem(path)
    if not fs.isfile(target):
        raise DeclutrConfigError(f"Checkpoint {path} not found: check ckpt_path (runs keep theirs in <run>/checkpoints/).")
    verify_checksum(path)
    try:
        if isinstance(fs, LocalFileSystem):
            return torch.load(target, map_location="cpu", weights_only=True, mmap=True)
        with fs.open(target, "rb") as handle:
            return torch.load(handle, map_location="cpu", weights_only=True)
    except Exception as err:  # a cut-short zip, random bytes, a pickle with code in it, ...
        raise DeclutrConfigError(
            f"Cannot read checkpoint {path} ({type(err).__name__}: {str(err)[:200]}): it is corrupt or cut short. "
            "Use an earlier checkpoint of the run (e.g. the best one, or last.ckpt)."
        ) from None


def verify_checksum(path: str | Path) -> None:
    """Refuse the checkpoint at ``path`` when its bytes do not hash to what its side file states; a checkpoint
    without a side file (written by hand or before side files existed) is accepted with a warning."""
    fs, target = _filesystem(path)
    side = f"{path}{CHECKSUM_SUFFIX}"
    if not fs.isfile(target + CHECKSUM_SUFFIX):
        log.warning("Checkpoint %s has no %s beside it (written by hand or by an older version): its bytes cannot "
                    "be verified.", path, posixpath.basename(side))
        return
    stated = fs.cat_file(target + CHECKSUM_SUFFIX).decode("utf-8", errors="replace").split()
    if stated[:1] != [_sha256_of(fs, target)]:
        raise DeclutrConfigError(
            f"Cannot use checkpoint {path}: its sha256 does not match {side}: the bytes were damaged after it was "
            "written. Use an earlier checkpoint of the run (e.g. the best one, or last.ckpt)."
        )


def _filesystem(path) -> tuple[Any, str]:
    """The fsspec filesystem of ``path`` and the path on it, or a clear error when its protocol's package is missing
    (e.g. ``gs://`` needs gcsfs) or unknown."""
    try:
        return url_to_fs(str(path))
    except (ImportError, ValueError) as err:
        raise DeclutrConfigError(f"Cannot reach checkpoint {path}: {err}. Install that filesystem's package, or use "
                                 "a local path.") from None


def _save_local(checkpoint: dict[str, Any], path: Path) -> None:
    """Steps 1-4 of :class:`AtomicCheckpointIO` on a local disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    side = path.with_name(path.name + CHECKSUM_SUFFIX)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            digest = _save_hashed(checkpoint, handle)
            os.fsync(handle.fileno())
        side.unlink(missing_ok=True)
    with atomic_path(side) as tmp, open(tmp, "w", encoding="utf-8") as handle:
        handle.write(_checksum_line(digest, path.name))
        handle.flush()
        os.fsync(handle.fileno())  # a side file emptied by a power cut would refuse a good checkpoint


def _save_remote(checkpoint: dict[str, Any], fs, target: str) -> None:
    """Steps 1-4 of :class:`AtomicCheckpointIO` on an fsspec filesystem: a transaction discards the upload when
    ``torch.save`` fails and commits it when the ``with`` block ends."""
    fs.makedirs(posixpath.dirname(target), exist_ok=True)
    side = target + CHECKSUM_SUFFIX
    with fs.transaction:
        with fs.open(target, "wb") as handle:
            digest = _save_hashed(checkpoint, handle)
        if fs.exists(side):
            fs.rm(side)
    with fs.transaction:
        fs.pipe_file(side, _checksum_line(digest, posixpath.basename(target)).encode("utf-8"))


class _HashingWriter:
    """Passes ``torch.save``'s writes on to ``handle`` and hashes them: the checkpoint is hashed as it is written
    (``torch.save`` writes a file object strictly in order, without seeking back)."""

    def __init__(self, handle: IO[bytes]) -> None:
        self.handle = handle
        self.sha256 = hashlib.sha256()

    def write(self, data) -> int:
        self.sha256.update(data)
        return self.handle.write(data)

    def flush(self) -> None:
        self.handle.flush()


def _save_hashed(checkpoint: dict[str, Any], handle: IO[bytes]) -> str:
    """``torch.save(checkpoint, handle)``; returns the sha256 (hex) of the bytes written."""
    writer = _HashingWriter(handle)
    torch.save(checkpoint, writer)
    return writer.sha256.hexdigest()


def _sha256_of(fs, target: str) -> str:
    """The sha256 (hex) of a file, read in chunks of :data:`CHUNK` bytes."""
    sha256 = hashlib.sha256()
    with fs.open(target, "rb") as handle:
        while chunk := handle.read(CHUNK):
            sha256.update(chunk)
    return sha256.hexdigest()


def _checksum_line(digest: str, name: str) -> str:
    """``sha256sum``'s line for file ``name``: ``<hex>  <name>``."""
    return f"{digest}  {name}\n"
