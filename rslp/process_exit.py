"""Ending a finished process without unloading its modules.

At interpreter exit Python tears every module down; once torch, torchvision and Lightning
are imported that takes about a second, after the work is done, in the ``esrunner``
process and again in each of its worker processes (which the run waits for). A process
whose work is finished loses nothing by ending at once: its exit handlers (``atexit``:
logging's flush, temporary files' finalizers, multiprocessing's clean-up, Ray's shutdown)
still run, and Python's and C's stdout and stderr buffers are flushed, before
``os._exit``. What is skipped is what only the teardown does: ``__del__`` methods of
objects still alive (an open ``NamedTemporaryFile`` is not deleted; a raster dataset never
closed is not flushed: this package closes every file it writes with ``with``).

Use :func:`exit_now` at the end of a command-line entry point, and
:func:`end_at_exit_without_teardown` in a ``ProcessPoolExecutor`` worker, whose end its
pool decides. ``ESRUNNER_EXIT_TEARDOWN=1`` in the environment turns both off (a normal
exit: for debugging a library's finalizer, and the baseline of ``bench.cli_exit``).
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import sys
import threading
from typing import NoReturn

TEARDOWN_ENV = "ESRUNNER_EXIT_TEARDOWN"


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` ends a process with (printing a message, as it does).

    Args:
        code: ``None`` (0), an int, or anything else (printed to stderr; status 1).

    Returns:
        the exit status.
    """
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _teardown() -> bool:
    return os.environ.get(TEARDOWN_ENV, "") not in ("", "0")


def _other_threads_running() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _finish() -> None:
    """Run the exit handlers and flush every output buffer, Python's and C's."""
    atexit._run_exitfuncs()  # CPython's own (private) runner of the atexit handlers
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed or replaced
            stream.flush()  # type: ignore[union-attr]
    with contextlib.suppress(OSError, AttributeError, TypeError):  # no C library to ask
        ctypes.CDLL(None).fflush(None)  # what C code (GDAL, ...) wrote with stdio


def exit_now(code: str | int | None = 0) -> NoReturn:
    """End this process as ``sys.exit(code)`` would, but without the interpreter's teardown.

    While another non-daemon thread runs, this is ``sys.exit(code)`` (a normal exit waits
    for such threads first).

    Args:
        code: what ``sys.exit`` takes (:func:`exit_status`).
    """
    if _teardown() or _other_threads_running():
        sys.exit(code)
    status = exit_status(code)
    _finish()
    os._exit(status)


def end_at_exit_without_teardown() -> None:
    """Make this ``ProcessPoolExecutor`` worker end at once when its pool lets it exit.

    Registered last, the handler runs first at exit (after the worker's multiprocessing
    clean-up and once every non-daemon thread ended), runs the other handlers itself and
    ends with status 0: a pool tells a worker's failure by its results, not its status.
    """
    if not _teardown():
        atexit.register(_end_now)


def _end_now() -> None:
    atexit.unregister(_end_now)
    _finish()
    os._exit(0)
