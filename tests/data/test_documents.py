"""Reading documents from every supported format, and counting (never raising on) bad input."""

import gzip
import json
from collections import Counter

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from declutr.data.accounting import totals_by_reason
from declutr.data.documents import read_documents, resolve_files
from declutr.errors import DeclutrConfigError
from tests.helpers.paths import STATE_UNION


def _read(path, split="file", field="text"):
    """Documents and the skip counts by reason (all skips here come from ``path`` itself)."""
    skipped = Counter()
    docs = list(read_documents(path, field, split, skipped))
    assert all(file == str(path) for _reason, file in skipped)
    return docs, totals_by_reason(skipped)


def test_resolves_folders_globs_and_files_sorted_without_duplicates():
    folder = resolve_files([str(STATE_UNION)])
    assert len(folder) == 65 and folder == sorted(folder)
    globbed = resolve_files([str(STATE_UNION / "19*.txt"), str(STATE_UNION / "1945-Truman.txt")])
    assert len(globbed) == len(set(globbed)) == len([f for f in folder if f.name.startswith("19")])


def test_missing_path_names_it_and_the_fix(tmp_path):
    with pytest.raises(DeclutrConfigError, match=r"does not exist.*data.files"):
        resolve_files([str(tmp_path / "nope")])
    with pytest.raises(DeclutrConfigError, match="No corpus files found"):
        resolve_files([str(tmp_path)])


def test_text_splits(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("first para\nstill first\n\n\nsecond para\n\nthird\n")
    assert [t for _, t in _read(path, "file")[0]] == ["first para\nstill first\n\n\nsecond para\n\nthird"]
    assert [t for _, t in _read(path, "paragraph")[0]] == ["first para\nstill first", "second para", "third"]
    assert [t for _, t in _read(path, "line")[0]] == ["first para", "still first", "second para", "third"]


def test_jsonl_and_gzip_with_malformed_lines_counted(tmp_path):
    lines = [json.dumps({"text": "good one"}), "{not json", json.dumps({"body": "no text field"}),
             json.dumps({"text": "   "}), "", json.dumps({"text": "good two"})]
    plain = tmp_path / "a.jsonl"
    plain.write_text("\n".join(lines) + "\n")
    packed = tmp_path / "b.jsonl.gz"
    with gzip.open(packed, "wt") as handle:
        handle.write("\n".join(lines) + "\n")
    for path in (plain, packed):
        docs, skipped = _read(path)
        assert [t for _, t in docs] == ["good one", "good two"]
        assert skipped == Counter(malformed_json=1, missing_text_field=1, empty=1)


def test_non_utf8_and_empty_files_are_counted_not_raised(tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(b"caf\xe9 \xff\xfe binary")
    empty = tmp_path / "empty.txt"
    empty.write_text("  \n\n")
    assert _read(bad) == ([], Counter(not_utf8=1))
    assert _read(empty) == ([], Counter(empty=1))
    lines = tmp_path / "lines.txt"
    lines.write_bytes(b"fine line\n\xff\xfe\n")
    docs, skipped = _read(lines, "line")
    assert [t for _, t in docs] == ["fine line"] and skipped == Counter(not_utf8=1)


def test_truncated_gzip_keeps_what_was_readable(tmp_path):
    path = tmp_path / "cut.jsonl.gz"
    with gzip.open(path, "wt") as handle:
        for i in range(2000):
            handle.write(json.dumps({"text": f"document number {i} " * 20}) + "\n")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    docs, skipped = _read(path)
    assert 0 < len(docs) < 2000
    assert sum(skipped.values()) == 1 and next(iter(skipped)).startswith("unreadable_file")


def test_a_dangling_link_in_a_folder_is_counted_as_unreadable(tmp_path):
    (tmp_path / "real.txt").write_text("a real document")
    (tmp_path / "gone.txt").symlink_to(tmp_path / "deleted.txt")
    files = resolve_files(tmp_path)
    assert files == [tmp_path / "gone.txt", tmp_path / "real.txt"]
    docs, skipped = _read(files[0])
    assert docs == [] and skipped == Counter({"unreadable_file:FileNotFoundError": 1})


def _union_texts(n=12):
    files = sorted(STATE_UNION.glob("*.txt"))[:n]
    return [f.read_text(encoding="utf-8", errors="replace").strip() for f in files]


def test_parquet_rows_in_record_batches_only_the_text_column_and_bad_rows_counted(tmp_path):
    texts = _union_texts()
    table = pa.table({"id": list(range(len(texts) + 2)), "text": [*texts, "   ", None]})
    path = tmp_path / "corpus.parquet"
    pq.write_table(table, path, row_group_size=5)  # several row groups
    docs, skipped = _read(path)
    assert [text for _, text in docs] == texts and docs[0][0] == f"{path}:1"
    assert skipped == {"empty": 1, "missing_text_field": 1}


def test_save_to_disk_folders_and_arrow_files_are_read_like_parquet(tmp_path):
    texts = _union_texts()
    datasets.Dataset.from_dict({"text": texts, "n": list(range(len(texts)))}).save_to_disk(tmp_path / "saved")
    (arrow,) = resolve_files([str(tmp_path / "saved")])  # the folder's data-*.arrow; its json files are not corpus
    assert arrow.suffix == ".arrow"
    docs, skipped = _read(arrow)
    assert [text for _, text in docs] == texts and not skipped
    with pa.OSFile(str(tmp_path / "file.arrow"), "wb") as sink, pa.ipc.new_file(sink, pa.schema([("text", pa.string())])) as w:
        w.write_table(pa.table({"text": texts[:3]}))  # the IPC file format, with a footer
    assert [text for _, text in _read(tmp_path / "file.arrow")[0]] == texts[:3]


def test_columnar_rows_are_sharded_between_readers(tmp_path):
    texts = _union_texts()
    pq.write_table(pa.table({"text": texts}), tmp_path / "c.parquet")
    seen = []
    for shard in range(3):
        turn = iter(range(10_000))
        keep = lambda shard=shard, turn=turn: next(turn) % 3 == shard  # noqa: E731 (the stream's round robin)
        seen.append([key for key, _ in read_documents(tmp_path / "c.parquet", "text", "file", Counter(), keep)])
    assert sorted(k for keys in seen for k in keys) == sorted(f"{tmp_path / 'c.parquet'}:{i}" for i in range(1, 13))
    assert all(len(keys) == 4 for keys in seen)


def test_a_parquet_file_without_the_text_column_names_the_columns_it_has(tmp_path):
    pq.write_table(pa.table({"body": ["a"], "id": [1]}), tmp_path / "c.parquet")
    with pytest.raises(DeclutrConfigError, match=r"no column data.text_field='text'; its columns are \['body', 'id'\]"):
        _read(tmp_path / "c.parquet")


def test_a_truncated_parquet_file_is_skipped_and_counted(tmp_path):
    pq.write_table(pa.table({"text": _union_texts()}), tmp_path / "whole.parquet")
    data = (tmp_path / "whole.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    docs, skipped = _read(tmp_path / "cut.parquet")
    assert docs == [] and set(skipped) == {"unreadable_file:ArrowInvalid"}
