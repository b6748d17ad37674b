"""A small real prepared corpus with token-id shards, shared by the data tests."""

import shutil
from pathlib import Path

import pytest

from declutr.data.prepare import prepare_corpus
from tests.helpers.paths import STATE_UNION


@pytest.fixture(scope="session")
def prepared_corpus(tokenizer, tmp_path_factory) -> Path:
    """The 65 State of the Union addresses prepared with ``token_ids`` into 9 shards of up to 8 documents
    (read-only for the tests: copy it to change it)."""
    root = tmp_path_factory.mktemp("prepared")
    shutil.copytree(STATE_UNION, root / "raw" / "nltk_state_union")
    prepare_corpus(root / "raw", root / "corpus", tokenizer, min_tokens=100, shard_size=8, token_ids=True)
    return root / "corpus"
