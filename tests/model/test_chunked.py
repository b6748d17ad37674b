"""Chunk plans (length-sorted, trimmed, every row once) and GradCache's memory: one chunk's activations."""

import os
import subprocess
import sys

import pytest
import torch

from declutr.model.chunked import encode_in_chunks, plan_chunks
from tests.helpers.paths import ROOT


def right_padded(lengths: list[int]) -> torch.Tensor:
    columns = max(lengths)
    return (torch.arange(columns)[None, :] < torch.tensor(lengths)[:, None]).long()


def test_no_chunk_size_keeps_the_batch_whole_and_in_order():
    mask = right_padded([5, 9, 3])
    for size in (None, 3, 100):
        plan = plan_chunks(mask, size)
        assert plan.chunks == [(slice(None), 9)] and plan.inverse is None and plan.paid == 27


def test_chunks_hold_rows_of_similar_length_trimmed_to_their_longest():
    lengths = [5, 9, 3, 9, 7, 2, 6]
    plan = plan_chunks(right_padded(lengths), 3)
    rows = [r.tolist() for r, _ in plan.chunks]
    assert rows == [[1, 3, 4], [6, 0, 2], [5]]  # longest first; equal lengths keep their order
    assert [w for _, w in plan.chunks] == [9, 6, 2]
    assert plan.paid == 3 * 9 + 3 * 6 + 1 * 2 < len(lengths) * 9
    assert torch.equal(torch.cat([r for r, _ in plan.chunks])[plan.inverse], torch.arange(len(lengths)))


def test_chunked_outputs_come_back_in_row_order_with_the_losses_summed():
    lengths = [5, 9, 3, 9, 7, 2, 6]
    mask = right_padded(lengths)
    ids = torch.arange(mask.numel()).view(mask.shape) * mask
    seen = []

    def fn(chunk_ids, chunk_mask, labels):  # each row's own length and id sum, and a "loss" per chunk
        seen.append(chunk_mask.shape)
        assert chunk_mask[:, -1].any()  # trimmed: no all-padding column is paid for
        return torch.stack([chunk_mask.sum(1), chunk_ids.sum(1)], 1), chunk_mask.sum()

    out, total = encode_in_chunks(fn, plan_chunks(mask, 2), ids, mask)
    assert torch.equal(out, torch.stack([mask.sum(1), ids.sum(1)], 1)) and total == sum(lengths)
    assert len(seen) == 4


def _peak_step_memory(rows: int, chunk: int | None) -> None:
    """Child process: print the peak resident memory (MiB) one encode + backward adds, MLM included."""
    from declutr.model.module import DeCLUTRModule
    from tests.helpers.model import TINY

    torch.manual_seed(0)
    encoder = {**TINY, "config_overrides": {**TINY["config_overrides"], "hidden_size": 64, "num_attention_heads": 4}}
    module = DeCLUTRModule(encoder, optimizer=torch.optim.AdamW, grad_cache=chunk and {"chunk_size": chunk})
    ids = torch.randint(1000, 20000, (rows, 256))
    labels = torch.where(torch.rand(ids.shape) < 0.15, ids, -100)
    before = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    with open("/proc/self/clear_refs", "w") as handle:  # reset the peak (VmHWM): set-up peaks must not count
        handle.write("5")
    embeddings, mlm, _ = module.embed_tokens(ids, torch.ones_like(ids), labels)
    (embeddings.square().sum() + mlm).backward()
    peak_kib = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM:"))
    print(peak_kib / 1024 - before)


def peak_step_memory(*runs: tuple[int, int | None]) -> list[float]:
    """The peak memory of ``(rows, GradCache chunk size)`` runs, each in a fresh process (run side by side)."""
    # A fixed mmap threshold makes glibc return every large block when it is freed, so the resident size
    # follows the live tensors instead of the heap's fragmentation.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536", "OMP_NUM_THREADS": "1"}
    children = [subprocess.Popen([sys.executable, "-c", "from tests.model.test_chunked import _peak_step_memory; "
                                  f"_peak_step_memory({rows}, {chunk})"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                 text=True) for rows, chunk in runs]
    outputs = [child.communicate(timeout=300)[0] for child in children]
    assert all(child.returncode == 0 for child in children), outputs
    return [float(out.split()[-1]) for out in outputs]


@pytest.mark.slow
def test_grad_cache_peak_memory_is_that_of_one_chunk():
    one_chunk, cached, whole = peak_step_memory((6, None), (48, 6), (48, None))
    assert cached < 1.5 * one_chunk and whole > 4 * cached, (one_chunk, cached, whole)
