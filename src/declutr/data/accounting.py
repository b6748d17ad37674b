"""What the training stream consumed and skipped: for metrics, the end-of-run summary, the bad-input
threshold, and exact resuming (it is saved in every checkpoint through the datamodule's state)."""

from __future__ import annotations

from collections import Counter

import torch.distributed as dist

from declutr.data.collate import Batch
from declutr.data.documents import EMPTY, MALFORMED_JSON, MISSING_TEXT_FIELD, NOT_UTF8, UNREADABLE_FILE
from declutr.data.stream import SKIPPED_SHORT
from declutr.errors import DeclutrDataError

# The skip reasons the readers count (an unreadable file's reason also names its error: unreadable_file:OSError).
# Every rank logs each of them every step, zero or not: under DDP a metric synced on some ranks only would hang.
SKIP_REASONS = (SKIPPED_SHORT, EMPTY, NOT_UTF8, MALFORMED_JSON, MISSING_TEXT_FIELD, UNREADABLE_FILE)


def totals_by_reason(skipped: Counter) -> Counter:
    """Skip counts keyed by ``(reason, file)`` summed per reason."""
    totals: Counter = Counter()
    for (reason, _file), count in skipped.items():
        totals[reason] += count
    return totals


class StreamAccounting:
    """Counts per batch: documents trained on, skipped input by ``(reason, file)``, and, for this epoch,
    the batches consumed and per reader (``shard``) how many of its documents they held.

    Bad input (everything skipped except documents too short for the span settings) may be at most
    ``max_bad_fraction`` of the input once ``min_inputs`` inputs were seen; past that the run stops with
    the worst files named.
    """

    def __init__(self, max_bad_fraction: float = 0.5, min_inputs: int = 100) -> None:
        self.max_bad_fraction, self.min_inputs = max_bad_fraction, min_inputs
        self.documents = 0
        self.skipped: Counter = Counter()
        self.epoch = 0
        self.consumed: dict[int, int] = {}
        self.batches = 0
        self.num_shards: int | None = None

    def update(self, batch: Batch) -> None:
        self.documents += len(batch["docs"])
        self.batches += 1
        self.skipped.update(batch["skipped"])
        for shard, position in batch["positions"]:
            self.consumed[shard] = max(self.consumed.get(shard, 0), position + 1)
        self._check_bad_fraction()

    def new_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.consumed, self.batches = epoch, {}, 0

    def by_reason(self) -> Counter:
        return totals_by_reason(self.skipped)

    def logged_totals(self) -> dict[str, int]:
        """Totals for every one of :data:`SKIP_REASONS` (zeros included; an unreadable file under its bare reason,
        whatever its error; a reason unknown to the list under ``other``): the same keys on every rank."""
        totals = dict.fromkeys((*SKIP_REASONS, "other"), 0)
        for reason, count in self.by_reason().items():
            bare = reason.split(":", 1)[0]
            totals[bare if bare in totals else "other"] += count
        return totals

    def bad_by_file(self) -> Counter:
        bad: Counter = Counter()
        for (reason, file), count in self.skipped.items():
            if reason != SKIPPED_SHORT:
                bad[file] += count
        return bad

    def _check_bad_fraction(self) -> None:
        bad_files, by_reason = self.bad_by_file(), self.by_reason()
        bad = sum(bad_files.values())
        seen = bad + self.documents + by_reason[SKIPPED_SHORT]
        if seen >= self.min_inputs and bad / seen > self.max_bad_fraction:
            worst = ", ".join(f"{file} ({n})" for file, n in bad_files.most_common(5))
            reasons = {reason: n for reason, n in by_reason.items() if reason != SKIPPED_SHORT}
            raise DeclutrDataError(
                f"{bad} of {seen} inputs so far were unreadable or malformed ({reasons}), more than "
                f"data.max_bad_fraction={self.max_bad_fraction}. Worst files: {worst}. Fix or remove them, or raise "
                "data.max_bad_fraction."
            )

    def summary(self) -> str:
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(self.by_reason().items())) or "none"
        return f"Documents trained on: {self.documents}. Skipped: {reasons}."

    def state_dict(self) -> dict:
        consumed = dict(self.consumed)
        if dist.is_available() and dist.is_initialized():  # every rank holds the positions of its own shards
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, consumed)
            consumed = {shard: n for part in gathered for shard, n in part.items()}
        return {"documents": self.documents, "epoch": self.epoch, "num_shards": self.num_shards, "batches": self.batches,
                "consumed": [[shard, n] for shard, n in sorted(consumed.items())],
                "skipped": [[reason, file, n] for (reason, file), n in self.skipped.items()]}

    def load_state_dict(self, state: dict) -> None:
        self.documents, self.epoch, self.num_shards = state["documents"], state["epoch"], state["num_shards"]
        self.batches = state["batches"]
        self.consumed = {int(shard): int(n) for shard, n in state["consumed"]}
        self.skipped = Counter({(reason, file): n for reason, file, n in state["skipped"]})
