"""Fuzzing the data path: random bytes and random span settings either work or raise our own clear error."""

import gzip
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from declutr.data.spans import SpanSampler
from declutr.data.stream import DocumentStream
from declutr.errors import DeclutrConfigError

SAMPLER = SpanSampler(num_anchors=1, num_positives=1, min_span_len=2, max_span_len=4)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=3000), suffix=st.sampled_from([".txt", ".jsonl", ".jsonl.gz"]),
       split=st.sampled_from(["file", "paragraph", "line"]), gzipped_garbage=st.booleans())
def test_random_bytes_never_crash_the_stream(tokenizer, content, suffix, split, gzipped_garbage):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"fuzz{suffix}"
        if suffix.endswith(".gz") and gzipped_garbage:
            content = gzip.compress(content)[: max(1, len(content) // 2)]  # a real gzip header, cut short
        path.write_bytes(content)
        stream = DocumentStream([path], tokenizer, SAMPLER, text_split=split)
        for example in stream:
            for span in example["anchors"] + [p for group in example["positives"] for p in group]:
                assert 2 <= len(span) <= 4


@settings(max_examples=300, deadline=None)
@given(anchors=st.integers(-2, 6), positives=st.integers(-2, 6), low=st.integers(-5, 600), high=st.integers(-5, 600),
       strategy=st.sampled_from(["overlap", "adjacent", "subsumed", "", "OVERLAP", "random"]),
       num_tokens=st.integers(0, 10_000), seed=st.integers(0, 2**32 - 1))
def test_random_span_settings_work_or_raise_our_error(anchors, positives, low, high, strategy, num_tokens, seed):
    try:
        sampler = SpanSampler(anchors, positives, low, high, strategy)
    except DeclutrConfigError:
        return
    sample = sampler.sample(num_tokens, np.random.default_rng(seed))
    assert sample is None or len(sample.anchors) == anchors
