"""Atomic file writes: write a temporary sibling, then rename it over the target, so a crash or a full disk
mid-write leaves the previous file intact (never half of a new one) and no temporary file behind.

Each write gets a temporary name of its own (process id and random letters): two processes writing the same
target each finish their own file, and the last rename wins, instead of one deleting the other's half-written file.
A process killed mid-write (SIGKILL, power loss) leaves its ``.{name}.{pid}.{random}.tmp`` behind: nothing reads it,
and it can be deleted once that process is gone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def unique_sibling(path: str | Path, kind: str = "tmp") -> Path:
    """A hidden name beside ``path`` that no other process or call uses: ``.{name}.{pid}.{random}.{kind}``.

    Nothing is created: the caller's ``open``/``mkdir`` gets the usual permissions (``tempfile.mkstemp`` would make
    the renamed file readable by its owner only)."""
    path = Path(path)
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.{kind}")


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary sibling of ``path`` to write; renamed to ``path`` on success, removed on failure."""
    path = Path(path)
    tmp = unique_sibling(path)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text_atomically(path: str | Path, text: str) -> None:
    """``path.write_text(text)``, atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
