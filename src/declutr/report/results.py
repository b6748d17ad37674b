"""A training run's outcome as ``<run>/results.json``: the file a sweep's summary and report read.

Written atomically by ``task=train`` on every way a run ends, with one status of :data:`STATUSES`: ``ok`` (it trained
to the end, its weights are finite and exported, with the STS-B scores before and after training), ``interrupted``
(SIGINT or SIGTERM: not exported; ``checkpoint`` resumes it), ``stopped_nonfinite`` (non-finite losses, gradients or
weights: not exported) or ``failed`` (an error, its traceback in ``error.txt``). Only ``ok`` is finished. A run folder
without the file never ended: it was killed (``kill -9``, out of memory), or is still running.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path

from declutr.files.atomic import write_text_atomically

RESULTS_FILE = "results.json"
ERROR_FILE = "error.txt"
OK, INTERRUPTED, STOPPED_NONFINITE, FAILED = "ok", "interrupted", "stopped_nonfinite", "failed"
STATUSES = (OK, INTERRUPTED, STOPPED_NONFINITE, FAILED)


@dataclass(frozen=True)
class RunResult:
    """``before``/``after`` map an evaluation (``stsb_dev``, ``stsb_test``) to Spearman x 100."""

    status: str  # one of STATUSES
    settings: dict = field(default_factory=dict)  # the run's key settings, resolved (see runs.context)
    before: dict[str, float] = field(default_factory=dict)  # the model before training: the baseline
    after: dict[str, float] = field(default_factory=dict)
    steps: int | None = None  # the step reached
    nonfinite_steps: int | None = None  # steps skipped for a non-finite loss or gradient
    seconds: float | None = None  # wall time of the run; resumed: this attempt's plus the earlier ones' training
    tokens_per_s: float | None = None
    experiment: str | None = None  # e.g. "ablation/anchors"
    axis: str | None = None  # e.g. "anchors"
    scale: str | None = None  # the experiment/scale choice, e.g. "miniature"
    swept: dict[str, str] = field(default_factory=dict)  # in a sweep: the value of each setting it varies
    git_commit: str | None = None
    checkpoint: str | None = None  # interrupted or stopped_nonfinite: the checkpoint to resume from, if any
    error: str | None = None  # "<ExceptionType>: <message>"
    traceback_file: str | None = None  # ERROR_FILE, relative to the run folder


def write_result(run_dir: str | Path, result: RunResult) -> Path:
    """``<run_dir>/results.json``, replaced atomically: a reader never sees half a file. A run that succeeded in a
    folder where an earlier attempt failed takes that attempt's ``error.txt`` away: the folder tells its last outcome."""
    path = Path(run_dir) / RESULTS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(asdict(result), indent=2, default=str) + "\n")
    if result.status == OK:
        (path.parent / ERROR_FILE).unlink(missing_ok=True)
    return path


def write_failure(run_dir: str | Path, error: BaseException, status: str = FAILED, **fields) -> Path:
    """A run that did not finish (``status``): its traceback to ``error.txt``, then ``results.json`` naming the
    error and that file."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    trace = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    write_text_atomically(run_dir / ERROR_FILE, trace)
    return write_result(run_dir, RunResult(status=status, error=f"{type(error).__name__}: {error}",
                                           traceback_file=ERROR_FILE, **fields))


def read_result(run_dir: str | Path) -> RunResult | None:
    """The outcome of a run, or ``None`` if it never wrote one; keys this version does not know are ignored."""
    path = Path(run_dir) / RESULTS_FILE
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    known = RunResult.__dataclass_fields__
    return RunResult(**{key: value for key, value in data.items() if key in known})
