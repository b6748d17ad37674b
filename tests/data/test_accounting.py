"""Stream accounting: totals by reason, the bad-input threshold naming files, checkpoint round trip."""

from collections import Counter

import pytest

from declutr.data.accounting import StreamAccounting
from declutr.errors import DeclutrDataError


def _batch(docs, skipped, positions=()):
    return {"docs": docs, "skipped": Counter(skipped), "positions": list(positions)}


def test_totals_positions_and_state_round_trip():
    accounting = StreamAccounting()
    accounting.update(_batch(["a", "b"], {("too_short", "f1"): 2, ("not_utf8", "f2"): 1}, [(0, 0), (1, 3)]))
    accounting.update(_batch(["c"], {("not_utf8", "f2"): 1}, [(0, 4)]))
    assert accounting.documents == 3 and accounting.consumed == {0: 5, 1: 4}
    assert accounting.by_reason() == Counter(too_short=2, not_utf8=2)
    restored = StreamAccounting()
    restored.load_state_dict(accounting.state_dict())
    assert (restored.documents, restored.consumed, restored.skipped) == (3, {0: 5, 1: 4}, accounting.skipped)
    restored.new_epoch(1)
    assert restored.consumed == {}


def test_too_much_bad_input_stops_with_the_worst_files_named():
    accounting = StreamAccounting(max_bad_fraction=0.2, min_inputs=10)
    accounting.update(_batch(["ok"] * 8, {("too_short", "fine.txt"): 5}))  # short documents are not "bad"
    with pytest.raises(DeclutrDataError, match=r"5 of 18 inputs .*'malformed_json': 4, 'not_utf8': 1.*max_bad_fraction=0\.2.*broken\.jsonl \(4\)"):
        accounting.update(_batch([], {("malformed_json", "broken.jsonl"): 4, ("not_utf8", "latin.txt"): 1}))


def test_logged_totals_have_the_same_keys_whatever_was_skipped():
    """Every rank logs (and syncs) these every step: a key one rank lacks would leave the others waiting."""
    quiet, noisy = StreamAccounting(), StreamAccounting()
    noisy.update(_batch(["a"], {("too_short", "f"): 2, ("unreadable_file:OSError", "g"): 1,
                                ("unreadable_file:EOFError", "h"): 1, ("a_new_reason", "i"): 3}))
    assert list(quiet.logged_totals()) == list(noisy.logged_totals())
    assert set(quiet.logged_totals().values()) == {0}
    assert noisy.logged_totals() == {**quiet.logged_totals(), "too_short": 2, "unreadable_file": 2, "other": 3}
