"""What the training benchmarks share: the composed config, real batches from the corpus, a step timer,
peak memory and a description of the machine. Not a benchmark itself (``train_step.py``, ``st_trainer.py``).

Everything is built the way ``task=train`` builds it (``conf/`` composed by Hydra, ``declutr.config.instantiate.build``),
so a benchmark measures the real training step and follows any config key, GradCache's included.
"""

from __future__ import annotations

import logging
import os
import platform
import resource
import shlex
import sys
import threading
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig

import declutr.config.resolvers  # noqa: F401  (registers ${minilm_path:})
from declutr.config.primary import config_name
from declutr.data.datamodule import DeCLUTRDataModule
from declutr.model.chunked import plan_chunks

ROOT = Path(__file__).resolve().parents[1]


def benchmark_overrides(device: str, model_dir: str | None) -> list[str]:
    """Overrides every benchmark run starts from: the device and a model folder (architecture and tokenizer
    only: weights do not change the speed)."""
    overrides = [f"trainer.accelerator={'gpu' if device == 'cuda' else 'cpu'}", "trainer.devices=1",
                 "data.num_workers=0"]  # the batches are collected before the timing starts
    if model_dir:
        overrides += [f"model.encoder.name_or_path={Path(model_dir).resolve()}", "model.encoder.random_init=true"]
    return overrides


def quiet() -> None:
    """Errors only from Lightning, transformers and Python's warnings (their advice on DataLoader workers and
    logging intervals does not apply to pre-collected batches), so the output is the measurements."""
    import transformers

    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    transformers.logging.set_verbosity_error()


def compose_config(overrides: list[str], output_dir: str) -> DictConfig:
    """The config ``run.py`` would run for these overrides (its task's, ``conf/<task>.yaml``), writing (if at all) into
    ``output_dir``."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        return compose(config_name(overrides, ROOT / "conf"), overrides=[*overrides, f"paths.output_dir={output_dir}"])


def collect_batches(datamodule: DeCLUTRDataModule, count: int) -> list[dict]:
    """``count`` full collated batches from the real stream, epochs restarting as in training. The stream's
    closing example (skip counts only) and a short last batch are left out: every step has ``data.batch_size``
    documents (with the window sampler, a short document may give fewer windows than another)."""
    datamodule.setup("fit")
    batches: list[dict] = []
    epoch = 0
    while len(batches) < count:
        datamodule.set_epoch(epoch)
        before = len(batches)
        for batch in datamodule.train_dataloader():
            if len(batch["docs"]) == datamodule.batch_size:
                batches.append(batch)
            if len(batches) == count:
                break
        if len(batches) == before:
            raise SystemExit(f"The corpus gives no batch of {datamodule.batch_size} documents: lower data.batch_size "
                             "or point data.files at a larger corpus.")
        epoch += 1
    return batches


def synchronize() -> None:
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class StepTimer(L.Callback):
    """Wall time of each training step from batch start to batch end (forward, backward, clipping, optimizer
    step; the batch is already on the device), CUDA synchronised at both ends. Steps before ``warmup`` are
    not kept; ``on_measure_start`` runs once, right before the first kept step."""

    def __init__(self, warmup: int, on_measure_start=None) -> None:
        self.warmup, self.on_measure_start = warmup, on_measure_start
        self.seconds: list[float] = []
        self.tokens: list[int] = []  # non-padding tokens (anchors + positives), as train/tokens_per_s counts them
        self.padded: list[int] = []  # tokens including padding, as the batch arrives
        self.paid: list[int] = []  # tokens the encoder computes: length-sorted chunks (model.chunk_size) trim padding
        self._start = 0.0

    def on_train_batch_start(self, trainer, module, batch, batch_idx) -> None:
        if batch_idx == self.warmup and self.on_measure_start:
            self.on_measure_start()
        synchronize()
        self._start = time.perf_counter()

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx) -> None:
        synchronize()
        if batch_idx >= self.warmup:
            self.seconds.append(time.perf_counter() - self._start)
            self.tokens.append(int(batch["num_tokens"]))
            self.padded.append(int(batch["anchor_input_ids"].numel() + batch["positive_input_ids"].numel()))
            groups = ["anchor"] + (["positive"] if module.hparams.contrastive_weight > 0 else [])
            rows = module.rows_per_chunk(module.device)
            self.paid.append(sum(plan_chunks(batch[f"{g}_attention_mask"], rows).paid for g in groups))


class GpuUtilisation:
    """Mean GPU utilisation (NVML's share of time a kernel ran) sampled every ``period`` s in a thread."""

    def __init__(self, period: float = 0.05) -> None:
        self.period, self.samples = period, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append(torch.cuda.utilization())  # needs nvidia-ml-py (pynvml)
            except Exception:  # no NVML here: report none rather than a wrong number
                return
            time.sleep(self.period)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return sum(self.samples) / len(self.samples) if self.samples else None


def rss_mib() -> float:
    """This process's resident memory now (Linux)."""
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mib() -> float:
    """This process's peak resident memory so far (``ru_maxrss`` is in KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def machine() -> str:
    """CPU model and threads, the accelerator, library versions and load: the context of the numbers."""
    import lightning
    import transformers

    cpu = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    gpu = (f"{torch.cuda.get_device_name()} (CUDA {torch.version.cuda})" if torch.cuda.is_available() else "none")
    return (f"CPU: {cpu}, {os.cpu_count()} logical CPUs, torch threads {torch.get_num_threads()}, "
            f"load average {os.getloadavg()[0]:.1f}\nGPU: {gpu}\n"
            f"torch {torch.__version__}, lightning {lightning.__version__}, transformers {transformers.__version__}, "
            f"Python {platform.python_version()}")


def command_line() -> str:
    return " ".join(shlex.quote(arg) for arg in ["python", *sys.argv])
