"""Token-id shards: written by prepare, memory-mapped back, and the same documents and spans as the text path."""

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from declutr.data.accounting import totals_by_reason
from declutr.data.collate import DeCLUTRCollator
from declutr.data.documents import read_documents, resolve_files
from declutr.data.spans import SpanSampler
from declutr.data.stream import DocumentStream
from declutr.data.token_shards import (
    TokenShard,
    corpus_sources,
    entropy_of_counts,
    ids_dtype,
    unigram_entropy,
    write_token_shard,
)
from declutr.errors import DeclutrConfigError
from declutr.tokenizer import load_tokenizer, tokenizer_identity
from tests.helpers.paths import STATE_UNION

PAPER = SpanSampler(num_anchors=2, num_positives=2, min_span_len=32, max_span_len=512)  # documents need 2,048 tokens
SMALL = SpanSampler(num_anchors=2, num_positives=2, min_span_len=8, max_span_len=32)
BATCH_TENSORS = ("anchor_input_ids", "anchor_attention_mask", "positive_input_ids", "positive_attention_mask")


def _keep_all() -> bool:
    return True


def test_manifest_records_every_shard_and_the_tokenizer(prepared_corpus, tokenizer):
    manifest = json.loads((prepared_corpus / "manifest.json").read_text())
    section = manifest["token_ids"]
    assert section["tokenizer"] == tokenizer_identity(tokenizer) and section["dtype"] == "uint16"
    assert sorted(section["shards"]) == manifest["shards"] and len(manifest["shards"]) == 9
    assert sum(entry["documents"] for entry in section["shards"].values()) == manifest["documents"] == 65
    assert sum(entry["tokens"] for entry in section["shards"].values()) == manifest["tokens"]
    first = section["shards"]["shard-00000.jsonl.gz"]
    assert (prepared_corpus / first["ids"]).stat().st_size == 2 * first["tokens"]
    offsets = np.load(prepared_corpus / first["offsets"])
    assert offsets.dtype == np.int64 and offsets.shape == (9,) and offsets[-1] == first["tokens"]


def test_token_shards_hold_the_keys_and_ids_of_the_text_path(prepared_corpus, tokenizer):
    files = resolve_files([str(prepared_corpus)])
    text_stream = DocumentStream(files, tokenizer, PAPER)
    for path, shard in zip(files, corpus_sources(files, "tokens", tokenizer), strict=True):
        texts = list(read_documents(path, "text", "file", Counter()))
        ids = list(shard.documents(Counter(), _keep_all))
        assert [key for key, _ in ids] == [key for key, _ in texts]
        for (_, text), (_, doc) in zip(texts, ids):
            assert doc.dtype == np.int64 and np.array_equal(doc, text_stream.tokenize(text))


@pytest.mark.parametrize("workers", [0, 2])
def test_token_shards_give_the_same_batches_as_the_text(prepared_corpus, tokenizer, workers):
    files = resolve_files([str(prepared_corpus)])
    batches = {}
    for data_format in ("text", "tokens"):
        sources = corpus_sources(files, data_format, tokenizer)
        batches[data_format] = []
        for epoch in (0, 1):
            for rank in range(2):
                stream = DocumentStream(sources, tokenizer, PAPER, seed=7, rank=rank, world_size=2)
                stream.set_epoch(epoch)
                batches[data_format] += DataLoader(stream, batch_size=3, num_workers=workers,
                                                   collate_fn=DeCLUTRCollator(tokenizer, 0.0))
    text, tokens = batches["text"], batches["tokens"]
    assert len(text) == len(tokens)
    for a, b in zip(text, tokens):
        assert (a["docs"], a["positions"], a["skipped"]) == (b["docs"], b["positions"], b["skipped"])
        assert all(torch.equal(a[key], b[key]) for key in BATCH_TENSORS)
    skipped = totals_by_reason(sum((b["skipped"] for b in tokens), Counter()))
    trained = sum(len(b["docs"]) for b in tokens)
    assert trained > 40 and skipped["too_short"] > 0 and trained + skipped["too_short"] == 2 * 65  # 2 epochs


def test_token_stream_resumes_exactly_from_its_positions(prepared_corpus, tokenizer):
    sources = corpus_sources(resolve_files([str(prepared_corpus)]), "tokens", tokenizer)
    for workers in (0, 2):
        def loader(**resume):
            stream = DocumentStream(sources, tokenizer, SMALL, seed=5, **resume)
            return DataLoader(stream, batch_size=2, num_workers=workers,  # noqa: B023 (called in this iteration)
                              collate_fn=DeCLUTRCollator(tokenizer, 0.0))

        full = list(loader())
        done, rest = full[:7], full[7:]
        consumed: dict[int, int] = {}
        for batch in done:
            for shard, position in batch["positions"]:
                consumed[shard] = max(consumed.get(shard, 0), position + 1)
        resumed = list(loader(start_positions=consumed, worker_offset=len(done) % max(1, workers)))
        assert [b["docs"] for b in resumed] == [b["docs"] for b in rest]
        assert all(torch.equal(a["anchor_input_ids"], b["anchor_input_ids"]) for a, b in zip(resumed, rest))


def test_formats_choose_ids_or_text_per_file(prepared_corpus, tokenizer):
    truman = STATE_UNION / "1945-Truman.txt"
    files = resolve_files([str(prepared_corpus), str(truman)])
    auto = corpus_sources(files, "auto", tokenizer)
    assert sum(isinstance(source, TokenShard) for source in auto) == 9 and truman in auto
    assert corpus_sources(files, "text", tokenizer) == files
    with pytest.raises(DeclutrConfigError, match=r"format=tokens.*1945-Truman.txt has no token-id shard.*task=prepare"):
        corpus_sources(files, "tokens", tokenizer)
    with pytest.raises(DeclutrConfigError, match="Unknown data.format='ids'"):
        corpus_sources(files, "ids", tokenizer)


def test_another_tokenizer_is_refused_naming_both_and_the_fix(prepared_corpus, tokenizer, tmp_path):
    other = load_tokenizer(tokenizer.name_or_path)
    other.add_tokens(["declutrtoken"])
    other.save_pretrained(tmp_path / "other")
    other = load_tokenizer(tmp_path / "other")
    files = resolve_files([str(prepared_corpus)])
    for data_format in ("auto", "tokens"):
        with pytest.raises(DeclutrConfigError) as error:
            corpus_sources(files, data_format, other)
        message = str(error.value)
        assert f"made by the tokenizer {tokenizer.name_or_path} (30522 tokens" in message
        assert f"tokenises with {tmp_path / 'other'} (30523 tokens" in message
        assert "task=prepare" in message and "prepare.overwrite=true" in message and "data.format=text" in message
    assert corpus_sources(files, "text", other) == files  # the text path still serves any tokenizer


def test_damaged_shards_fail_at_start_up_and_vanished_ones_are_counted(prepared_corpus, tokenizer, tmp_path):
    corpus = shutil.copytree(prepared_corpus, tmp_path / "corpus")
    files = resolve_files([str(corpus)])
    sources = corpus_sources(files, "tokens", tokenizer)
    (corpus / "shard-00001.ids.bin").unlink()  # after start-up: skipped and counted, the stream goes on
    examples = list(DocumentStream(sources, tokenizer, SMALL, shuffle=False))
    assert sum(e["doc"] is not None for e in examples) == 65 - 8
    skipped = sum((e["skipped"] for e in examples), Counter())
    assert skipped == Counter({("unreadable_file:FileNotFoundError", str(corpus / "shard-00001.jsonl.gz")): 1})
    with pytest.raises(DeclutrConfigError, match=r"shard-00001.jsonl.gz is missing or damaged.*prepare.overwrite=true"):
        corpus_sources(files, "auto", tokenizer)
    shutil.copy(prepared_corpus / "shard-00001.ids.bin", corpus)
    with open(corpus / "shard-00002.ids.bin", "r+b") as handle:
        handle.truncate(100)
    with pytest.raises(DeclutrConfigError, match=r"shard-00002.jsonl.gz is missing or damaged \(.*disagree"):
        corpus_sources(files, "auto", tokenizer)


def test_ids_beyond_uint16_round_trip_as_uint32(tmp_path):
    assert ids_dtype(30522) == ids_dtype(65536) == np.uint16 and ids_dtype(65537) == np.uint32
    docs = [np.array([0, 70_000, 2**32 - 1], dtype=np.uint32), np.array([], dtype=np.uint32),
            np.array([65_536], dtype=np.uint32)]
    entry = write_token_shard(tmp_path, "shard-00000.jsonl.gz", docs)
    assert entry == {"ids": "shard-00000.ids.bin", "offsets": "shard-00000.offsets.npy", "documents": 3, "tokens": 4}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard-00000.ids.bin", "shard-00000.offsets.npy"]  # no .tmp
    text = tmp_path / "shard-00000.jsonl.gz"
    shard = TokenShard(text, tmp_path / entry["ids"], tmp_path / entry["offsets"], "uint32", 3)
    read = list(shard.documents(Counter(), _keep_all))
    assert [key for key, _ in read] == [f"{text}:1", f"{text}:2", f"{text}:3"]
    assert all(np.array_equal(got, want) for (_, got), want in zip(read, docs, strict=True))
    assert str(shard) == str(text) and isinstance(shard.text, Path)


def test_entropy_of_counts_is_the_entropy_of_the_frequencies_they_give():
    assert entropy_of_counts([5, 5]) == pytest.approx(np.log(2))
    assert entropy_of_counts(np.array([1, 1, 1, 1])) == pytest.approx(np.log(4))
    assert entropy_of_counts([3, 0]) == 0.0 and entropy_of_counts([]) == 0.0


def test_unigram_entropy_counts_every_shard_s_ids(prepared_corpus, tmp_path):
    section = json.loads((prepared_corpus / "manifest.json").read_text())["token_ids"]
    ids = np.concatenate([np.fromfile(prepared_corpus / e["ids"], dtype=section["dtype"])
                          for e in section["shards"].values()])
    p = np.bincount(ids) / ids.size
    expected = -sum(x * np.log(x) for x in p if x > 0)
    assert unigram_entropy(prepared_corpus) == pytest.approx(expected, rel=1e-9)
    assert 4.0 < expected < np.log(len(np.unique(ids)))  # English text: far below uniform over the ids it uses
    assert unigram_entropy(tmp_path) is None  # no prepared corpus
