"""Token-id shards: a prepared corpus tokenised once, read back by memory-mapping, so training never tokenises.

Beside each text shard ``shard-XXXXX.jsonl.gz`` of a prepared corpus (``task=prepare`` with
``prepare.token_ids=true``), in the spirit of nanoGPT's ``.bin`` files:

- ``shard-XXXXX.ids.bin``: the token ids of its documents back to back, without special tokens
  (``uint16`` when the vocabulary fits, else ``uint32``);
- ``shard-XXXXX.offsets.npy``: ``int64``, ``n_docs + 1`` entries: document ``i`` is ``ids[offsets[i]:offsets[i + 1]]``.

``manifest.json`` records them under ``token_ids`` with the tokenizer that made them (name, vocabulary size,
a hash of the vocabulary), so a run whose model tokenises differently is refused instead of training on
the wrong ids. Document ``i`` keeps the key that the text path gives line ``i + 1`` of its text shard
(``<shard>.jsonl.gz:<line>``), so both paths read the same documents and sample the same spans.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from declutr.data.documents import unreadable
from declutr.errors import DeclutrConfigError
from declutr.files.atomic import atomic_path
from declutr.tokenizer import tokenizer_identity

DATA_FORMATS = ("auto", "text", "tokens")
TEXT_SUFFIX, IDS_SUFFIX, OFFSETS_SUFFIX = ".jsonl.gz", ".ids.bin", ".offsets.npy"
MANIFEST = "manifest.json"


def same_vocabulary(recorded: dict, current: dict) -> bool:
    """Whether ids made by tokenizer ``recorded`` mean the same tokens for ``current`` (identities as above; the
    name may differ, e.g. the same tokenizer installed elsewhere)."""
    return (recorded["vocab_size"], recorded["vocab_sha256"]) == (current["vocab_size"], current["vocab_sha256"])


def has_token_ids_of(manifest: dict, identity: dict) -> bool:
    """Whether a prepared corpus's ``manifest`` records token-id shards made with the vocabulary of ``identity``."""
    recorded = (manifest.get("token_ids") or {}).get("tokenizer")
    return bool(recorded) and same_vocabulary(recorded, identity)


def ids_dtype(vocab_size: int) -> np.dtype:
    """The narrowest unsigned type holding every id: ``uint16`` up to 65,536 tokens, else ``uint32``."""
    return np.dtype(np.uint16 if vocab_size <= 2**16 else np.uint32)


def write_token_shard(folder: Path, text_name: str, documents: Sequence[np.ndarray]) -> dict:
    """Write the ids and offsets of the text shard ``text_name`` (one id array per document, in line order,
    all of the corpus's id type); returns its manifest entry. Files are written under temporary names, then renamed."""
    stem = text_name.removesuffix(TEXT_SUFFIX)
    entry = {"ids": stem + IDS_SUFFIX, "offsets": stem + OFFSETS_SUFFIX, "documents": len(documents)}
    offsets = np.zeros(len(documents) + 1, dtype=np.int64)
    np.cumsum([len(doc) for doc in documents], out=offsets[1:])
    with _atomic_file(folder / entry["ids"]) as handle:
        for doc in documents:
            handle.write(doc.tobytes())
    with _atomic_file(folder / entry["offsets"]) as handle:
        np.save(handle, offsets)
    return {**entry, "tokens": int(offsets[-1])}


@contextmanager
def _atomic_file(path: Path) -> Iterator[BinaryIO]:
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        yield handle


def token_ids_section(identity: dict, shards: dict[str, dict]) -> dict:
    """The manifest's ``token_ids`` entry: the tokenizer, the id type, and per text shard its token shard."""
    return {"tokenizer": identity, "dtype": ids_dtype(identity["vocab_size"]).name, "shards": shards}


@dataclass(frozen=True)
class TokenShard:
    """The token ids of one text shard. ``documents()`` yields what reading the text shard yields (same keys,
    same sharding calls), with id arrays in place of texts."""

    text: Path
    ids: Path
    offsets: Path
    dtype: str
    num_documents: int

    def __str__(self) -> str:
        return str(self.text)

    def load(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, offsets)``, the ids memory-mapped; ``OSError`` or ``ValueError`` if missing or inconsistent."""
        offsets = np.load(self.offsets)
        size = os.path.getsize(self.ids) // np.dtype(self.dtype).itemsize
        if offsets.shape != (self.num_documents + 1,) or offsets[0] != 0 or offsets[-1] != size \
                or np.any(np.diff(offsets) < 0):
            raise ValueError(f"{self.ids.name} and {self.offsets.name} disagree with each other or the manifest")
        ids = np.memmap(self.ids, dtype=self.dtype, mode="r") if size else np.zeros(0, dtype=self.dtype)
        return ids, offsets

    def documents(self, skipped: Counter, keep: Callable[[], bool],
                  reports_file_errors: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        """``(key, ids)`` with ``ids`` a 1-D ``int64`` copy; ``keep()`` is called once per document, in order,
        and decides whether this reader owns it. Unreadable shards are counted like unreadable text files."""
        try:
            ids, offsets = self.load()
        except (OSError, ValueError) as err:
            if reports_file_errors:
                skipped[unreadable(err), str(self.text)] += 1
            return
        for i in range(self.num_documents):
            if keep():
                yield f"{self.text}:{i + 1}", np.asarray(ids[offsets[i] : offsets[i + 1]], dtype=np.int64)


def corpus_sources(files: Sequence[Path], data_format: str, tokenizer) -> list[Path | TokenShard]:
    """Each corpus file, or the token-id shard recorded for it. ``text`` reads every file as text, ``tokens``
    requires a token shard for every file, ``auto`` takes one wherever a prepared corpus recorded it.

    Raises :class:`DeclutrConfigError` for a token shard made by another tokenizer, or missing or damaged.
    """
    if data_format not in DATA_FORMATS:
        raise DeclutrConfigError(f"Unknown data.format={data_format!r}; use one of {DATA_FORMATS}.")
    if data_format == "text":
        return list(files)
    sections: dict[Path, dict | None] = {}
    identity: list[dict] = []  # this run's tokenizer, hashed once and only if some folder has token shards
    sources: list[Path | TokenShard] = []
    for path in files:
        folder = path.parent
        if folder not in sections:
            sections[folder] = _recorded_token_ids(folder, tokenizer, identity)
        section = sections[folder]
        entry = section["shards"].get(path.name) if section else None
        if entry is None:
            if data_format == "tokens":
                raise DeclutrConfigError(
                    f"data.format=tokens, but {path} has no token-id shard recorded in {folder / MANIFEST}. Write them "
                    "with `python run.py task=prepare prepare.token_ids=true` (same prepare.output_dir and model), "
                    "or set data.format=auto to tokenise the files that have none while training."
                )
            sources.append(path)
            continue
        shard = TokenShard(path, folder / entry["ids"], folder / entry["offsets"], section["dtype"], entry["documents"])
        try:
            shard.load()
        except (OSError, ValueError) as err:
            raise DeclutrConfigError(
                f"The token-id shard of {path} is missing or damaged ({err}). Rewrite the prepared corpus with "
                "`python run.py task=prepare prepare.overwrite=true`, or set data.format=text."
            ) from None
        sources.append(shard)
    return sources


def _recorded_token_ids(folder: Path, tokenizer, identity: list[dict]) -> dict | None:
    """The ``token_ids`` section of ``folder``'s manifest (``None`` if there is none), checked against the tokenizer."""
    try:
        manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None  # not a prepared corpus: its files are read as text
    section = manifest.get("token_ids") if isinstance(manifest, dict) else None
    if section is None:
        return None
    if not identity:
        identity.append(tokenizer_identity(tokenizer))
    recorded, current = section["tokenizer"], identity[0]
    if not same_vocabulary(recorded, current):
        raise DeclutrConfigError(
            f"The token-id shards in {folder} were made by the tokenizer {recorded['name']} ({recorded['vocab_size']} "
            f"tokens, vocabulary sha256 {recorded['vocab_sha256'][:12]}), but this run's model tokenises with "
            f"{current['name']} ({current['vocab_size']} tokens, sha256 {current['vocab_sha256'][:12]}). Prepare the "
            "corpus again with this run's model: `python run.py task=prepare <the same model overrides> "
            "prepare.overwrite=true` (add prepare.output_dir=<folder> to keep both, and point data.files at it), "
            "or set data.format=text to tokenise the text shards while training."
        )
    return section


def unigram_entropy(folder: Path) -> float | None:
    """Entropy (nats) of the token frequencies of a prepared corpus's token-id shards, or ``None`` if it has none.

    What an MLM loss costs that predicts every masked token from corpus frequencies alone, context unused.
    """
    counts = corpus_token_counts(folder)
    return None if counts is None else entropy_of_counts(counts)


def corpus_token_counts(folder: Path) -> np.ndarray | None:
    """How often each token id occurs in a prepared corpus's token-id shards (one entry per id of its tokenizer), or
    ``None`` if it has none."""
    try:
        section = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))["token_ids"]
    except (OSError, ValueError, KeyError):
        return None
    counts = np.zeros(section["tokenizer"]["vocab_size"], dtype=np.int64)
    for entry in section["shards"].values():
        ids = np.fromfile(Path(folder) / entry["ids"], dtype=section["dtype"])
        counts += np.bincount(ids, minlength=counts.size)[: counts.size]
    return counts


def entropy_of_counts(counts) -> float:
    """Entropy (nats) of the distribution that token counts (any sequence of non-negative numbers) give."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts[counts > 0] / counts.sum() if counts.any() else np.ones(1)
    return float(-(p * np.log(p)).sum())

