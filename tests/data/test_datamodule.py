"""The datamodule's DataLoader: defaults, persistent workers that follow the epoch, seeded workers, token shards."""

import random
import signal

import numpy as np
import torch
from torch.utils.data import DataLoader, get_worker_info

from declutr.data.datamodule import DeCLUTRDataModule, init_worker
from declutr.data.spans import SpanSampler
from declutr.data.stream import DocumentStream, seed_worker
from declutr.data.token_shards import TokenShard

SMALL = SpanSampler(num_anchors=2, num_positives=2, min_span_len=8, max_span_len=32)


def _datamodule(tokenizer, corpus, **kwargs) -> DeCLUTRDataModule:
    datamodule = DeCLUTRDataModule(tokenizer, [str(corpus)], SMALL, batch_size=2, seed=3, **kwargs)
    datamodule.setup("fit")
    return datamodule


def _docs(batches) -> list[str]:
    return [doc for batch in batches for doc in batch["docs"]]


def test_dataloader_defaults(tokenizer, prepared_corpus):
    datamodule = _datamodule(tokenizer, prepared_corpus)
    assert all(isinstance(source, TokenShard) for source in datamodule.sources)  # format=auto found the ids
    loader = datamodule.train_dataloader()
    assert (loader.num_workers, loader.persistent_workers, loader.prefetch_factor) == (1, True, 4)
    assert loader.pin_memory == torch.cuda.is_available() and loader.worker_init_fn is init_worker
    in_process = _datamodule(tokenizer, prepared_corpus, num_workers=0, format="text").train_dataloader()
    assert (in_process.num_workers, in_process.persistent_workers, in_process.prefetch_factor) == (0, False, None)
    assert _docs(in_process) == _docs(loader), "the same documents with and without workers, from text or ids"


def test_persistent_workers_follow_the_epoch_and_forget_resume_positions(tokenizer, prepared_corpus):
    datamodule = _datamodule(tokenizer, prepared_corpus, num_workers=2)
    loader = datamodule.train_dataloader()
    fresh = {epoch: _docs(DataLoader(_stream_at(datamodule, epoch), batch_size=2, num_workers=2,
                                     collate_fn=datamodule.collator)) for epoch in (0, 1)}
    assert fresh[0] != fresh[1]
    datamodule.dataset.set_epoch(0, {0: 3, 1: 2}, 1)  # resuming epoch 0 mid-way: workers start with these
    resumed = _docs(loader)
    assert len(resumed) == len(fresh[0]) - 5 and set(resumed) < set(fresh[0])
    datamodule.set_epoch(1)  # the same (persistent) workers must read all of epoch 1 from its start
    assert _docs(loader) == fresh[1]


def _stream_at(datamodule: DeCLUTRDataModule, epoch: int) -> DocumentStream:
    stream = DocumentStream(datamodule.sources, datamodule.tokenizer, datamodule.sampler, **datamodule.stream_options)
    stream.set_epoch(epoch)
    return stream


def _worker_seeds(examples: list[dict]) -> tuple:
    info = get_worker_info()
    return info.id, torch.initial_seed(), int(np.random.get_state()[1][0]), random.random()


def _signal_handlers(examples: list[dict]) -> tuple:
    return signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)


def test_workers_leave_ctrl_c_and_sigterm_to_the_main_process(tokenizer, prepared_corpus):
    """A terminal's Ctrl+C and a scheduler's SIGTERM reach every process of the group: a worker that died of it
    would fail the step the main process is finishing before it saves and stops."""
    datamodule = _datamodule(tokenizer, prepared_corpus)
    stream = DocumentStream(datamodule.sources, tokenizer, SMALL, seed=3)
    loader = DataLoader(stream, batch_size=4, num_workers=1, worker_init_fn=init_worker, collate_fn=_signal_handlers)
    assert next(iter(loader)) == (signal.SIG_IGN, signal.SIG_IGN)


def test_each_worker_is_seeded_from_seed_epoch_rank_and_worker(tokenizer, prepared_corpus):
    datamodule = _datamodule(tokenizer, prepared_corpus)

    def seeds(rank: int, epoch: int) -> dict[int, tuple]:
        stream = DocumentStream(datamodule.sources, tokenizer, SMALL, seed=3, rank=rank, world_size=2)
        stream.set_epoch(epoch)
        loader = DataLoader(stream, batch_size=4, num_workers=2, worker_init_fn=seed_worker, collate_fn=_worker_seeds)
        return {worker: rest for worker, *rest in loader}

    first = seeds(rank=0, epoch=0)
    assert first == seeds(rank=0, epoch=0), "the same seeds in every run"
    expected = int(np.random.SeedSequence([3, 0, 0, 1]).generate_state(1)[0])
    assert sorted(first) == [0, 1] and first[1][0] == expected
    torch_seeds = [s[0] for run in (first, seeds(rank=1, epoch=0), seeds(rank=0, epoch=1)) for s in run.values()]
    assert len(set(torch_seeds)) == 6, "distinct per worker, rank and epoch"


def test_mlm_masks_repeat_from_run_to_run_with_workers(tokenizer, prepared_corpus):
    masks = []
    for _ in range(2):
        datamodule = DeCLUTRDataModule(tokenizer, [str(prepared_corpus)], SMALL, batch_size=2, seed=3, num_workers=2)
        datamodule.setup("fit")
        torch.manual_seed(len(masks))  # the main process's RNG must not matter
        masks.append([batch["mlm_labels"] for batch in datamodule.train_dataloader()])
    assert len(masks[0]) == len(masks[1]) > 10
    assert all(torch.equal(a, b) for a, b in zip(*masks))
