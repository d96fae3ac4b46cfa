"""A prefix in object storage (``s3://bucket/prefix``) through fsspec.

The floor under a scratch that lives in a bucket: whole-object reads and writes, a
create-once write and a compare-and-swap (for the lease lock), listings, and trees of
files pushed or pulled whole. Object writes are atomic but there is no rename, so a
tree is complete only when its marker object (``.complete``) says so: files first, the
marker last; a reader goes by the marker, never by what a listing shows.

Endpoint and credentials come from the standard environment (``AWS_ENDPOINT_URL``,
``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``; Google's and Azure's
own for ``gs://`` and ``az://``): they are never stored, logged or put in a message.
Only S3 is tested (against a real SeaweedFS server); ``gs://`` and ``az://`` go through
the same fsspec calls.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import uuid
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from rslp.errors import RunnerError
from rslp.fsutil import URL, atomic_path, fresh_dir, publish_dir, signature

SCHEMES = ("s3", "gs", "gcs", "az", "abfs")
MARKER = ".complete"
CREDENTIALS = {
    "s3": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or AWS_PROFILE)",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS",
    "gcs": "GOOGLE_APPLICATION_CREDENTIALS",
    "az": "AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_NAME / _KEY)",
    "abfs": "AZURE_STORAGE_CONNECTION_STRING (or AZURE_STORAGE_ACCOUNT_NAME / _KEY)",
}


def is_url(value: object) -> bool:
    """Whether ``value`` is a string that looks like a URL (``scheme://...``)."""
    return isinstance(value, str) and bool(URL.match(value))


class BucketError(RunnerError):
    """Object storage refused or failed an operation.

    Args:
        url: the scratch URL (never with credentials).
        what: what was being done.
        reason: why it failed.
        hint: what to fix (names the variable).
    """

    def __init__(self, url: str, what: str, reason: str, hint: str = "") -> None:
        self._init_args = (url, what, reason, hint)
        self.url = url
        text = f"scratch {url}: {what} failed: {reason}"
        super().__init__(text + (f" (hint: {hint})" if hint else ""))


class Bucket:
    """A prefix in a bucket, addressed by relative names (``plan/index.json``).

    Args:
        url: ``scheme://bucket/prefix`` with a scheme of :data:`SCHEMES`.

    Raises:
        BucketError: an unsupported scheme, no bucket, or credentials in the URL.
    """

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        shown = f"{scheme}://{parts.hostname or ''}{parts.path}"
        if parts.username or parts.password:
            raise BucketError(
                shown,
                "reading the URL",
                "it holds credentials",
                f"give them in the environment: {CREDENTIALS.get(scheme, 'the usual variables')}",
            )
        if scheme not in SCHEMES:
            raise BucketError(
                url, "reading the URL", f"scheme {scheme}:// is not supported", ", ".join(SCHEMES)
            )
        if not parts.netloc:
            raise BucketError(url, "reading the URL", "no bucket", f"{scheme}://BUCKET/PREFIX")
        self.scheme = scheme
        self.bucket = parts.netloc
        self.prefix = parts.path.strip("/")
        self.url = f"{scheme}://{self.bucket}" + (f"/{self.prefix}" if self.prefix else "")

    def __repr__(self) -> str:
        return f"Bucket({self.url!r})"

    def __reduce__(self) -> tuple[type, tuple[str]]:
        return (type(self), (self.url,))

    @cached_property
    def fs(self) -> Any:
        """The fsspec filesystem (configured from the environment; listings not cached)."""
        import fsspec

        with self._errors("connecting"):
            return fsspec.filesystem(
                self.scheme, use_listings_cache=False, skip_instance_cache=True
            )

    def key(self, rel: str = "") -> str:
        """``bucket/prefix/rel``: the name fsspec takes."""
        base = f"{self.bucket}/{self.prefix}" if self.prefix else self.bucket
        return f"{base}/{rel.strip('/')}" if rel.strip("/") else base

    def uri(self, rel: str = "") -> str:
        """``scheme://bucket/prefix/rel``: the name users and GDAL (``/vsis3/``) take."""
        return f"{self.scheme}://{self.key(rel)}"

    def hint(self) -> str:
        """What to check when the bucket refuses: the variables, never their values."""
        endpoint = os.environ.get("AWS_ENDPOINT_URL") if self.scheme == "s3" else None
        where = f"AWS_ENDPOINT_URL={endpoint}" if endpoint else "the default endpoint"
        return f"check {CREDENTIALS[self.scheme]} and that bucket {self.bucket!r} exists at {where}"

    @contextlib.contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn what fsspec and the cloud SDKs raise into one :class:`BucketError`."""
        try:
            yield
        except BucketError:
            raise
        except ImportError as e:  # fsspec names the package: s3fs, gcsfs, adlfs
            raise BucketError(
                self.url, what, _first_line(e), f"install the filesystem for {self.scheme}://"
            ) from None
        except PermissionError as e:
            raise BucketError(
                self.url, what, f"access denied ({_first_line(e)})", self.hint()
            ) from None
        except Exception as e:  # botocore, aiohttp, gcsfs, adlfs: no common base
            name = type(e).__name__
            text = _first_line(e)
            if "NoSuchBucket" in text or "bucket does not exist" in text.lower():
                raise BucketError(
                    self.url, what, f"bucket {self.bucket!r} does not exist"
                ) from None
            if "connect" in (name + text).lower():
                raise BucketError(self.url, what, f"cannot connect ({text})", self.hint()) from None
            raise BucketError(self.url, what, f"{name}: {text}", self.hint()) from None

    def check_writable(self) -> None:
        """Fail at once, naming the URL and what to fix, unless a write and read work."""
        probe = f".probe-{uuid.uuid4().hex[:12]}"
        with self._errors("checking the bucket"):
            try:
                if self.scheme == "s3":
                    self.fs.call_s3("head_bucket", Bucket=self.bucket)
                else:
                    self.fs.info(self.bucket)
            except FileNotFoundError:
                raise BucketError(
                    self.url, "checking the bucket", f"bucket {self.bucket!r} does not exist"
                ) from None
        with self._errors("writing a probe object"):
            self.fs.pipe_file(self.key(probe), b"probe")
        with self._errors("reading the probe object back"):
            self.fs.cat_file(self.key(probe))
            self.fs.rm_file(self.key(probe))

    # -- objects -------------------------------------------------------------------------

    def read(self, rel: str) -> bytes | None:
        """An object's bytes, or None when there is none."""
        with self._errors(f"reading {rel}"):
            try:
                return bytes(self.fs.cat_file(self.key(rel)))
            except FileNotFoundError:
                return None

    def read_many(self, rels: list[str]) -> dict[str, bytes | None]:
        """Many objects at once (concurrent requests); None for a missing one."""
        if not rels:
            return {}
        keys = {self.key(r): r for r in rels}
        with self._errors(f"reading {len(rels)} objects"):
            got = self.fs.cat(list(keys), on_error="return")
        out: dict[str, bytes | None] = {}
        for key, rel in keys.items():
            value = got.get(key)
            if isinstance(value, FileNotFoundError) or value is None:
                out[rel] = None
            elif isinstance(value, BaseException):
                with self._errors(f"reading {rel}"):
                    raise value
            else:
                out[rel] = bytes(value)
        return out

    def write(self, rel: str, data: bytes) -> None:
        """Write an object whole (object writes are atomic)."""
        with self._errors(f"writing {rel}"):
            self.fs.pipe_file(self.key(rel), data)

    def read_tagged(self, rel: str) -> tuple[bytes, str] | None:
        """An object's bytes and its ETag (for :meth:`replace`), or None."""
        with self._errors(f"reading {rel}"):
            try:
                etag = str(self.fs.info(self.key(rel))["ETag"])
                return bytes(self.fs.cat_file(self.key(rel))), etag
            except (FileNotFoundError, KeyError):
                return None

    def create(self, rel: str, data: bytes) -> bool:
        """Write an object only if there is none (a conditional create).

        Returns:
            False when the object exists (nothing written).
        """
        with self._errors(f"creating {rel}"):
            try:
                self.fs.pipe_file(self.key(rel), data, mode="create")
            except FileExistsError:
                return False
            except OSError as e:  # s3fs: a 412 Precondition Failed arrives as EINVAL
                if "pre-condition" in str(e).lower() or "precondition" in str(e).lower():
                    return False
                raise
        return True

    def replace(self, rel: str, data: bytes, etag: str) -> bool:
        """Overwrite an object only if its ETag is still ``etag`` (compare and swap).

        Returns:
            False when the object changed (or is gone) since ``etag`` was read.
        """
        with self._errors(f"replacing {rel}"):
            if self.scheme != "s3":  # no portable conditional put: check, then write
                now = self.read_tagged(rel)
                if now is None or now[1] != etag:
                    return False
                self.fs.pipe_file(self.key(rel), data)
                return True
            bucket, _, key = self.key(rel).partition("/")
            try:
                self.fs.call_s3("put_object", Bucket=bucket, Key=key, Body=data, IfMatch=etag)
            except (OSError, FileNotFoundError) as e:
                text = str(e).lower()
                if isinstance(e, FileNotFoundError) or "pre-condition" in text or "412" in text:
                    return False
                raise
        return True

    def delete(self, rels: list[str]) -> None:
        """Delete objects (missing ones are fine)."""
        if rels:
            with (
                self._errors(f"deleting {len(rels)} objects"),
                contextlib.suppress(FileNotFoundError),
            ):
                self.fs.rm([self.key(r) for r in rels])

    def listing(self, rel_dir: str) -> dict[str, tuple[int, str]]:
        """Every object under ``rel_dir`` (relative to it): its size and ETag."""
        base = self.key(rel_dir) + "/" if rel_dir.strip("/") else self.key() + "/"
        with self._errors(f"listing {rel_dir or self.url}/"):
            found = self.fs.find(base, detail=True)
        return {
            k[len(base) :]: (int(v.get("size", 0)), str(v.get("ETag", v.get("etag", ""))))
            for k, v in found.items()
            if k.startswith(base) and v.get("type", "file") == "file"
        }

    def get_files(self, rels: list[str], local: Path) -> None:
        """Download objects (concurrently) to ``local / rel``."""
        if rels:
            with self._errors(f"reading {len(rels)} objects"):
                self.fs.get([self.key(r) for r in rels], [str(local / r) for r in rels])

    def files(self, rel_dir: str) -> dict[str, int]:
        """Every object under ``rel_dir`` (relative to it) and its size."""
        base = self.key(rel_dir) + "/"
        with self._errors(f"listing {rel_dir}/"):
            found = self.fs.find(base, detail=True)
        return {
            k[len(base) :]: int(v.get("size", 0))
            for k, v in found.items()
            if k.startswith(base) and v.get("type", "file") == "file"
        }

    # -- trees ---------------------------------------------------------------------------

    def child(self, rel: str) -> Bucket:
        """The prefix ``rel`` under this one, as a bucket of its own."""
        return Bucket(self.uri(rel))

    def push_tree(self, local: Path, rel: str) -> None:
        """Make ``rel/`` hold exactly the files under ``local``; its marker goes last.

        The marker (``rel/.complete``, also written to ``local/.complete``) names a fresh
        token and the files with their sizes and modification times: :meth:`pull_tree`
        goes by it, so a push cut short is never taken for complete, and objects of an
        earlier push that are gone locally are deleted after the new ones are in place.
        When the bucket still holds the push (or pull) ``local`` last made, files whose
        size and modification time are unchanged since are not sent again.
        """
        names = sorted(
            p.relative_to(local).as_posix()
            for p in local.rglob("*")
            if p.is_file() and p.name != MARKER
        )
        stat = {n: signature(local / n) for n in names}
        before = self._pushed(local, rel)
        send = [n for n in names if before.get(n) != stat[n]]
        with self._errors(f"writing {rel or self.url}/"):
            with contextlib.suppress(FileNotFoundError):  # incomplete until re-marked
                self.fs.rm_file(self.key(f"{rel}/{MARKER}"))
            if send:
                self.fs.put([str(local / n) for n in send], [self.key(f"{rel}/{n}") for n in send])
        stale = sorted(set(self.files(rel)) - set(names) - {MARKER})
        self.delete([f"{rel}/{n}" for n in stale])
        marker = {"token": uuid.uuid4().hex, "files": names, "stat": stat}
        data = json.dumps(marker, sort_keys=True).encode()
        self.write(f"{rel}/{MARKER}", data)
        with atomic_path(local / MARKER) as tmp:
            tmp.write_bytes(data)

    def _pushed(self, local: Path, rel: str) -> dict[str, list[int]]:
        """The files' stats of ``local``'s last push or pull, if ``rel/`` still holds it."""
        try:
            mine = (local / MARKER).read_bytes()
        except OSError:
            return {}
        if self.read(f"{rel}/{MARKER}") != mine:
            return {}
        stat = json.loads(mine).get("stat", {})
        return {k: list(v) for k, v in stat.items()}

    def pull_tree(self, rel: str, local: Path) -> bool:
        """Make ``local`` hold the last complete push of ``rel/`` (nothing when none).

        Skips the download when ``local`` already holds that push (same marker token);
        otherwise builds the tree under a staging name and swaps it in whole.

        Returns:
            False when ``rel/`` has no complete push (``local`` is then left alone).
        """
        data = self.read(f"{rel}/{MARKER}")
        if data is None:
            return False
        with contextlib.suppress(OSError):
            if (local / MARKER).read_bytes() == data:
                return True
        marker = json.loads(data)
        names = list(marker["files"])
        staging = fresh_dir(local)
        try:
            with self._errors(f"reading {rel}/"):
                if names:
                    self.fs.get(
                        [self.key(f"{rel}/{n}") for n in names], [str(staging / n) for n in names]
                    )
            for name, (_, mtime) in marker.get("stat", {}).items():
                os.utime(staging / name, ns=(mtime, mtime))  # a later push skips them
            (staging / MARKER).write_bytes(data)
            publish_dir(staging, local)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return True


def node_base() -> Path:
    """This node's own directory for working copies (``ESRUNNER_NODE_DIR``).

    Default ``~/.cache/esrunner``: each node has its own; processes of one node share it.
    """
    base = os.environ.get("ESRUNNER_NODE_DIR") or str(Path.home() / ".cache" / "esrunner")
    return Path(base)


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]
