"""The driver's log lines: one format everywhere (console, ``driver.log``, each island's log)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

from workflow.errors import DISK_FULL


def formatter(island: int | None = None) -> logging.Formatter:
    """``12:00:00 INFO message`` (``12:00:00 island 2 INFO message`` for an island's driver)."""
    where = "" if island is None else f"island {island} "
    return logging.Formatter(f"%(asctime)s {where}%(levelname)s %(message)s", "%H:%M:%S")


def log_to_console(island: int | None = None, level: int | None = None) -> None:
    """``level`` and above to stderr; by default INFO when stderr is not a terminal (Slurm output files), else
    WARNING (a live progress display is on the terminal). An existing console handler only gets the format."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    consoles = [h for h in root.handlers if type(h) is logging.StreamHandler]
    for handler in consoles:
        handler.setFormatter(formatter(island))
    if not consoles:
        console = logging.StreamHandler(sys.stderr)
        console.setFormatter(formatter(island))
        console.setLevel(level or (logging.WARNING if sys.stderr.isatty() else logging.INFO))
        root.addHandler(console)


class _LogFile(logging.FileHandler):
    """``driver.log``: a line that a full disk (ENOSPC, EDQUOT) keeps out is dropped without a traceback on
    stderr (the console has every line, and the driver stops with one line saying the disk is full)."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        error = sys.exc_info()[1]
        if isinstance(error, OSError) and error.errno in DISK_FULL:
            return
        super().handleError(record)


def log_to_file(path: Path, island: int | None = None) -> logging.Handler:
    """Also write the log to ``path`` (appended); returns the handler (to remove once the run is over)."""
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    handler = _LogFile(path)
    handler.setFormatter(formatter(island))
    root.addHandler(handler)
    return handler
