"""Corpus preparation on the real raw sources."""

import gzip
import json
import shutil

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import declutr.data.prepare as prepare_module
from declutr.data.prepare import (
    add_token_ids,
    brown_text,
    chunk_paragraphs,
    prepare_corpus,
    remove_prepared,
    strip_gutenberg_boilerplate,
    wikipedia_articles,
)
from declutr.errors import DeclutrConfigError
from tests.helpers.paths import CORPUS


def test_wikitext_is_split_into_its_62_articles():
    articles = list(wikipedia_articles(CORPUS / "wikitext2_raw" / "wiki.test.raw"))
    assert len(articles) == 62
    title, text = articles[0]
    assert title == "Robert Boulter" and " @-@ " not in text and " = = " in text  # sub-headings stay


def test_gutenberg_boilerplate_removed_and_books_chunked():
    book = strip_gutenberg_boilerplate((CORPUS / "gitenberg" / "pg1342_pride_and_prejudice.txt").read_text())
    assert "PROJECT GUTENBERG" not in book[:2000].upper() and "It is a truth universally acknowledged" in book
    assert "END OF THIS PROJECT GUTENBERG" not in book
    chunks = list(chunk_paragraphs(book, 2000))
    assert all(len(c.split()) >= 2000 for c in chunks[:-1]) and len(chunks) > 50


def test_brown_tags_stripped():
    text = brown_text(CORPUS / "nltk_brown" / "brown" / "ca01")
    assert text.startswith("The Fulton County Grand Jury said Friday") and "/at" not in text


def test_prepare_writes_shards_and_counts_drops(tokenizer, tmp_path):
    raw = tmp_path / "raw"
    (raw / "nltk_inaugural").mkdir(parents=True)
    (raw / "nltk_movie_reviews").mkdir()
    for name in ("1789-Washington.txt", "1793-Washington.txt", "1797-Adams.txt"):
        (raw / "nltk_inaugural" / name).write_bytes((CORPUS / "nltk_inaugural" / "inaugural" / name).read_bytes())
    (raw / "nltk_movie_reviews" / "short.txt").write_text("A short review.")
    report = prepare_corpus(raw, tmp_path / "out", tokenizer, min_tokens=500, shard_size=1)
    assert report.kept == {"nltk_inaugural": 2}  # Washington's second address has 135 words
    assert report.dropped == {("nltk_inaugural", "shorter than 500 tokens"): 1,
                              ("nltk_movie_reviews", "shorter than 500 tokens"): 1}
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["shards"] == ["shard-00000.jsonl.gz", "shard-00001.jsonl.gz"] and manifest["documents"] == 2
    with gzip.open(tmp_path / "out" / "shard-00000.jsonl.gz", "rt") as handle:
        record = json.loads(handle.readline())
    assert record["num_tokens"] >= 500 and record["text"].startswith("Fellow-Citizens")
    with pytest.raises(DeclutrConfigError, match="lower prepare.min_tokens"):
        prepare_corpus(raw, tmp_path / "none", tokenizer, min_tokens=10**6)


def test_token_ids_added_later_equal_those_written_while_preparing(tokenizer, prepared_corpus, tmp_path):
    later = tmp_path / "later"
    prepare_corpus(prepared_corpus.parent / "raw", later, tokenizer, min_tokens=100, shard_size=8)
    assert "token_ids" not in json.loads((later / "manifest.json").read_text())
    assert not list(later.glob("*.ids.bin"))
    tokens = add_token_ids(later, tokenizer)
    one_pass = json.loads((prepared_corpus / "manifest.json").read_text())
    assert json.loads((later / "manifest.json").read_text()) == one_pass and tokens == one_pass["tokens"]
    token_files = sorted(p.name for p in prepared_corpus.iterdir() if p.name.endswith((".ids.bin", ".offsets.npy")))
    assert len(token_files) == 18
    assert sorted(p.name for p in later.iterdir()) == sorted([*token_files, *one_pass["shards"], "manifest.json"])
    assert all((later / name).read_bytes() == (prepared_corpus / name).read_bytes() for name in token_files)
    remove_prepared(later)
    assert list(later.iterdir()) == []


def test_record_files_are_prepared_and_two_processes_write_the_same_shards(tokenizer, tmp_path):
    """Parquet, Arrow and JSON-lines records (the text in text_field) are documents; tokenising in two processes
    gives byte-identical shards and ids; a truncated Parquet file is counted, not fatal."""
    texts = [f.read_text(encoding="utf-8", errors="replace") for f in sorted((CORPUS / "nltk_inaugural").rglob("*.txt"))]
    raw = tmp_path / "raw" / "speeches"
    raw.mkdir(parents=True)
    pq.write_table(pa.table({"body": texts[:20]}), raw / "a.parquet")
    datasets.Dataset.from_dict({"body": texts[20:40]}).save_to_disk(tmp_path / "saved")
    shutil.copy(next((tmp_path / "saved").glob("*.arrow")), raw / "b.arrow")
    (raw / "c.jsonl").write_text("".join(json.dumps({"body": t}) + "\n" for t in texts[40:]))
    (raw / "d.parquet").write_bytes((raw / "a.parquet").read_bytes()[:500])
    reports = {}
    for procs in (1, 2):
        out = tmp_path / f"out{procs}"
        reports[procs] = prepare_corpus(tmp_path / "raw", out, tokenizer, min_tokens=100, shard_size=16, token_ids=True,
                                        num_proc=procs, text_field="body")
    assert sum(reports[1].kept.values()) == len([t for t in texts if len(tokenizer(t)["input_ids"]) >= 102])
    assert reports[1].dropped[("speeches", "unreadable_file:ArrowInvalid")] == 1
    assert reports[1].kept == reports[2].kept and reports[1].tokens == reports[2].tokens
    one, two = sorted((tmp_path / "out1").iterdir()), sorted((tmp_path / "out2").iterdir())
    assert [p.name for p in one] == [p.name for p in two]
    for a, b in zip(one, two):
        if a.name != "manifest.json":
            assert gzip.decompress(a.read_bytes()) == gzip.decompress(b.read_bytes()) if a.suffix == ".gz" \
                else a.read_bytes() == b.read_bytes(), a.name


def test_progress_bar_counts_the_corpus_bytes_file_by_file(tokenizer, tmp_path, monkeypatch):
    """task=prepare's bar has a total (the raw files' bytes), so an ETA, and reaches it; its postfix counts documents."""
    bars = []

    class Recorded(prepare_module.tqdm):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            bars.append(self)
            self.seen = []

        def update(self, n=1):
            self.seen.append(n)
            return super().update(n)

    monkeypatch.setattr(prepare_module, "tqdm", Recorded)
    raw = tmp_path / "raw" / "nltk_inaugural"
    raw.mkdir(parents=True)
    names = ("1789-Washington.txt", "1793-Washington.txt", "1797-Adams.txt")
    for name in names:
        (raw / name).write_bytes((CORPUS / "nltk_inaugural" / "inaugural" / name).read_bytes())
    prepare_corpus(tmp_path / "raw", tmp_path / "out", tokenizer, min_tokens=500, progress=True)
    (bar,) = bars
    sizes = [(raw / name).stat().st_size for name in names]
    assert bar.unit == "B" and bar.total == bar.n == sum(sizes)
    assert bar.seen == sizes  # one step per file, in the order read
    assert "3 docs, kept 2" in bar.postfix
