"""The document stream: sharding over ranks and workers, determinism, skip counting, real corpus files."""

import json
from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from declutr.data.accounting import totals_by_reason
from declutr.data.collate import DeCLUTRCollator
from declutr.data.documents import resolve_files
from declutr.data.spans import SpanSampler
from declutr.data.stream import SKIPPED_SHORT, DocumentStream
from tests.helpers.paths import STATE_UNION

SMALL = SpanSampler(num_anchors=2, num_positives=2, min_span_len=8, max_span_len=32)


def _stream(tokenizer, files, **kwargs):
    return DocumentStream(files, tokenizer, kwargs.pop("sampler", SMALL), **kwargs)


def _reasons(examples):
    return totals_by_reason(sum((Counter(e["skipped"]) for e in examples), Counter()))


def _docs(loader_or_stream):
    out = []
    for item in loader_or_stream:
        out += item["docs"] if "docs" in item else ([item["doc"]] if item["doc"] else [])
    return out


@pytest.mark.parametrize("workers", [0, 2])
def test_ranks_and_workers_partition_the_corpus(tokenizer, workers):
    files = resolve_files([str(STATE_UNION)])
    everything = sorted(_docs(_stream(tokenizer, files, shuffle=False)))
    assert len(everything) == 59  # 6 of the 65 real files are not UTF-8 (see the next test)
    seen = []
    for rank in range(2):
        stream = _stream(tokenizer, files, rank=rank, world_size=2, seed=3)
        loader = DataLoader(stream, batch_size=3, num_workers=workers, collate_fn=DeCLUTRCollator(tokenizer))
        seen += _docs(loader)
    assert sorted(seen) == everything, "every document exactly once across 2 ranks x workers"


@pytest.mark.parametrize("workers", [0, 2])
def test_real_non_utf8_files_are_counted_once_through_the_loader(tokenizer, workers):
    stream = _stream(tokenizer, resolve_files([str(STATE_UNION)]))
    batches = list(DataLoader(stream, batch_size=4, num_workers=workers, collate_fn=DeCLUTRCollator(tokenizer)))
    assert _reasons(batches) == Counter(not_utf8=6)


def test_same_seed_same_examples_new_epoch_new_order(tokenizer):
    files = resolve_files([str(STATE_UNION)])
    first = list(_stream(tokenizer, files, seed=1))
    again = list(_stream(tokenizer, files, seed=1))
    assert [e["doc"] for e in first] == [e["doc"] for e in again]
    assert all(np.array_equal(a, b) for x, y in zip(first, again) for a, b in zip(x["anchors"], y["anchors"]))
    later = _stream(tokenizer, files, seed=1)
    later.set_epoch(1)
    assert [e["doc"] for e in later] != [e["doc"] for e in first]


def test_spans_are_token_slices_of_the_document(tokenizer):
    files = resolve_files([str(STATE_UNION / "1945-Truman.txt")])
    stream = _stream(tokenizer, files, shuffle=False)
    (example,) = list(stream)
    ids = stream.tokenize(files[0].read_text().strip())
    text_ids = ids.tobytes()
    for span in example["anchors"] + [p for g in example["positives"] for p in g]:
        assert span.tobytes() in text_ids and 8 <= len(span) <= 32


def test_short_and_bad_documents_are_skipped_and_counted(tokenizer, tmp_path):
    corpus = tmp_path / "c.jsonl"
    long_doc = " ".join(f"word{i}" for i in range(400))
    corpus.write_text("\n".join([json.dumps({"text": long_doc}), json.dumps({"text": "too short"}), "{oops",
                                 json.dumps({"text": long_doc + " again"})]) + "\n")
    examples = list(_stream(tokenizer, [corpus], shuffle=False))
    real = [e for e in examples if e["anchors"]]
    assert len(real) == 2
    assert _reasons(examples) == Counter({SKIPPED_SHORT: 1, "malformed_json": 1})


def test_trailing_skips_ride_on_the_last_real_example(tokenizer, tmp_path):
    """A batch of only skip counts would make its rank skip a step the others take (a DDP hang)."""
    corpus = tmp_path / "c.jsonl"
    long_doc = " ".join(f"word{i}" for i in range(400))
    corpus.write_text("\n".join([json.dumps({"text": long_doc}), json.dumps({"text": "short"}),
                                 json.dumps({"text": long_doc + " two"}), json.dumps({"text": "tiny"}), "{oops"]) + "\n")
    examples = list(_stream(tokenizer, [corpus], shuffle=False))
    assert all(e["anchors"] for e in examples) and len(examples) == 2
    assert [_reasons([e]) for e in examples] == [Counter(), Counter({SKIPPED_SHORT: 2, "malformed_json": 1})]


def test_a_reader_with_no_usable_document_sends_its_skip_counts_alone(tokenizer, tmp_path):
    corpus = tmp_path / "short.txt"
    corpus.write_text("tiny\n\nalso tiny\n")
    examples = list(_stream(tokenizer, [corpus], text_split="paragraph"))
    assert examples == [{"doc": None, "shard": 0, "position": None, "anchors": [], "positives": [],
                         "skipped": Counter({(SKIPPED_SHORT, str(corpus)): 2})}]


def test_resuming_from_positions_continues_exactly(tokenizer):
    files = resolve_files([str(STATE_UNION)])
    for workers in (0, 2):
        full = list(DataLoader(_stream(tokenizer, files, seed=5), batch_size=2, num_workers=workers,
                               collate_fn=DeCLUTRCollator(tokenizer, 0.0)))
        done, rest = full[:5], full[5:]
        consumed = {}
        for batch in done:
            for shard, position in batch["positions"]:
                consumed[shard] = max(consumed.get(shard, 0), position + 1)
        stream = _stream(tokenizer, files, seed=5, start_positions=consumed, worker_offset=len(done) % max(1, workers))
        resumed = list(DataLoader(stream, batch_size=2,
                                  num_workers=workers, collate_fn=DeCLUTRCollator(tokenizer, 0.0)))
        assert _docs(resumed) == _docs(rest), "the same documents, in the same order"
        for a, b in zip(resumed, rest):
            assert torch.equal(a["anchor_input_ids"], b["anchor_input_ids"]), "and the same spans"


def test_a_file_that_disappears_mid_run_is_counted(tokenizer, tmp_path):
    kept, gone = tmp_path / "a.txt", tmp_path / "b.jsonl"
    kept.write_text(" ".join(f"w{i}" for i in range(300)))
    gone.write_text('{"text": "x"}\n')
    files = resolve_files([str(tmp_path)])
    gone.unlink()  # after the corpus was listed, before it is read
    examples = list(_stream(tokenizer, files, shuffle=False))
    assert [e["doc"] for e in examples if e["doc"]] == [f"{kept}:1"]
    assert _reasons(examples) == Counter({"unreadable_file:FileNotFoundError": 1})
