"""The primary config of a command: ``conf/<task>.yaml``, chosen from its ``task=<name>`` override before Hydra
composes anything, so that each task composes only the groups it uses (``conf/common.yaml`` holds what every task
shares). ``run.py``, the tests and the benchmarks compose through :func:`config_name`.
"""

from __future__ import annotations

import os
import pkgutil
from pathlib import Path

from hydra._internal.utils import get_args_parser  # the parser of @hydra.main itself: the same flags, the same way
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import OverrideParseException

import declutr.tasks
from declutr.errors import DeclutrConfigError

TASKS = tuple(sorted(m.name for m in pkgutil.iter_modules(declutr.tasks.__path__)))  # one module per task
DEFAULT_TASK = "train"  # python run.py with no task=


def config_name(argv: list[str], config_dir: Path) -> str:
    """The primary config (``<config_dir>/<name>.yaml``, no suffix) of ``python run.py <argv>``: its task. A shell-completion
    query (``-sc query=...``) completes the line Hydra reads from ``COMP_LINE``, with its task if it names a known
    one. Raises :class:`DeclutrConfigError` for an unknown task, or a sweep over tasks."""
    args = get_args_parser().parse_args(argv)
    if args.shell_completion:
        try:
            task = _task(os.environ.get("COMP_LINE", "").split()[1:], config_dir)
        except DeclutrConfigError:  # a task name being typed: complete the default task's keys
            return DEFAULT_TASK
        return task
    return _task(args.overrides, config_dir)


def _task(overrides: list[str], config_dir: Path) -> str:
    """The task ``overrides`` name (the last ``task=``, ``+task=`` or ``++task=``), else :data:`DEFAULT_TASK`."""
    try:
        parsed = OverridesParser.create().parse_overrides([o for o in overrides if o.lstrip("+").startswith("task=")])
    except OverrideParseException:  # Hydra says where its syntax breaks, composing the default task's config
        return DEFAULT_TASK
    if not parsed:
        return DEFAULT_TASK
    last = parsed[-1]
    if last.is_sweep_override():
        raise DeclutrConfigError(f"{last.input_line}: one task per command; each task has its own config "
                                 "(conf/<task>.yaml), so a sweep varies the settings of one task: run one command per task.")
    task = str(last.value())
    if task not in TASKS:
        raise DeclutrConfigError(f"task={task!r} is not a task: use one of {', '.join(TASKS)}.")
    if not (config_dir / f"{task}.yaml").is_file():
        raise DeclutrConfigError(f"task={task} has no config {config_dir / task}.yaml: each module of "
                                 "src/declutr/tasks/ needs its primary config in conf/ (see conf/common.yaml).")
    return task
