"""A Hugging Face dataset by name (``data.hf_dataset``), streamed row by row as a corpus source.

Nothing is downloaded whole: ``datasets.load_dataset(..., streaming=True)`` yields the rows of the split in a fixed
order, each reader keeps its own (the stream's round robin) and resuming skips to its saved position. A name may
also be a local dataset folder (Parquet, JSON lines or Arrow files), which is how it is tested without the hub.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from declutr.data.documents import record_document, unreadable
from declutr.errors import DeclutrConfigError


@dataclass(frozen=True)
class HubDataset:
    """The ``split`` of dataset ``name`` (optionally its ``config``), the document in column ``text_field``."""

    name: str
    split: str = "train"
    config: str | None = None
    text_field: str = "text"

    def _rows(self):
        import datasets

        return datasets.load_dataset(self.name, self.config, split=self.split, streaming=True)

    def check(self) -> None:
        """Reach the dataset and its first row now, before any model is loaded: a clear error if it cannot."""
        try:
            first = next(iter(self._rows()), None)
        except Exception as err:  # noqa: BLE001 (datasets raises many types for an unreachable or unknown name)
            reason = " ".join(f"{type(err).__name__}: {err}".split())[:300]
            raise DeclutrConfigError(
                f"data.hf_dataset={self.name!r} (split {self.split!r}) cannot be read here ({reason}). Where the "
                f"Hugging Face hub is reachable, save it once with `datasets.load_dataset({self.name!r}, "
                f"split={self.split!r}).save_to_disk(<folder>)` and set data.files=[<folder>] (or point "
                "data.hf_dataset at a local dataset folder).") from None
        if first is not None and self.text_field not in first:
            raise DeclutrConfigError(f"data.hf_dataset={self.name!r} has no column data.text_field={self.text_field!r}; "
                                     f"its columns are {sorted(first)}: set data.text_field to the one holding the text.")

    def documents(self, skipped: Counter, keep: Callable[[], bool],
                  reports_file_errors: bool = True) -> Iterator[tuple[str, str]]:
        """``(key, text)`` of the rows this reader owns (``keep()`` is called once per row, in order)."""
        label = f"hf:{self.name}/{self.split}"
        try:
            for index, row in enumerate(self._rows(), 1):
                if keep() and (document := record_document(row.get(self.text_field), label, index, skipped)):
                    yield document
        except (OSError, ValueError) as err:  # a connection lost mid-stream ends this epoch's read, counted once
            if reports_file_errors:
                skipped[unreadable(err), label] += 1
