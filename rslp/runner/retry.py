"""Retry data-source work that failed transiently, with exponential backoff and jitter.

A transient fault is one that the same request may not meet again: an HTTP 5xx or 429
answer, a timeout, a connection refused, reset or closed early. Anything else (a 403, a
missing file, a bad argument, a bug) is not retried: retrying would only delay the
error. Exceptions are classified by walking their chain (``__cause__``/``__context__``),
since data sources wrap what the HTTP or S3 client raised.
"""

from __future__ import annotations

import logging
import random
import re
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

logger = logging.getLogger(__name__)
T = TypeVar("T")

TRANSIENT_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
# Words of clients that report a transient fault only in the message (GDAL's curl
# driver, aiohttp and botocore wrappers, s3fs re-raising as OSError).
_TRANSIENT_TEXT = re.compile(
    r"HTTP response code: (5\d\d|429|408)|\b(5\d\d|429) (Service Unavailable|Bad Gateway|"
    r"Internal Server Error|Gateway Time-?out|Too Many Requests)\b|SlowDown|"
    r"RequestTimeout|Service ?Unavailable|Throttl|Connection (reset|refused|aborted)|"
    r"ServerDisconnected|Server disconnected|RemoteDisconnected|IncompleteRead|"
    r"timed? ?out|Read timeout|EndpointConnectionError|Could not connect",
    re.IGNORECASE,
)
_TRANSIENT_NAMES = frozenset(
    {
        "ConnectionError",
        "ConnectTimeout",
        "ReadTimeout",
        "Timeout",
        "TimeoutError",
        "ProtocolError",
        "ClientConnectionError",
        "ClientConnectorError",
        "ClientOSError",
        "ClientPayloadError",
        "ServerDisconnectedError",
        "ServerTimeoutError",
        "EndpointConnectionError",
        "ConnectionClosedError",
        "ReadTimeoutError",
        "ConnectTimeoutError",
        "IncompleteRead",
        "RemoteDisconnected",
    }
)


def _status(exc: BaseException) -> int | None:
    """The HTTP status an exception carries, where its client records one."""
    for attr in ("status", "status_code", "code"):
        value = getattr(exc, attr, None)
        if isinstance(value, int) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    value = getattr(response, "status_code", None)
    if isinstance(value, int):
        return value
    if isinstance(response, dict):  # botocore's ClientError
        value = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if isinstance(value, int):
            return value
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen and len(seen) < 20:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def is_transient(exc: BaseException) -> bool:
    """Whether ``exc`` (or an exception it was raised from) is a transient fault."""
    for e in _chain(exc):
        status = _status(e)
        if status is not None:
            return status in TRANSIENT_STATUS
        if isinstance(e, ConnectionError | TimeoutError | socket.timeout):
            return True
        if any(t.__name__ in _TRANSIENT_NAMES for t in type(e).__mro__):
            return True
        if _TRANSIENT_TEXT.search(str(e)):
            return True
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry a transient fault.

    Attributes:
        max_attempts: retries after the first attempt (0: no retry).
        backoff: seconds before the first retry; doubled for each later one.
        max_backoff: the longest wait between two attempts.
    """

    max_attempts: int = 4
    backoff: float = 1.0
    max_backoff: float = 60.0

    @classmethod
    def from_config(cls, cfg: Any) -> RetryPolicy:
        """From a :class:`rslp.config.DatasetBuildConfig`."""
        return cls(cfg.retry_max_attempts, cfg.retry_backoff, cfg.retry_max_backoff)

    def delay(self, retry: int) -> float:
        """Seconds before retry number ``retry`` (1-based): half fixed, half random."""
        cap = min(self.max_backoff, self.backoff * 2 ** (retry - 1))
        return cap / 2 + random.uniform(0, cap / 2)


class RetriesExhaustedError(Exception):
    """A transient fault outlived every retry.

    Args:
        what: the work that failed.
        attempts: how many attempts were made.
        last: the last error.
    """

    def __init__(self, what: str, attempts: int, last: BaseException) -> None:
        self.what = what
        self.attempts = attempts
        self.last = last
        super().__init__(
            f"{what} failed after {attempts} attempt(s): {type(last).__name__}: {last}"
        )


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; retry it on transient faults as ``policy`` says.

    Each retry is logged (a warning naming the attempt, the fault and the wait). ``fn``
    must be safe to call again (rslearn's prepare, ingest and materialize skip what
    they already finished).

    Raises:
        RetriesExhaustedError: a transient fault on the last attempt.
        Exception: whatever ``fn`` raised that is not transient, at once.
    """
    attempt = 1
    while True:
        try:
            return fn()
        except Exception as e:
            if not is_transient(e):
                raise
            if attempt > policy.max_attempts:
                raise RetriesExhaustedError(what, attempt, e) from e
            wait = policy.delay(attempt)
            logger.warning(
                "%s: transient fault on attempt %d of %d (%s: %s); retrying in %.1f s",
                what,
                attempt,
                policy.max_attempts + 1,
                type(e).__name__,
                str(e)[:200],
                wait,
            )
            sleep(wait)
            attempt += 1
