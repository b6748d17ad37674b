"""A quiet console: each log line once, no advertisements, no warnings known to be harmless.

:func:`setup_console` runs first thing in ``run.py``'s ``main()``, after Hydra has configured logging (its root
logger prints to the console and writes ``<run>/run.log``) and before any task imports Lightning.

Why lines printed twice: importing ``lightning`` gives the ``lightning`` logger a console handler of its own
(``INFO: <message>``), and it also passes every record on to the root logger, whose Hydra console handler printed
it again. Lightning's handler cannot be removed before Lightning is imported, and importing it here would cost every
task that does not train (eval, embed, prepare, report) seconds; so the ``lightning`` logger stops passing records
to the root logger and writes them to the run's log file(s) itself: the console shows Lightning's own line once, and
``run.log`` still holds every line.
"""

from __future__ import annotations

import logging
import re
import sys
import warnings

LIGHTNING = "lightning"
# Logger of Lightning's rank_zero_info(), which prints its "💡 Tip" lines.
RANK_ZERO = "lightning.pytorch.utilities.rank_zero"
# The tips advertise Lightning's cloud services (litlogger, litmodels): no information about this run.
ADVERT = re.compile(r"^💡 Tip: For seamless cloud .*\b(litlogger|litmodels)\b", re.DOTALL)

# Warnings known to be harmless here: (message regex, category, module regex, why it is harmless).
HARMLESS_WARNINGS = [
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, r"lightning\.pytorch\.utilities\._pytree",
     "Lightning's own batch flattening builds a torch LeafSpec, which torch deprecated; it behaves the same and is "
     "Lightning's to update, nothing a run can change."),
]

_shared: list[logging.Handler] = []  # the root's file handlers this module attached to the lightning logger


class DropAdverts(logging.Filter):
    """Drops Lightning's "💡 Tip: ... install litlogger/litmodels" lines: advertisements of a cloud service, shown
    on every run, that say nothing about the run (this project logs to CSV, TensorBoard or W&B)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not ADVERT.search(record.getMessage())


def setup_console() -> None:
    """Idempotent (a sweep calls it once per job, after Hydra reconfigured logging for that job)."""
    for message, category, module, _why in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
    rank_zero = logging.getLogger(RANK_ZERO)
    if not any(isinstance(f, DropAdverts) for f in rank_zero.filters):
        rank_zero.addFilter(DropAdverts())
    _log_lightning_once()


def _log_lightning_once() -> None:
    lightning = logging.getLogger(LIGHTNING)
    for handler in _shared:  # the previous job's files: a sweep's jobs each have their own log
        lightning.removeHandler(handler)
    _shared.clear()
    root = logging.getLogger()
    own_console = any(_is_console(h) for h in lightning.handlers)
    if LIGHTNING in sys.modules and not own_console:
        # Lightning was imported before and its console handler is gone: the root's console prints its lines.
        lightning.propagate = True
        return
    lightning.propagate = False
    for handler in root.handlers:
        if not _is_console(handler) and handler not in lightning.handlers:
            lightning.addHandler(handler)
            _shared.append(handler)


def _is_console(handler: logging.Handler) -> bool:
    return isinstance(handler, logging.StreamHandler) and not isinstance(handler, logging.FileHandler)
