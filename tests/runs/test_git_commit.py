"""The code version recorded with every run."""

import subprocess

from declutr.runs.git_commit import git_commit
from tests.helpers.paths import ROOT


def test_short_sha_of_the_checkout_and_none_outside_one(tmp_path):
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    assert (git_commit() or "").removesuffix("-dirty") == head.stdout.strip()  # both empty where the code is not a git checkout
    assert git_commit(tmp_path) is None


def test_uncommitted_changes_are_marked(tmp_path):
    def git(*args):
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=tmp_path, check=True,
                       capture_output=True)

    git("init", "-q")
    (tmp_path / "a.txt").write_text("1")
    git("add", "a.txt")
    git("commit", "-q", "-m", "one")
    clean = git_commit(tmp_path)
    (tmp_path / "a.txt").write_text("2")
    git_commit.cache_clear()
    assert git_commit(tmp_path) == f"{clean}-dirty"
