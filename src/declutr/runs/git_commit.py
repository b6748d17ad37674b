"""The git commit the code runs from: a tag of every tracked run and a field of its ``results.json``."""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent


@cache
def git_commit(folder: Path = SOURCE_DIR) -> str | None:
    """Short sha of ``HEAD`` of the repository holding ``folder`` (this package's source), with ``-dirty`` when
    tracked files have uncommitted changes; ``None`` outside a git checkout (an installed wheel) or without git."""
    try:
        sha = _git(folder, "rev-parse", "--short", "HEAD")
        dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError, subprocess.TimeoutExpired):
        return None
    return f"{sha}-dirty" if dirty else sha


def _git(folder: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True,
                          timeout=10).stdout.strip()
