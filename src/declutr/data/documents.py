"""Reading documents from files: .txt, .jsonl, .jsonl.gz, folders and globs.

Every reader is a generator over ``(key, text)`` that never loads a whole corpus in memory.
Bad input (non-UTF-8 bytes, malformed JSON lines, empty documents, a gzip cut short) is skipped and
counted in a ``collections.Counter`` by reason, never raised: one bad line must not end a long run.
"""

from __future__ import annotations

import glob
import gzip
import json
import os
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from declutr.errors import DeclutrConfigError

SUFFIXES = (".txt", ".text", ".jsonl", ".jsonl.gz")
TEXT_SPLITS = ("file", "paragraph", "line")


def _has_suffix(path: Path) -> bool:
    return any(path.name.endswith(s) for s in SUFFIXES)


def resolve_files(sources: Sequence[str | os.PathLike] | str) -> list[Path]:
    """Expand files, folders (recursively) and glob patterns into a sorted, de-duplicated file list.

    Folders contribute files ending in one of ``SUFFIXES``; a file named explicitly is taken whatever
    its suffix (read as plain text unless it ends in ``.jsonl``/``.jsonl.gz``).
    """
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not sources:
        raise DeclutrConfigError("No corpus given: set `data.files` to one or more files, folders or globs.")
    files: set[Path] = set()
    for source in sources:
        source = str(source)
        matches = [Path(m) for m in glob.glob(source, recursive=True)] if glob.has_magic(source) else [Path(source)]
        if not matches or not all(m.exists() for m in matches):
            raise DeclutrConfigError(
                f"Corpus path {source!r} does not exist (resolved from {os.getcwd()!r}). "
                "Fix `data.files`, or run `python run.py task=prepare` to build the default corpus."
            )
        for match in matches:
            if match.is_dir():
                files.update(p for p in match.rglob("*") if p.is_file() and _has_suffix(p))
            else:
                files.add(match)
    if not files:
        raise DeclutrConfigError(
            f"No corpus files found under {list(sources)!r}: folders are searched for {', '.join(SUFFIXES)} files."
        )
    return sorted(files)


def _lines(path: Path, skipped: Counter) -> Iterator[bytes]:
    """Raw lines of a file, transparently gunzipped; a truncated gzip ends the file and is counted."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            yield from handle
    except (EOFError, gzip.BadGzipFile, OSError) as err:
        skipped[f"unreadable_file:{type(err).__name__}"] += 1


def _decode(raw: bytes, skipped: Counter) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        skipped["not_utf8"] += 1
        return None


def _keep_all() -> bool:
    return True


def read_jsonl(path: Path, text_field: str, skipped: Counter, keep: Callable[[], bool] = _keep_all) -> Iterator[tuple[str, str]]:
    """Documents of a JSON-lines file.

    ``keep()`` is called once per non-blank line, in order, and decides whether this reader owns it
    (sharding): lines owned by another rank or worker are never decoded or parsed, nor counted.
    """
    index = 0
    for raw in _lines(path, skipped):
        if not raw.strip():
            continue
        index += 1
        if not keep():
            continue
        line = _decode(raw, skipped)
        if line is None:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skipped["malformed_json"] += 1
            continue
        text = record.get(text_field) if isinstance(record, dict) else None
        if not isinstance(text, str):
            skipped["missing_text_field"] += 1
            continue
        if not text.strip():
            skipped["empty"] += 1
            continue
        yield f"{path}:{index}", text


def read_text(path: Path, split: str, skipped: Counter, keep: Callable[[], bool] = _keep_all) -> Iterator[tuple[str, str]]:
    """Documents of a plain-text file: the whole file, each blank-line-separated block, or each line.

    ``keep()`` is called once per candidate document (the file itself for ``split="file"``, else each
    non-blank block or line) and decides whether this reader owns it.
    """
    if split not in TEXT_SPLITS:
        raise DeclutrConfigError(f"Unknown data.text_split={split!r}; use one of {TEXT_SPLITS}.")
    if split == "file":
        if not keep():
            return
        try:
            content = _decode(path.read_bytes(), skipped)
        except OSError as err:
            skipped[f"unreadable_file:{type(err).__name__}"] += 1
            return
        if content is not None and not content.strip():
            skipped["empty"] += 1
        elif content is not None:
            yield f"{path}:1", content.strip()
        return
    if split == "line":
        index = 0
        for raw in _lines(path, skipped):
            if not raw.strip():
                continue
            index += 1
            if keep() and (line := _decode(raw, skipped)) is not None:
                yield f"{path}:{index}", line.strip()
        return
    file_errors: Counter = Counter()
    try:
        content = _decode(path.read_bytes(), file_errors)
    except OSError as err:
        file_errors[f"unreadable_file:{type(err).__name__}"] += 1
        content = None
    if content is None:
        if keep():  # the unreadable file counts as one candidate, so exactly one shard reports it
            skipped.update(file_errors)
        return
    index = 0
    for chunk in _paragraphs(content):
        index += 1
        if keep():
            yield f"{path}:{index}", chunk.strip()


def _paragraphs(content: str) -> Iterator[str]:
    block: list[str] = []
    for line in content.splitlines():
        if line.strip():
            block.append(line)
        elif block:
            yield "\n".join(block)
            block = []
    if block:
        yield "\n".join(block)


def read_documents(
    path: Path, text_field: str, text_split: str, skipped: Counter, keep: Callable[[], bool] = _keep_all
) -> Iterator[tuple[str, str]]:
    """Dispatch on the file name: JSON lines for ``.jsonl``/``.jsonl.gz``, plain text otherwise."""
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return read_jsonl(path, text_field, skipped, keep)
    return read_text(path, text_split, skipped, keep)
