"""GDAL environments that cost no AWS session per raster call.

rasterio opens a GDAL environment (``rasterio.Env``) around each call made outside one,
and some calls (``rasterio.features.rasterize``) open one of their own every time. When
``AWS_ACCESS_KEY_ID`` and ``AWS_SECRET_ACCESS_KEY`` are in the environment (a node with
bucket credentials) and boto3 is installed (s3fs brings it), each environment first
builds a boto3 session from them: 10-20 ms per raster call, whatever the raster.
Measured on this project's machine with keys set: the demo run 1.47x slower, a
fine-tune's fit 3x.

:func:`raster_env` runs a step inside one environment and makes rasterio build the
session from environment variables once per distinct set of AWS variables, reusing it
afterwards (changed keys or a new session token give a new session). Nothing changes
for a process without AWS keys in its environment.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

# What rasterio's session from the environment depends on.
AWS_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_NO_SIGN_REQUEST",
    "AWS_REQUEST_PAYER",
)
_sessions: dict[tuple[str | None, ...], Any] = {}
_lock = threading.Lock()


def reuse_environment_sessions() -> None:
    """Make ``rasterio.session.Session.from_environ`` reuse its session (idempotent)."""
    from rasterio.session import Session

    with _lock:
        if getattr(Session.from_environ, "reuses_sessions", False):
            return
        original = Session.from_environ

        def from_environ(*args: Any, **kwargs: Any) -> Any:
            if args or kwargs:
                return original(*args, **kwargs)
            key = tuple(os.environ.get(k) for k in AWS_VARIABLES)
            session = _sessions.get(key)
            if session is None:
                session = _sessions[key] = original()
            return session

        from_environ.reuses_sessions = True  # type: ignore[attr-defined]
        Session.from_environ = staticmethod(from_environ)


@contextlib.contextmanager
def raster_env() -> Iterator[None]:
    """One GDAL environment for the calling thread for a step, sessions reused."""
    import rasterio

    reuse_environment_sessions()
    with rasterio.Env():
        yield
