"""A run folder belongs to one run: a lock taken before anything is written into it, and the run's Hydra files
(``.hydra/config.yaml``, ``hydra.yaml``, ``overrides.yaml``) written only by the run holding it.

Hydra would write ``.hydra/`` before any code of ours runs (``conf/hydra/default.yaml`` turns that off with
``output_subdir: null``): a second run into a held folder, or a resume refused for its settings, would then have
replaced the running or saved run's config. The lock is a POSIX record lock (``fcntl.lockf``) on ``<run>/.lock``: the
kernel releases it when its process ends however it ends (``kill -9`` included), it is not inherited by forked
processes (a ``flock`` would be: DataLoader workers outliving a killed run by seconds would hold the folder), and it
works on local disks and NFS. The file also says who holds it, for the refusal's message. A process must open the
file once only: closing any descriptor of it releases a POSIX lock.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from declutr.errors import DeclutrConfigError
from declutr.files.atomic import write_text_atomically

LOCK_FILE = ".lock"
HYDRA_DIR = ".hydra"


def is_first_process() -> bool:
    """Whether this process is a run's global rank 0, from the variables launchers set before Python starts
    (Lightning, torchrun, SLURM); the other ranks of a multi-process run share its folder and its lock."""
    ranks = (os.environ.get(key) for key in ("RANK", "LOCAL_RANK", "SLURM_PROCID", "JSM_NAMESPACE_RANK"))
    rank = next((int(value) for value in ranks if value is not None), 0)
    return rank == 0 and int(os.environ.get("NODE_RANK", os.environ.get("GROUP_RANK", "0"))) == 0


@contextmanager
def run_folder_lock(folder: str | Path) -> Iterator[Path]:
    """Hold ``folder`` for this run (its global rank 0) until the block ends; a folder another live run holds is
    refused."""
    folder = Path(folder)
    if not is_first_process():
        yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # EAGAIN or EACCES: held
            raise DeclutrConfigError(
                f"Run folder {folder} is in use by another run ({_holder(fd)}): two runs in one folder would "
                "overwrite each other's checkpoints, model and results. Wait for it to end, or give this run its own "
                "folder (leave hydra.run.dir at its default, or set hydra.run.dir=<another folder>).") from None
        os.ftruncate(fd, 0)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": time.strftime(
            "%Y-%m-%d %H:%M:%S"), "command": " ".join(sys.argv)}).encode())
        yield folder
    finally:
        os.close(fd)  # releases the lock; the file stays (removing it would let a third run lock a stale inode)


def _holder(fd: int) -> str:
    """Who holds the lock, as its holder wrote it."""
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode())
        return f"pid {holder['pid']} on {holder['host']}, started {holder['started']}: {holder['command']}"
    except (ValueError, KeyError, OSError):
        return "its holder is starting"


def write_hydra_files(folder: str | Path, cfg: DictConfig, keep_existing: bool = False) -> None:
    """The files Hydra writes into a run folder's ``.hydra/`` (the run's config, Hydra's, the command line's
    overrides), each atomically, by the run's global rank 0; ``keep_existing``: leave a folder that already has them (a
    resume) as it is."""
    target = Path(folder) / HYDRA_DIR
    kept = keep_existing and (target / "config.yaml").is_file()
    if kept or not is_first_process() or not HydraConfig.initialized():
        return
    hydra = HydraConfig.instance().cfg
    target.mkdir(parents=True, exist_ok=True)
    for name, content in (("config.yaml", cfg), ("hydra.yaml", hydra), ("overrides.yaml", hydra.hydra.overrides.task)):
        write_text_atomically(target / name, OmegaConf.to_yaml(content))
