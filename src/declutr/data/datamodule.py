"""``DeCLUTRDataModule``: the corpus stream, the span sampler and the collator, wired for Lightning."""

from __future__ import annotations

from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader

from declutr.data.collate import DeCLUTRCollator
from declutr.data.documents import resolve_files
from declutr.data.spans import SpanSampler
from declutr.data.stream import DocumentStream


class DeCLUTRDataModule(L.LightningDataModule):
    """Training data for DeCLUTR. ``batch_size`` counts documents per device (each gives A anchors)."""

    def __init__(
        self,
        tokenizer,
        files: Sequence[str] | str,
        sampler: SpanSampler,
        batch_size: int = 4,
        text_field: str = "text",
        text_split: str = "file",
        shuffle: bool = True,
        shuffle_buffer: int = 64,
        mlm_probability: float = 0.15,
        num_workers: int = 1,
        pin_memory: bool = True,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.tokenizer, self.sampler = tokenizer, sampler
        self.files = resolve_files(files)  # fails here, before any model is loaded, on a bad path
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.stream_options = dict(text_field=text_field, text_split=text_split, shuffle=shuffle,
                                   shuffle_buffer=shuffle_buffer, seed=seed)
        self.collator = DeCLUTRCollator(tokenizer, mlm_probability)
        self.dataset: DocumentStream | None = None

    def setup(self, stage: str | None = None) -> None:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        self.dataset = DocumentStream(self.files, self.tokenizer, self.sampler, rank=rank, world_size=world,
                                      **self.stream_options)

    def set_epoch(self, epoch: int) -> None:
        if self.dataset is not None:
            self.dataset.set_epoch(epoch)

    def train_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("fit")
        if self.trainer is not None:  # a resumed run starts mid-way: its first iterator needs the right epoch
            self.dataset.set_epoch(self.trainer.current_epoch)
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=False,  # workers must be re-created each epoch to see the new epoch number
            prefetch_factor=4 if self.num_workers else None,
        )
