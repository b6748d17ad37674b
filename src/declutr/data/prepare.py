"""Turn the raw corpus folders into ``.jsonl.gz`` shards of long documents (and, optionally, their token ids).

Each source has its own splitter (Wikipedia articles at `` = Title = `` headings, Gutenberg books cut
into chunks at paragraph boundaries with the licence boilerplate removed, Brown with ``/TAG`` stripped,
JSON lines, Parquet and Arrow files one document per record, everything else one document per file). Documents
shorter than ``min_tokens`` are dropped and counted. With ``token_ids`` the ids counted for that check are kept as
token-id shards (see ``token_shards``). Tokenising, the costly part, runs in ``num_proc`` processes, in order.
"""

from __future__ import annotations

import gzip
import json
import multiprocessing
import re
import threading
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from declutr.data.documents import EMPTY, read_documents
from declutr.data.hub_dataset import HubDataset
from declutr.data.token_shards import (
    IDS_SUFFIX,
    MANIFEST,
    OFFSETS_SUFFIX,
    TEXT_SUFFIX,
    ids_dtype,
    token_ids_section,
    write_token_shard,
)
from declutr.errors import DeclutrConfigError
from declutr.files.atomic import atomic_path, write_text_atomically
from declutr.tokenizer import tokenize_document, tokenizer_identity

PREPARE_FORMAT = 2  # bump when the splitting/cleaning changes, so stale prepared corpora are detected
WIKI_TITLE = re.compile(r"^ = ([^=].*?) = $")
WIKI_ESCAPES = {" @-@ ": "-", " @,@ ": ",", " @.@ ": "."}
GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG.*$", re.MULTILINE)
GUTENBERG_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG.*$", re.MULTILINE)
BROWN_FILE = re.compile(r"^c[a-r]\d\d$")
GUTENBERG_SOURCES = {"nltk_gutenberg", "gitenberg"}
SKIP_NAMES = {"README", "CONTENTS", "cats.txt", "LICENSE_GITenberg_PG.txt"}
RECORD_SUFFIXES = (".jsonl", ".jsonl.gz", ".parquet", ".arrow")  # one document per record (data.text_field)
TOKENIZE_CHUNK = 64  # documents sent to a tokenising process at a time


def wikipedia_articles(path: Path) -> Iterator[tuple[str, str]]:
    """WikiText raw: an article starts at each top-level `` = Title = `` line; ``@-@`` escapes undone."""
    title, lines = None, []
    for line in read_lenient(path).splitlines():
        match = WIKI_TITLE.match(line)
        if match:
            if title is not None:
                yield title, _unescape_wiki("\n".join(lines))
            title, lines = match.group(1), []
        elif title is not None:
            lines.append(line.strip())
    if title is not None:
        yield title, _unescape_wiki("\n".join(lines))


def _unescape_wiki(text: str) -> str:
    for escape, plain in WIKI_ESCAPES.items():
        text = text.replace(escape, plain)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def strip_gutenberg_boilerplate(text: str) -> str:
    """The book between the ``*** START OF ...`` and ``*** END OF ...`` markers (whole text if absent)."""
    start, end = GUTENBERG_START.search(text), GUTENBERG_END.search(text)
    return text[start.end() if start else 0 : end.start() if end else len(text)].strip()


def chunk_paragraphs(text: str, chunk_words: int) -> Iterator[str]:
    """Consecutive paragraphs joined until a chunk holds at least ``chunk_words`` words."""
    chunk, words = [], 0
    for paragraph in re.split(r"\n\s*\n", text):
        paragraph = " ".join(paragraph.split())
        if not paragraph:
            continue
        chunk.append(paragraph)
        words += len(paragraph.split())
        if words >= chunk_words:
            yield "\n\n".join(chunk)
            chunk, words = [], 0
    if chunk:
        yield "\n\n".join(chunk)


def brown_text(path: Path) -> str:
    """A Brown corpus file with its ``word/TAG`` tokens reduced to words, paragraphs kept."""
    paragraphs = []
    for block in re.split(r"\n\s*\n", read_lenient(path)):
        words = [token.rsplit("/", 1)[0] for token in block.split()]
        if words:
            paragraphs.append(" ".join(words))
    return "\n\n".join(paragraphs)


def read_lenient(path: Path) -> str:
    """UTF-8, or Windows-1252 for the few older files in that encoding (it decodes any byte)."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")


def raw_documents(corpus_dir: Path, chunk_words: int, text_field: str = "text",
                  skipped: Counter | None = None) -> Iterator[tuple[str, str, str]]:
    """``(source, doc_id, text)`` for every document in the raw corpus folder, in a fixed order. Records of
    ``.jsonl``, ``.jsonl.gz``, ``.parquet`` and ``.arrow`` files hold the text in ``text_field``; what cannot be
    read there is counted in ``skipped`` by ``(reason, file)``."""
    skipped = Counter() if skipped is None else skipped
    for path in corpus_files(corpus_dir):
        source = path.relative_to(corpus_dir).parts[0]
        rel = str(path.relative_to(corpus_dir))
        if path.name.endswith(RECORD_SUFFIXES):
            for key, text in read_documents(path, text_field, "file", skipped):
                yield source, f"{rel}#{key.rsplit(':', 1)[1]}", text
        elif path.name.startswith("wiki.") and path.name.endswith(".raw"):
            for title, text in wikipedia_articles(path):
                yield source, f"{rel}#{title}", text
        elif source in GUTENBERG_SOURCES:
            book = strip_gutenberg_boilerplate(read_lenient(path))
            for i, chunk in enumerate(chunk_paragraphs(book, chunk_words)):
                yield source, f"{rel}#chunk{i}", chunk
        elif source == "nltk_brown":
            if BROWN_FILE.match(path.name):
                yield source, rel, brown_text(path)
        elif path.suffix in ("", ".txt"):
            yield source, rel, read_lenient(path).strip()


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The files of the raw corpus folder that :func:`raw_documents` reads, in its order."""
    return sorted(p for p in corpus_dir.rglob("*") if p.is_file() and p.name not in SKIP_NAMES)


class FileProgress:
    """A bar over the raw corpus's bytes, with an ETA: a file's bytes count once a document of a later file arrives
    (documents come in file order), so it moves file by file; its postfix counts documents read and kept and
    tokens/s. A Hugging Face dataset (no files) gets a bar of documents read, without a total."""

    def __init__(self, files: list[Path] | None, corpus_dir: Path, progress: bool) -> None:
        self.sizes = [p.stat().st_size for p in files] if files is not None else []
        self.index = {str(p.relative_to(corpus_dir)): i for i, p in enumerate(files or [])}
        self.done = 0  # files counted so far
        self.documents = 0
        if files is None:
            self.bar = tqdm(desc="Preparing", unit="doc", disable=not progress)
        else:
            self.bar = tqdm(total=sum(self.sizes), desc="Preparing", unit="B", unit_scale=True, unit_divisor=1024,
                            disable=not progress)

    def document(self, doc_id: str, report: PrepareReport) -> None:
        """One more document read, ``doc_id`` being ``<file>`` or ``<file>#<part>``."""
        self.documents += 1
        moved = False  # the postfix is set when the bar moves a file on, and every 100 documents
        if self.sizes:
            moved = self._files_done_before(self.index.get(doc_id.split("#", 1)[0], self.done))
        else:
            self.bar.update()
        if moved or self.documents % 100 == 0:
            self._show(report)

    def close(self, report: PrepareReport) -> None:
        self._files_done_before(len(self.sizes))
        self._show(report, refresh=True)
        self.bar.close()

    def _files_done_before(self, index: int) -> bool:
        if index <= self.done:
            return False
        self.bar.update(sum(self.sizes[self.done : index]))
        self.done = index
        return True

    def _show(self, report: PrepareReport, refresh: bool = False) -> None:
        elapsed = max(self.bar.format_dict["elapsed"], 1e-9)
        self.bar.set_postfix_str(f"{self.documents:,} docs, kept {sum(report.kept.values()):,}, "
                                 f"{report.tokens / elapsed:,.0f} tokens/s", refresh=refresh)


def hub_documents(hub: HubDataset, skipped: Counter) -> Iterator[tuple[str, str, str]]:
    """``(source, doc_id, text)`` for every row of a Hugging Face dataset, the source being the dataset."""
    for key, text in hub.documents(skipped, lambda: True):
        yield f"hf:{hub.name}", key, text


@dataclass
class PrepareReport:
    """What preparation kept and dropped, per source and reason."""

    kept: Counter = field(default_factory=Counter)
    dropped: Counter = field(default_factory=Counter)
    tokens: int = 0

    def summary(self) -> str:
        lines = [f"kept {sum(self.kept.values())} documents ({self.tokens:,} tokens), "
                 f"dropped {sum(self.dropped.values())}"]
        for source in sorted(set(self.kept) | {s for s, _ in self.dropped}):
            drops = ", ".join(f"{n} {reason}" for (s, reason), n in sorted(self.dropped.items()) if s == source)
            lines.append(f"  {source:<22} kept {self.kept[source]:>5}" + (f"   dropped: {drops}" if drops else ""))
        return "\n".join(lines)


def prepare_corpus(
    corpus_dir: str | Path,
    output_dir: str | Path,
    tokenizer,
    min_tokens: int,
    chunk_words: int = 3000,
    shard_size: int = 500,
    settings: dict | None = None,
    token_ids: bool = False,
    progress: bool = False,
    num_proc: int = 1,
    text_field: str = "text",
    hub: HubDataset | None = None,
) -> PrepareReport:
    """Write ``shard-XXXXX.jsonl.gz`` files of ``{"id", "source", "text", "num_tokens"}``, with ``token_ids``
    their token-id shards too, and a ``manifest.json`` (recording ``settings``). Shards are written under
    temporary names and renamed, and the manifest last, so an interrupted run leaves no half shard behind.
    ``progress`` shows a bar of the corpus's bytes read with an ETA, and documents kept and tokens/s; ``num_proc``
    processes tokenise (the shards are the same whatever their number); ``text_field`` names the text of
    record files (JSON lines, Parquet, Arrow); ``hub``, a Hugging Face dataset, replaces ``corpus_dir``."""
    corpus_dir, output_dir = Path(corpus_dir), Path(output_dir)
    if hub is None and not corpus_dir.is_dir():
        raise DeclutrConfigError(f"Raw corpus folder {corpus_dir} not found: set prepare.corpus_dir or DECLUTR_DATA_DIR.")
    output_dir.mkdir(parents=True, exist_ok=True)
    dtype = ids_dtype(len(tokenizer))
    report, records, ids, shards, token_shards = PrepareReport(), [], [], [], {}
    bar = FileProgress(corpus_files(corpus_dir) if hub is None else None, corpus_dir, progress)
    unreadable: Counter = Counter()
    documents = (raw_documents(corpus_dir, chunk_words, text_field, unreadable) if hub is None
                 else hub_documents(hub, unreadable))
    for source, doc_id, text, doc_ids in _tokenized(documents, tokenizer, num_proc):
        bar.document(doc_id, report)
        if not text:
            report.dropped[source, EMPTY] += 1
            continue
        if len(doc_ids) < min_tokens:
            report.dropped[source, f"shorter than {min_tokens} tokens"] += 1
            continue
        report.kept[source] += 1
        report.tokens += len(doc_ids)
        records.append({"id": doc_id, "source": source, "text": text, "num_tokens": len(doc_ids)})
        if token_ids:
            ids.append(np.asarray(doc_ids, dtype=dtype))
        if len(records) == shard_size:
            _write_shards(output_dir, shards, token_shards, records, ids)
            records, ids = [], []
    if records:
        _write_shards(output_dir, shards, token_shards, records, ids)
    bar.close(report)
    for (reason, file), n in unreadable.items():  # what the record files could not give
        report.dropped[file if hub is not None else Path(file).relative_to(corpus_dir).parts[0], reason] += n
    if not shards:
        raise DeclutrConfigError(f"No document in {corpus_dir} reaches {min_tokens} tokens: lower prepare.min_tokens.")
    manifest = {"settings": settings, "shards": shards, "documents": sum(report.kept.values()), "tokens": report.tokens,
                "kept": dict(report.kept), "dropped": {f"{s}: {r}": n for (s, r), n in report.dropped.items()}}
    if token_ids:
        manifest["token_ids"] = token_ids_section(tokenizer_identity(tokenizer), token_shards)
    write_text_atomically(output_dir / MANIFEST, json.dumps(manifest, indent=2))
    return report


def _tokenized(documents: Iterator[tuple[str, str, str]], tokenizer,
               num_proc: int) -> Iterator[tuple[str, str, str, list[int]]]:
    """``(source, doc_id, text, ids)`` in the order of ``documents``, tokenised in ``num_proc`` processes. At most
    ``4 * num_proc`` chunks are in flight, so a corpus of any size streams through in bounded memory."""
    if num_proc <= 1:
        for source, doc_id, text in documents:
            yield source, doc_id, text, _document_ids(tokenizer, text)
        return
    pending: deque[list] = deque()  # chunks sent, oldest first: imap returns their ids in the same order
    room = threading.BoundedSemaphore(4 * num_proc)

    def texts() -> Iterator[list[str]]:  # read by the pool's feeder thread
        for chunk in chunks(documents, TOKENIZE_CHUNK):
            room.acquire()
            pending.append(chunk)
            yield [text for _, _, text in chunk]

    context = multiprocessing.get_context("spawn")  # no fork of a process holding a tokenizer's threads
    with context.Pool(num_proc, initializer=_set_worker_tokenizer, initargs=(tokenizer,)) as pool:
        for ids in pool.imap(_tokenize_chunk, texts()):
            chunk = pending.popleft()
            room.release()
            for (source, doc_id, text), doc_ids in zip(chunk, ids, strict=True):
                yield source, doc_id, text, doc_ids


def chunks(items: Iterable, size: int) -> Iterator[list]:
    """Consecutive lists of ``size`` items (the last may be shorter)."""
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _document_ids(tokenizer, text: str) -> list[int]:
    return tokenize_document(tokenizer, text) if text else []


_WORKER_TOKENIZER = None


def _set_worker_tokenizer(tokenizer) -> None:
    global _WORKER_TOKENIZER
    _WORKER_TOKENIZER = tokenizer


def _tokenize_chunk(texts: list[str]) -> list[list[int]]:
    return [_document_ids(_WORKER_TOKENIZER, text) for text in texts]


def shard_texts(path: Path) -> list[str]:
    """The documents' texts of a prepared text shard, in order; a damaged or unreadable shard is refused (a corpus
    this project wrote has no bad line to skip)."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            return [json.loads(line)["text"] for line in handle if line.strip()]
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise DeclutrConfigError(f"Text shard {path} is unreadable ({err!r}): rewrite the corpus with "
                                 "`python run.py task=prepare prepare.overwrite=true`.") from None


def add_token_ids(prepared_dir: str | Path, tokenizer, progress: bool = False) -> int:
    """Tokenise the text shards of a corpus prepared earlier into token-id shards and record them in its
    manifest (no re-splitting of the raw corpus). Returns the number of tokens written. ``progress``: a bar over
    the shards, with an ETA."""
    folder = Path(prepared_dir)
    manifest = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
    dtype = ids_dtype(len(tokenizer))
    token_shards = {}
    for name in tqdm(manifest["shards"], desc="Token ids", unit="shard", disable=not progress):
        documents = [np.asarray(tokenize_document(tokenizer, text), dtype=dtype) for text in shard_texts(folder / name)]
        token_shards[name] = write_token_shard(folder, name, documents)
    manifest["token_ids"] = token_ids_section(tokenizer_identity(tokenizer), token_shards)
    write_text_atomically(folder / MANIFEST, json.dumps(manifest, indent=2))
    return sum(entry["tokens"] for entry in token_shards.values())


def remove_prepared(output_dir: Path) -> None:
    """Delete a prepared corpus (manifest first, so no manifest ever names missing shards), keeping the folder."""
    (output_dir / MANIFEST).unlink(missing_ok=True)
    for suffix in (TEXT_SUFFIX, IDS_SUFFIX, OFFSETS_SUFFIX):
        for old in output_dir.glob(f"shard-*{suffix}"):
            old.unlink()


def _write_shards(output_dir: Path, shards: list[str], token_shards: dict[str, dict], records: list[dict],
                  ids: list[np.ndarray]) -> None:
    name = _write_shard(output_dir, len(shards), records)
    shards.append(name)
    if ids:
        token_shards[name] = write_token_shard(output_dir, name, ids)


def _write_shard(output_dir: Path, index: int, records: list[dict]) -> str:
    name = f"shard-{index:05d}{TEXT_SUFFIX}"
    with atomic_path(output_dir / name) as tmp, gzip.open(tmp, "wt", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    return name
