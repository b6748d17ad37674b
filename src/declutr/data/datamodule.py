"""``DeCLUTRDataModule``: the corpus stream, the sampler and the collator, wired for Lightning.

DataLoader defaults: ``num_workers`` workers (config, default 1) read, tokenise, sample and collate while
the model trains; they persist across epochs and each prepares ``prefetch_factor`` batches ahead; host
memory is pinned only when CUDA is there to copy to; each worker is seeded from (seed, epoch, rank, worker).
"""

from __future__ import annotations

import signal
from collections.abc import Sequence

import lightning as L
import torch
from torch.utils.data import DataLoader

from declutr.data.accounting import StreamAccounting
from declutr.data.checks import check_is_sampler
from declutr.data.collate import Batch, DeCLUTRCollator
from declutr.data.documents import resolve_files
from declutr.data.hub_dataset import HubDataset
from declutr.data.sampler import Sampler
from declutr.data.stream import DocumentStream, seed_worker
from declutr.data.token_shards import corpus_sources
from declutr.errors import DeclutrConfigError


class DeCLUTRDataModule(L.LightningDataModule):
    """Training data for DeCLUTR. ``batch_size`` counts documents per device (each gives A anchors).

    ``format`` picks how documents are read: ``auto`` takes the token-id shards of a prepared corpus
    where ``task=prepare`` wrote them and tokenises everything else, ``tokens`` requires them, ``text``
    tokenises every file. Its state (what was consumed and skipped) is saved in checkpoints, so a resumed
    run continues the stream exactly where the checkpoint was taken.
    """

    def __init__(
        self,
        tokenizer,
        files: Sequence[str] | str,
        sampler: Sampler,
        batch_size: int = 4,
        text_field: str = "text",
        text_split: str = "file",
        shuffle: bool = True,
        shuffle_buffer: int = 64,
        mlm_probability: float = 0.15,
        num_workers: int = 1,
        prefetch_factor: int = 4,
        pin_memory: bool = True,
        max_bad_fraction: float = 0.5,
        seed: int = 0,
        format: str = "auto",  # noqa: A002 (the config key data.format)
        hf_dataset: str | None = None,
        hf_split: str = "train",
        hf_config: str | None = None,
    ) -> None:
        super().__init__()
        check_is_sampler(sampler)  # a new sampler missing a member fails here, before any model is loaded
        self.tokenizer, self.sampler = tokenizer, sampler
        if hf_dataset:  # a Hugging Face dataset by name (or local dataset folder) instead of data.files
            hub = HubDataset(hf_dataset, hf_split, hf_config, text_field)
            hub.check()  # reachable, with the text column, before any model is loaded
            self.files, self.sources = [], [hub]
        else:
            self.files = resolve_files(files)  # fails here, before any model is loaded, on a bad path
            self.sources = corpus_sources(self.files, format, tokenizer)  # and on token shards of another tokenizer
        self.batch_size, self.num_workers, self.pin_memory = batch_size, num_workers, pin_memory
        self.prefetch_factor = prefetch_factor
        self.stream_options = dict(text_field=text_field, text_split=text_split, shuffle=shuffle,
                                   shuffle_buffer=shuffle_buffer, seed=seed)
        self.collator = DeCLUTRCollator(tokenizer, mlm_probability, seed)
        self.accounting = StreamAccounting(max_bad_fraction)
        self.dataset: DocumentStream | None = None

    def setup(self, stage: str | None = None) -> None:
        rank, world = (self.trainer.global_rank, self.trainer.world_size) if self.trainer else (0, 1)
        self.accounting.num_shards = self.num_readers()
        self.dataset = DocumentStream(self.sources, self.tokenizer, self.sampler, rank=rank, world_size=world,
                                      **self.stream_options)

    def set_epoch(self, epoch: int) -> None:
        self.accounting.new_epoch(epoch)
        if self.dataset is not None:
            # Where this epoch resumes: nothing consumed yet unless a checkpoint was loaded mid-epoch.
            self.dataset.set_epoch(epoch, self.accounting.consumed, self.accounting.batches % max(1, self.num_workers))

    def train_dataloader(self) -> DataLoader:
        if self.dataset is None:
            self.setup("fit")
        if self.trainer is not None:  # a resumed run starts mid-way: its first iterator needs the right epoch
            self.set_epoch(self.trainer.current_epoch)
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            collate_fn=self.collator,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory and torch.cuda.is_available(),
            persistent_workers=self.num_workers > 0,  # the stream's epoch is shared with them (set_epoch)
            prefetch_factor=self.prefetch_factor if self.num_workers else None,
            worker_init_fn=init_worker,
        )

    def on_after_batch_transfer(self, batch: Batch, dataloader_idx: int) -> Batch:
        self.accounting.update(batch)  # in the main process, for the batch about to be trained on
        return batch

    def state_dict(self) -> dict:
        return self.accounting.state_dict()

    def num_readers(self) -> int:
        """The stream's readers: devices x ``data.num_workers`` (the main process reads when there are no workers)."""
        return (self.trainer.world_size if self.trainer else 1) * max(1, self.num_workers)

    def load_state_dict(self, state_dict: dict) -> None:
        """A checkpoint's stream positions, which hold only for the readers that saved them. Lightning restores
        them after :meth:`setup`, so a resume with other devices or ``data.num_workers`` is refused here."""
        saved = state_dict.get("num_shards")
        if state_dict.get("consumed") and saved is not None and saved != self.num_readers():
            raise DeclutrConfigError(
                f"The checkpoint's data position was saved with {saved} readers (devices x data.num_workers) and this "
                f"run has {self.num_readers()}: resume with the devices and data.num_workers of the run that saved it."
            )
        self.accounting.load_state_dict(state_dict)
        self.accounting.num_shards = self.num_readers()


def init_worker(worker_id: int) -> None:
    """``worker_init_fn`` of the training loader: :func:`~declutr.data.stream.seed_worker`, and the worker ignores
    Ctrl+C and SIGTERM, which a terminal or a scheduler sends to the whole process
    group: the main process finishes its step, saves and stops the workers itself (a worker gone at the first signal
    would fail that step; a worker whose main process is gone exits by itself)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    seed_worker(worker_id)
