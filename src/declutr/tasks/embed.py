"""``task=embed``: every text of a ``.txt``/``.jsonl`` file -> a ``.npy``/``.parquet`` file of embeddings.

Texts are streamed in blocks of ``embed.block_size``: memory holds one block of texts and vectors, whatever
the file size (``.npy`` is filled through a memory map). Row i of the output is text i of the input: every
line of a ``.txt`` (empty lines included), every non-blank line of a ``.jsonl``. Lines end at ``\n`` or
``\r\n`` only: a lone ``\r``, U+2028 or any other character ``str.splitlines`` would break at stays inside
its text, so row i is line i. The output is written under a temporary name and renamed when complete, so
an interrupted run never leaves a partial file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from itertools import islice
from pathlib import Path

import numpy as np
from omegaconf import DictConfig
from tqdm.auto import tqdm

from declutr.encoder import Encoder
from declutr.errors import DeclutrConfigError
from declutr.files.atomic import atomic_path
from declutr.model.inference_precision import autocast, resolve

INPUTS = (".txt", ".jsonl")
PROGRESS_BATCHES = 16  # batches encoded between two updates of the bar (texts/s and ETA), however large a block


def run(cfg: DictConfig) -> dict:
    options = cfg.embed
    for key, what in (("model", "a run folder, .ckpt, exported folder or HF name"), ("input", "a .txt or .jsonl file"),
                      ("output", "a .npy or .parquet file")):
        if not options[key]:
            raise DeclutrConfigError(f"task=embed needs embed.{key}=<{what}>.")
    source, output = Path(options.input), Path(options.output)
    writer = _check_paths(source, output, options.overwrite)
    count = sum(1 for _ in _read_texts(source, options.text_field))  # also checks every line before any compute
    encoder = Encoder(options.model, device=options.device, max_length=options.max_length, dtype=options.dtype)
    precision = resolve(options.precision, encoder.device)
    start = time.perf_counter()
    with writer(output, count, encoder.dim) as write, autocast(precision, encoder.device), \
            tqdm(total=count, desc="Embedding", unit="text", disable=not options.progress) as bar:
        for block in _blocks(_read_texts(source, options.text_field), options.block_size):
            vectors = []
            for step in _blocks(block, PROGRESS_BATCHES * options.batch_size):  # the bar moves within a block
                vectors.append(encoder.encode(step, batch_size=options.batch_size,
                                              normalize_embeddings=options.normalize, long_texts=options.long_texts))
                bar.update(len(step))
            write(np.concatenate(vectors) if len(vectors) > 1 else vectors[0])  # one write (row group) per block
    rate = count / max(time.perf_counter() - start, 1e-9)
    print(f"Embedded {count:,} texts of {source} into {output}: {encoder.dim} dimensions, {precision} encoder, "
          f"{rate:,.0f} texts/s.")
    return {"output": str(output), "count": count, "dim": encoder.dim, "precision": precision, "texts_per_s": rate}


def _check_paths(source: Path, output: Path, overwrite: bool) -> Callable:
    """Fail before any work on a bad input or output; returns the writer for the output's format."""
    if not source.is_file():
        raise DeclutrConfigError(f"embed.input={source} is not a file: pass a .txt (one text per line) or .jsonl file.")
    if source.suffix not in INPUTS:
        raise DeclutrConfigError(f"embed.input={source}: unknown format {source.suffix!r}; use .txt or .jsonl.")
    writers = {".npy": _npy_writer, ".parquet": _parquet_writer}
    if output.suffix not in writers:
        raise DeclutrConfigError(f"embed.output={output}: unknown format {output.suffix!r}; use .npy or .parquet.")
    if output.exists() and not overwrite:
        raise DeclutrConfigError(f"embed.output={output} already exists: set embed.overwrite=true or another path.")
    if output.suffix == ".parquet":
        _pyarrow()
    output.parent.mkdir(parents=True, exist_ok=True)
    return writers[output.suffix]


def _read_texts(path: Path, text_field: str) -> Iterator[str]:
    """The texts of ``path`` in file order."""
    for number, line in _lines(path):
        if path.suffix == ".txt":
            yield line
        elif line.strip():
            yield _json_text(line, text_field, f"{path}:{number}")


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """``(number, text)`` of each line of ``path``, numbered from 1, without its ending.

    The file is read in binary because text mode's universal newlines also end a line at a lone ``\r``,
    which would give a text one line more than the file has and shift every later row. A final line
    ending adds no line.
    """
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, 1):  # binary iteration splits at b"\n" only
            if raw.endswith(b"\n"):
                raw = raw[:-2] if raw.endswith(b"\r\n") else raw[:-1]
            yield number, _decode(raw, path, number)


def _decode(raw: bytes, path: Path, number: int) -> str:
    """``raw`` (line ``number`` of ``path``) as UTF-8, or an error naming the line and column of the bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        column = len(raw[: err.start].decode("utf-8")) + 1  # strict decoding fails at the first bad byte
        raise DeclutrConfigError(
            f"{path} is not UTF-8: line {number}, column {column} (character; byte {err.start + 1} of the line) "
            f"is 0x{raw[err.start]:02x} ({err.reason}). Re-encode the file as UTF-8, e.g. "
            f"`iconv -f latin1 -t utf-8 {path.name} > {path.stem}.utf8{path.suffix}`.") from None


def _json_text(line: str, text_field: str, where: str) -> str:
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        raise DeclutrConfigError(f"{where} is not valid JSON ({err.msg}): fix or remove that line.") from None
    text = record.get(text_field) if isinstance(record, dict) else None
    if not isinstance(text, str):
        raise DeclutrConfigError(f"{where} has no text in field {text_field!r}: set embed.text_field to the field "
                                 "holding the text.")
    return text


def _blocks(items: Iterable[str], size: int) -> Iterator[list[str]]:
    iterator = iter(items)
    while block := list(islice(iterator, size)):
        yield block


@contextmanager
def _npy_writer(path: Path, count: int, dim: int) -> Iterator[Callable[[np.ndarray], None]]:
    """Writes consecutive blocks ``(n, dim)`` into a ``(count, dim)`` float32 ``.npy`` memory map."""
    with atomic_path(path) as tmp:
        array = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(count, dim))
        filled = 0

        def write(block: np.ndarray) -> None:
            nonlocal filled
            array[filled : filled + len(block)] = block  # noqa: F821 (ruff: the del below runs after every write)
            filled += len(block)

        yield write
        array.flush()
        del array  # closes the map before the rename


@contextmanager
def _parquet_writer(path: Path, count: int, dim: int) -> Iterator[Callable[[np.ndarray], None]]:
    """Writes each block ``(n, dim)`` as a row group of a one-column (``embedding``) Parquet file."""
    pa, pq = _pyarrow()
    schema = pa.schema([("embedding", pa.list_(pa.float32(), dim))])
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema) as writer:
        yield lambda block: writer.write_table(pa.table(
            [pa.FixedSizeListArray.from_arrays(pa.array(block.reshape(-1)), dim)], schema=schema))


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DeclutrConfigError("A .parquet embed.output needs pyarrow: `pip install pyarrow`, or write .npy.") from None
    return pyarrow, pyarrow.parquet
