"""Ending a finished process without unloading its modules.

At interpreter exit Python tears every module down; once torch, torchvision and Lightning
are imported that takes about a second, after the work is done, in the ``esrunner``
process and again in each of its worker processes (which the run waits for). A process
whose work is finished loses nothing by ending at once: its exit handlers (``atexit``:
logging's flush, temporary files' finalizers, multiprocessing's clean-up, Ray's shutdown)
still run, and stdout and stderr are flushed, before ``os._exit``.

Use :func:`exit_now` at the end of a command-line entry point, and
:func:`end_at_exit_without_teardown` in a worker process whose end its pool decides.
``ESRUNNER_EXIT_TEARDOWN=1`` in the environment turns both off (a normal exit: for
debugging a library's finalizer, and the baseline of ``bench.cli_exit``).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from typing import NoReturn


def exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` ends a process with (a message is printed, as it does).

    Args:
        code: ``None`` (0), an int, or anything else (printed to stderr; status 1).
    """
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


TEARDOWN_ENV = "ESRUNNER_EXIT_TEARDOWN"


def _teardown() -> bool:
    return os.environ.get(TEARDOWN_ENV, "") not in ("", "0")


def _other_threads_running() -> bool:
    main = threading.main_thread()
    return any(t is not main and not t.daemon and t.is_alive() for t in threading.enumerate())


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):  # closed or replaced
            stream.flush()


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
    atexit._run_exitfuncs()
    _flush()
    os._exit(status)


def end_at_exit_without_teardown() -> None:
    """Make this process, when it exits normally, run its exit handlers and end at once.

    For a pool's worker process, whose exit its pool triggers (status 0): the handler is
    registered last, so it runs first and runs the others itself before ``os._exit``.
    """
    if not _teardown():
        atexit.register(_end_now)


def _end_now() -> None:
    atexit.unregister(_end_now)
    if _other_threads_running():
        return  # the interpreter waits for them and tears down as usual
    atexit._run_exitfuncs()
    _flush()
    os._exit(0)
