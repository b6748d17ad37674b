"""Reading documents from files: .txt, .jsonl, .jsonl.gz, .parquet, .arrow (and folders written by
``datasets.Dataset.save_to_disk``), folders and globs.

Every reader is a generator over ``(key, text)`` that never loads a whole corpus in memory: Parquet and Arrow
files are read one record batch at a time, and only their text column.
Bad input (non-UTF-8 bytes, malformed JSON lines, empty documents, a gzip cut short) is skipped and
counted in a ``collections.Counter`` by ``(reason, file)``, never raised: one bad line must not end a long run.
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

SUFFIXES = (".txt", ".text", ".jsonl", ".jsonl.gz", ".parquet", ".arrow")
COLUMNAR = (".parquet", ".arrow")  # read with pyarrow, the text in column data.text_field
TEXT_SPLITS = ("file", "paragraph", "line")
# Why a document is skipped: the reasons the readers count (declutr.data.accounting totals them).
EMPTY, NOT_UTF8, MALFORMED_JSON, MISSING_TEXT_FIELD, UNREADABLE_FILE = (
    "empty", "not_utf8", "malformed_json", "missing_text_field", "unreadable_file")


def unreadable(err: Exception) -> str:
    """The skip reason of a file that could not be read, naming the error: ``unreadable_file:OSError``."""
    return f"{UNREADABLE_FILE}:{type(err).__name__}"


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
                # a dangling link is kept, so that reading it fails and counts it like any unreadable file
                files.update(p for p in match.rglob("*") if _has_suffix(p) and (p.is_file() or _dangling(p)))
            else:
                files.add(match)
    if not files:
        raise DeclutrConfigError(
            f"No corpus files found under {list(sources)!r}: folders are searched for {', '.join(SUFFIXES)} files."
        )
    return sorted(files)


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def _lines(path: Path, skipped: Counter, reports_file_errors: bool) -> Iterator[bytes]:
    """Raw lines of a file, transparently gunzipped. An unreadable file or a gzip cut short ends the
    file; it is counted once, by the reader that ``reports_file_errors`` (every reader sees the error)."""
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            yield from handle
    except (EOFError, gzip.BadGzipFile, OSError) as err:
        if reports_file_errors:
            skipped[unreadable(err), str(path)] += 1


def _read_whole(path: Path, skipped: Counter) -> str | None:
    try:
        return _decode(path.read_bytes(), path, skipped)
    except OSError as err:
        skipped[unreadable(err), str(path)] += 1
        return None


def _decode(raw: bytes, path: Path, skipped: Counter) -> str | None:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        skipped[NOT_UTF8, str(path)] += 1
        return None


def record_document(text, source: str, index: int, skipped: Counter) -> tuple[str, str] | None:
    """``(key, text)`` of record ``index`` of ``source`` (a JSON line, a table row), or ``None`` with the reason
    counted: no text in the field, or only whitespace."""
    if not isinstance(text, str):
        skipped[MISSING_TEXT_FIELD, source] += 1
    elif not text.strip():
        skipped[EMPTY, source] += 1
    else:
        return f"{source}:{index}", text
    return None


def _keep_all() -> bool:
    return True


def read_jsonl(path: Path, text_field: str, skipped: Counter, keep: Callable[[], bool] = _keep_all,
               reports_file_errors: bool = True) -> Iterator[tuple[str, str]]:
    """Documents of a JSON-lines file.

    ``keep()`` is called once per non-blank line, in order, and decides whether this reader owns it
    (sharding): lines owned by another rank or worker are never decoded or parsed, nor counted.
    """
    index = 0
    for raw in _lines(path, skipped, reports_file_errors):
        if not raw.strip():
            continue
        index += 1
        if not keep() or (line := _decode(raw, path, skipped)) is None:
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            skipped[MALFORMED_JSON, str(path)] += 1
            continue
        document = record_document(record.get(text_field) if isinstance(record, dict) else None, str(path), index,
                                   skipped)
        if document:
            yield document


def read_text(path: Path, split: str, skipped: Counter, keep: Callable[[], bool] = _keep_all,
              reports_file_errors: bool = True) -> Iterator[tuple[str, str]]:
    """Documents of a plain-text file: the whole file, each blank-line-separated block, or each line.

    ``keep()`` is called once per candidate document, in order, and decides whether this reader owns it.
    Candidates are the file itself for ``split="file"``, each non-blank line for ``"line"``, and each
    non-blank block for ``"paragraph"`` (where an unreadable file counts as one candidate, so that
    exactly one reader reports it).
    """
    if split not in TEXT_SPLITS:
        raise DeclutrConfigError(f"Unknown data.text_split={split!r}; use one of {TEXT_SPLITS}.")
    if split == "line":
        index = 0
        for raw in _lines(path, skipped, reports_file_errors):
            if raw.strip():
                index += 1
                if keep() and (line := _decode(raw, path, skipped)) is not None:
                    yield f"{path}:{index}", line.strip()
        return
    if split == "file":
        if keep() and (content := _read_whole(path, skipped)) is not None:
            if content.strip():
                yield f"{path}:1", content.strip()
            else:
                skipped[EMPTY, str(path)] += 1
        return
    file_errors: Counter = Counter()
    content = _read_whole(path, file_errors)
    if content is None:
        if keep():
            skipped.update(file_errors)
        return
    for index, chunk in enumerate(_paragraphs(content), 1):
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


def read_documents(path: Path, text_field: str, text_split: str, skipped: Counter,
                   keep: Callable[[], bool] = _keep_all, reports_file_errors: bool = True) -> Iterator[tuple[str, str]]:
    """Dispatch on the file name: JSON lines for ``.jsonl``/``.jsonl.gz``, plain text otherwise.

    Skipped input is counted in ``skipped`` under ``(reason, file)``.
    """
    if path.name.endswith((".jsonl", ".jsonl.gz")):
        return read_jsonl(path, text_field, skipped, keep, reports_file_errors)
    if path.name.endswith(COLUMNAR):
        return read_columnar(path, text_field, skipped, keep, reports_file_errors)
    return read_text(path, text_split, skipped, keep, reports_file_errors)


def read_columnar(path: Path, text_field: str, skipped: Counter, keep: Callable[[], bool] = _keep_all,
                  reports_file_errors: bool = True) -> Iterator[tuple[str, str]]:
    """Documents of a Parquet or Arrow file (IPC stream, as ``save_to_disk`` writes, or IPC file), one record
    batch at a time, only the ``text_field`` column. ``keep()`` is called once per row. A file that cannot be
    read, or is cut short, ends where it breaks and is counted once; a file without the column is a
    configuration error naming the columns it has."""
    try:
        batches = _record_batches(path, text_field)
        index = 0
        for batch in batches:
            for text in batch.column(0).to_pylist():
                index += 1
                if keep() and (document := record_document(text, str(path), index, skipped)):
                    yield document
    except DeclutrConfigError:
        raise
    except (OSError, ValueError, EOFError) as err:  # pyarrow's ArrowInvalid and ArrowIOError are among these
        if reports_file_errors:
            skipped[unreadable(err), str(path)] += 1


def _record_batches(path: Path, text_field: str) -> Iterator:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise DeclutrConfigError(f"{path} is a {path.suffix} file, which needs pyarrow: pip install pyarrow.") from None
    if path.suffix == ".parquet":
        reader = pq.ParquetFile(path)
        columns = reader.schema_arrow.names
        _check_column(path, text_field, columns)
        return reader.iter_batches(columns=[text_field], batch_size=1024)
    source = pa.memory_map(str(path))
    try:
        reader = pa.ipc.open_stream(source)
    except pa.ArrowInvalid:  # the IPC file format (with a footer) rather than a stream
        reader = pa.ipc.open_file(source)
        _check_column(path, text_field, reader.schema.names)
        return (reader.get_batch(i).select([text_field]) for i in range(reader.num_record_batches))
    _check_column(path, text_field, reader.schema.names)
    return (batch.select([text_field]) for batch in reader)


def _check_column(path: Path, text_field: str, columns: list[str]) -> None:
    if text_field not in columns:
        raise DeclutrConfigError(f"{path} has no column data.text_field={text_field!r}; its columns are "
                                 f"{columns}: set data.text_field to the one holding the text.")
