"""Read the records of a wandb offline run (``run-*.wandb``) without network or the wandb service.

The file is a LevelDB-style log: a 7-byte header (``:W&B``, magic, version), then 32 KiB blocks of
chunks, each with a 7-byte header (crc32, little-endian length, type: 1 full, 2 first, 3 middle,
4 last) whose payloads join into serialized ``wandb_internal_pb2.Record`` messages.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator
from pathlib import Path

import wandb
from wandb.proto import wandb_internal_pb2

BLOCK = 32768
HEADER = 7


def finished_run_file(run_dir: Path) -> Path:
    """The run file (``wandb/offline-run-*/run-*.wandb``) of the run in ``run_dir``, complete. ``wandb.finish()`` only
    tells W&B's service process that the run ended; the service writes the rest of the file and closes it afterwards,
    so a file read right after a run in this process can lack records (on a loaded CPU the span-log test found no run
    record, so no tags). ``wandb.teardown()`` waits for the service to exit; the next run starts a new one."""
    wandb.teardown()
    (path,) = (Path(run_dir) / "wandb").glob("offline-run-*/run-*.wandb")
    return path


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    data = Path(path).read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a wandb run file"
    pos, pending = HEADER, b""
    while pos + HEADER <= len(data):
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # block trailer too small for a chunk header: skip the padding
            pos += room
            continue
        _crc, length, kind = struct.unpack("<IHB", data[pos : pos + HEADER])
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += room
            continue
        payload = data[pos + HEADER : pos + HEADER + length]
        pos += HEADER + length
        pending = payload if kind in (1, 2) else pending + payload
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def config_and_history_keys(path: Path) -> tuple[set[str], set[str]]:
    """Top-level config keys and every metric name in the history of a run file."""
    config, history = set(), set()
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "config":
            config |= {item.key for item in record.config.update}
        elif kind == "history":
            history |= {item.key or "/".join(item.nested_key) for item in record.history.item}
    return config, history


def run_tags(path: Path) -> set[str]:
    """Every tag the run records carry (W&B writes a run record at start and again when tags change)."""
    return {tag for record in records(path) if record.WhichOneof("record_type") == "run" for tag in record.run.tags}


def history_values(path: Path) -> dict[str, list]:
    """Every logged history value by metric name, JSON-decoded; rich media are flattened by W&B into
    ``<name>/<field>`` keys (``spans/anchor_tokens/_type`` = ``"histogram"``, ``.../values``, ``.../bins``)."""
    values: dict[str, list] = {}
    for record in records(path):
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                values.setdefault(item.key or "/".join(item.nested_key), []).append(json.loads(item.value_json))
    return values


def config_values(path: Path) -> dict:
    """The run's config: top-level key -> JSON-decoded value (later updates win)."""
    return {item.key: json.loads(item.value_json) for record in records(path)
            if record.WhichOneof("record_type") == "config" for item in record.config.update}


def run_identity(path: Path) -> dict[str, str]:
    """The run's id, display name, group and job type, from its last run record."""
    run = [record.run for record in records(path) if record.WhichOneof("record_type") == "run"][-1]
    return {"id": run.run_id, "name": run.display_name, "group": run.run_group, "job_type": run.job_type}


def record_kinds(path: Path, kind: str) -> list:
    """Every record of one kind (``metric``, ``artifact``, ...), as its protobuf message."""
    return [getattr(record, kind) for record in records(path) if record.WhichOneof("record_type") == kind]


def summary_and_exit_code(path: Path) -> tuple[dict, int | None]:
    """The run's summary (key -> JSON-decoded value, later updates win) and the exit code it finished with."""
    summary, code = {}, None
    for record in records(path):
        kind = record.WhichOneof("record_type")
        if kind == "summary":
            summary |= {item.key or "/".join(item.nested_key): json.loads(item.value_json)
                        for item in record.summary.update}
        elif kind == "exit":
            code = record.exit.exit_code
    return summary, code
