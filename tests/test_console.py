"""A quiet console: each log line once, no advertisement, no known-harmless warning; the run's log keeps every line."""

import logging
import re
import subprocess
import sys
import warnings
from collections import Counter

import pytest

from declutr import console
from tests.helpers.paths import ROOT
from tests.helpers.runs import FAST, run_py

PROGRESS = re.compile(r"\d+/(\d+|\?) \[|it/s|%\|")  # a tqdm bar's redraws repeat by design


def _lines(output: str) -> list[str]:
    """Console lines, a log line printed right after a bar's carriage-return redraw on a line of its own."""
    output = re.sub(r"(?<=[^\r\n])(INFO: |WARNING: )", r"\n\1", output)
    return [line for line in re.split(r"[\r\n]+", output) if line.strip()]


def _message(line: str) -> str:
    """The message of a log line, whichever handler printed it (Hydra's ``[time][name][LEVEL] - `` or ``INFO: ``)."""
    line = re.sub(r"^\[[^\]]*\]\[[^\]]*\]\[[A-Z]+\] - ", "", line)
    return re.sub(r"^(INFO|WARNING|ERROR): ", "", line).strip()


@pytest.mark.slow
def test_a_tiny_run_prints_each_line_once_without_adverts_or_harmless_warnings(tmp_path):
    run_dir = tmp_path / "run"
    done = run_py(*FAST, "debug=fast", f"hydra.run.dir={run_dir}")
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    messages = Counter(_message(line) for line in _lines(output) if not PROGRESS.search(line))
    assert {m: n for m, n in messages.items() if n > 1} == {}
    assert "litlogger" not in output and "litmodels" not in output and "💡" not in output
    assert "LeafSpec" not in output
    assert messages["GPU available: False, used: False"] == 1  # Lightning's lines are still shown, once
    log = (run_dir / "run.log").read_text(encoding="utf-8")
    assert "GPU available" in log and "Trainer.fit` stopped" in log  # and kept in the run's log for debugging


@pytest.fixture
def lightning_logger():
    """The lightning logger and console's state, restored after the test."""
    logger, root = logging.getLogger(console.LIGHTNING), logging.getLogger()
    saved = logger.handlers[:], logger.propagate, root.handlers[:], console._shared[:]
    yield logger
    logger.handlers[:], logger.propagate, root.handlers[:], console._shared[:] = saved


def test_lightning_lines_go_to_its_own_console_and_the_run_log_not_to_the_root_console(lightning_logger, tmp_path):
    own_console = logging.StreamHandler()
    lightning_logger.handlers[:] = [own_console]
    root = logging.getLogger()
    first, second = logging.FileHandler(tmp_path / "1.log", delay=True), logging.FileHandler(tmp_path / "2.log", delay=True)
    root.handlers[:] = [logging.StreamHandler(), first]
    console.setup_console()
    console.setup_console()  # idempotent
    assert lightning_logger.propagate is False and lightning_logger.handlers == [own_console, first]
    root.handlers[:] = [root.handlers[0], second]  # a sweep's next job: its own log file
    console.setup_console()
    assert lightning_logger.handlers == [own_console, second]
    first.close(), second.close()


def test_the_litlogger_tip_is_dropped_and_other_lines_kept():
    console.setup_console()
    logger = logging.getLogger(console.RANK_ZERO)
    tip = ("💡 Tip: For seamless cloud logging and experiment tracking, try installing "
           "[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger, which logs metrics")
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, tip, None, None)
    assert not logger.filter(record)
    record = logger.makeRecord(logger.name, logging.INFO, __file__, 1, "GPU available: %s", (False,), None)
    assert logger.filter(record)


def test_only_the_known_leafspec_warning_is_filtered():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        console.setup_console()
        message = "`isinstance(treespec, LeafSpec)` is deprecated, use `isinstance(treespec, TreeSpec)` instead."
        warnings.warn_explicit(message, FutureWarning, "_pytree.py", 21, module="lightning.pytorch.utilities._pytree")
        warnings.warn_explicit(message, FutureWarning, "other.py", 1, module="somewhere.else")  # other module: shown
        warnings.warn_explicit(message, DeprecationWarning, "_pytree.py", 21,
                               module="lightning.pytorch.utilities._pytree")  # other category: shown
    assert [(w.filename, w.category) for w in caught] == [("other.py", FutureWarning), ("_pytree.py", DeprecationWarning)]


def test_run_py_imports_no_lightning_before_the_console_is_set_up():
    """Lightning configures its own console handler when first imported: ``run.py``'s module-level imports (the
    config schema among them) must leave it to the task, after :func:`declutr.console.setup_console`."""
    probe = ("import importlib.util, sys; spec = importlib.util.spec_from_file_location('run', 'run.py'); "
             "spec.loader.exec_module(importlib.util.module_from_spec(spec)); print('lightning' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
