"""Fixtures of the task tests."""

import pytest

from tests.helpers.paths import CORPUS


@pytest.fixture
def raw_corpus(tmp_path):
    raw = tmp_path / "raw" / "nltk_inaugural"
    raw.mkdir(parents=True)
    for source in sorted((CORPUS / "nltk_inaugural" / "inaugural").glob("18*.txt"))[:12]:
        (raw / source.name).write_bytes(source.read_bytes())
    return raw.parent
