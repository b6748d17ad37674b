"""The MLM pretraining sampler: contiguous, exact-length, non-overlapping windows; none from short documents."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from declutr.data.windows import WindowSampler
from declutr.errors import DeclutrConfigError


@settings(max_examples=200, deadline=None)
@given(window=st.integers(1, 200), num_tokens=st.integers(1, 3000), per_doc=st.one_of(st.none(), st.integers(1, 8)),
       seed=st.integers(0, 2**32 - 1))
def test_windows_are_contiguous_exact_in_bounds_and_as_many_as_asked(window, num_tokens, per_doc, seed):
    sampler = WindowSampler(window_len=window, windows_per_document=per_doc)
    sample = sampler.sample(num_tokens, np.random.default_rng(seed))
    fit = num_tokens // window
    if fit == 0:
        assert sample is None
        return
    assert len(sample.anchors) == (fit if per_doc is None else min(per_doc, fit))
    assert sample.positives == [[] for _ in sample.anchors]  # nothing to contrast
    assert all(end - start == window and 0 <= start and end <= num_tokens for start, end in sample.anchors)
    # in document order, never overlapping, all on one grid of window_len steps from a common offset
    assert all(a[1] <= b[0] for a, b in zip(sample.anchors, sample.anchors[1:]))
    assert len({start % window for start, _ in sample.anchors}) == 1


def test_every_window_of_a_document_tiles_it_from_a_random_offset():
    sampler = WindowSampler(window_len=100)
    offsets = set()
    for seed in range(20):
        sample = sampler.sample(1050, np.random.default_rng(seed))
        starts = [start for start, _ in sample.anchors]
        assert len(starts) == 10 and np.all(np.diff(starts) == 100)
        offsets.add(starts[0])
    assert offsets <= set(range(51)) and len(offsets) > 1  # the 50 spare tokens move the cut between epochs


def test_a_subset_of_windows_differs_by_seed_and_repeats_with_it():
    sampler = WindowSampler(window_len=10, windows_per_document=3)
    draws = [tuple(sampler.sample(1000, np.random.default_rng(seed)).anchors) for seed in (1, 2, 1)]
    assert draws[0] == draws[2] and draws[0] != draws[1]


def test_a_window_sampler_built_in_python_gets_the_schemas_refusal():
    with pytest.raises(DeclutrConfigError, match=r"data.sampler.windows_per_document=0: too small"):
        WindowSampler(window_len=8, windows_per_document=0)
