"""Where log records go: a quiet console, and everything in the run's log file.

The console shows this package's warnings and errors; every record, libraries' included,
goes to the run's log file (``scratch/logs/esrunner.log``).

rslearn gives each of its loggers a handler printing to stdout, and Lightning gives its own
a stderr handler when the root logger has none; :func:`quiet_libraries` takes those console
handlers off again (and lets the records propagate to the log file). It is cheap, and is
called after the places that import such libraries (the dataset opening, the model build).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

OWN = "rslp"
_MARK = "_rslp_handler"


class ConsoleFilter(logging.Filter):
    """Lets through this package's records at ``own_level``, others at ``library_level``."""

    def __init__(self, own_level: int, library_level: int) -> None:
        super().__init__()
        self.own_level = own_level
        self.library_level = library_level

    def filter(self, record: logging.LogRecord) -> bool:
        """Whether the record is shown on the console (never one with a traceback)."""
        if record.exc_info:
            return False
        own = record.name == OWN or record.name.startswith(OWN + ".")
        return record.levelno >= (self.own_level if own else self.library_level)


def _ours(handler: logging.Handler) -> bool:
    return bool(getattr(handler, _MARK, False))


def setup(verbose: bool = False) -> None:
    """Console logging for a command.

    The console gets our warnings and errors (``verbose``: our INFO and library warnings
    too); library records are kept for the log file (:func:`log_to`).
    """
    root = logging.getLogger()
    for h in [h for h in root.handlers if _ours(h) and not isinstance(h, logging.FileHandler)]:
        root.removeHandler(h)
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    console = logging.StreamHandler(sys.stderr)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    console.addFilter(
        ConsoleFilter(logging.INFO, logging.WARNING)
        if verbose
        else ConsoleFilter(logging.WARNING, logging.ERROR)
    )
    setattr(console, _MARK, True)
    root.addHandler(console)
    logging.captureWarnings(True)  # library warnings.warn -> the py.warnings logger
    quiet_libraries()


def log_to(path: Path) -> None:
    """Also write every record (libraries' included) to ``path`` (once per file)."""
    root = logging.getLogger()
    target = str(path.resolve())
    if any(isinstance(h, logging.FileHandler) and h.baseFilename == target for h in root.handlers):
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    setattr(handler, _MARK, True)
    root.addHandler(handler)


def quiet_libraries() -> None:
    """Take library loggers' own console handlers off; their records propagate instead."""
    if not any(_ours(h) for h in logging.getLogger().handlers):
        return  # not set up by a command (e.g. the library used from Python): leave as is
    for name, lg in list(logging.Logger.manager.loggerDict.items()):
        if not isinstance(lg, logging.Logger) or name == OWN or name.startswith(OWN + "."):
            continue
        console = [
            h
            for h in lg.handlers
            if type(h) is logging.StreamHandler and h.stream in (sys.stdout, sys.stderr)
        ]
        for h in console:
            lg.removeHandler(h)
        if console:
            lg.propagate = True


def log_files() -> list[Path]:
    """The files log records go to (set up by :func:`log_to`)."""
    return [
        Path(h.baseFilename)
        for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and _ours(h)
    ]


def internal_error(err: BaseException, fallback_dir: Path | None = None) -> str:
    """Log ``err``'s traceback to the log file and return the one line for the console.

    Args:
        err: the unexpected exception (a bug here, never a user's mistake).
        fallback_dir: where to write a log when none is set up (default: the temp dir).
    """
    import tempfile

    files = log_files()
    if not files:
        base = fallback_dir or Path(tempfile.gettempdir())
        log_to(base / f"esrunner-internal-error-{os.getpid()}.log")
        files = log_files()
    logging.getLogger("rslp.internal").error("internal error", exc_info=err)
    return (
        f"internal error: {type(err).__name__}: {err} (a bug in esrunner, not in your project: "
        f"please report it with the traceback in {files[0]})"
    )
