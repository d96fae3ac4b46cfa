"""The S3 test server and fault proxy of tests/s3fault.py, end to end through s3fs."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
from collections.abc import Iterator

import botocore.exceptions
import numpy as np
import pytest
import rasterio
from affine import Affine

from tests.s3fault import FaultProxy, S3Server

PAYLOAD = os.urandom(3000)

# Reads s3://bucket/<key> `reads` times with UPath, each with up to 5 tries; prints JSON.
READ_CHILD = """
import hashlib, json, sys
from upath import UPath
key, reads = sys.argv[1], int(sys.argv[2])
errors, digests = [], []
for _ in range(reads):
    for attempt in range(5):
        try:
            data = UPath("s3://bucket/" + key).read_bytes()
            digests.append(hashlib.sha256(data).hexdigest())
            break
        except Exception as e:
            errors.append(type(e).__module__ + "." + type(e).__qualname__ + ": " + str(e))
    else:
        print(json.dumps({"errors": errors, "digests": digests}))
        sys.exit(3)
print(json.dumps({"errors": errors, "digests": digests}))
"""

RASTER_CHILD = """
import json, sys
from upath import UPath
from rslearn.utils.fsspec import open_rasterio_upath_reader
with open_rasterio_upath_reader(UPath("s3://bucket/" + sys.argv[1])) as raster:
    array = raster.read()
    print(json.dumps({"shape": list(array.shape), "sum": int(array.sum()), "crs": str(raster.crs)}))
"""


def run_child(
    server: S3Server, endpoint: str, code: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        env=server.subprocess_env(endpoint),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    src = tmp_path_factory.mktemp("imagery")
    (src / "a.bin").write_bytes(PAYLOAD)
    (src / "tiles").mkdir()
    profile = {
        "driver": "GTiff",
        "width": 16,
        "height": 8,
        "count": 2,
        "dtype": "uint16",
        "crs": "EPSG:32610",
        "transform": Affine(10, 0, 500000, 0, -10, 4000000),
    }
    with rasterio.open(src / "tiles" / "t.tif", "w", **profile) as ds:
        ds.write(np.arange(2 * 8 * 16, dtype="uint16").reshape(2, 8, 16))
    with S3Server() as s3:
        assert s3.upload_dir(src, "imagery") == ["imagery/a.bin", "imagery/tiles/t.tif"]
        yield s3


def test_upath_read_retries_through_injected_503s(server: S3Server) -> None:
    with FaultProxy(server.endpoint, fail_every=3) as proxy:
        result = run_child(server, proxy.endpoint, READ_CHILD, "imagery/a.bin", "4")
        assert result.returncode == 0, result.stdout + result.stderr
        out = json.loads(result.stdout)
        assert len(out["digests"]) == 4
        assert set(out["digests"]) == {hashlib.sha256(PAYLOAD).hexdigest()}
        assert proxy.faults > 0
        assert out["errors"], "the child saw no injected error"
        assert all(e.startswith("builtins.OSError") for e in out["errors"]), out["errors"]
        faulted = [n for n, _, _, fault in proxy.history if fault]
        assert faulted and all(n % 3 == 0 for n in faulted)


def test_always_fail_makes_read_fail(server: S3Server) -> None:
    with FaultProxy(server.endpoint, always_fail=True) as proxy:
        result = run_child(server, proxy.endpoint, READ_CHILD, "imagery/a.bin", "1")
        assert result.returncode == 3, result.stdout + result.stderr
        out = json.loads(result.stdout)
        assert len(out["errors"]) == 5
        assert "OSError" in out["errors"][0]
        assert proxy.faults == proxy.requests > 0
        # Settable at runtime: the same proxy now forwards again.
        proxy.always_fail = False
        result = run_child(server, proxy.endpoint, READ_CHILD, "imagery/a.bin", "1")
        assert result.returncode == 0, result.stdout + result.stderr
        assert json.loads(result.stdout)["errors"] == []


def test_rasterio_read_through_proxy(server: S3Server) -> None:
    with FaultProxy(server.endpoint) as proxy:
        result = run_child(server, proxy.endpoint, RASTER_CHILD, "imagery/tiles/t.tif")
        assert result.returncode == 0, result.stdout + result.stderr
        out = json.loads(result.stdout)
        assert out == {"shape": [2, 8, 16], "sum": sum(range(256)), "crs": "EPSG:32610"}
        assert proxy.requests > 0
        assert proxy.faults == 0


def test_proxy_forwards_head_range_and_resets(server: S3Server) -> None:
    with FaultProxy(server.endpoint) as proxy:
        client = server.client(proxy.endpoint)
        head = client.head_object(Bucket=server.bucket, Key="imagery/a.bin")
        assert head["ContentLength"] == len(PAYLOAD)
        part = client.get_object(Bucket=server.bucket, Key="imagery/a.bin", Range="bytes=10-19")
        assert part["Body"].read() == PAYLOAD[10:20]
        client.put_object(Bucket=server.bucket, Key="scratch/x", Body=b"hello")
        assert client.get_object(Bucket=server.bucket, Key="scratch/x")["Body"].read() == b"hello"

        proxy.reset_every = 1
        # boto3/urllib3 report the reset as ConnectionClosedError (an HTTPClientError).
        with pytest.raises(
            (botocore.exceptions.HTTPClientError, botocore.exceptions.ConnectionError)
        ):
            client.get_object(Bucket=server.bucket, Key="imagery/a.bin")
        assert proxy.resets >= 1
        proxy.reset_every = None
        proxy.fail_every = 1
        with pytest.raises(botocore.exceptions.ClientError) as info:
            client.get_object(Bucket=server.bucket, Key="imagery/a.bin")
        assert info.value.response["Error"]["Code"] == "SlowDown"
        assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_proxy_chunked_request_and_keepalive(server: S3Server) -> None:
    # An unsigned chunked PUT: SeaweedFS refuses it, but the answer must come back
    # framed so that the same keep-alive connection serves the next request.
    with FaultProxy(server.endpoint) as proxy:
        host, port = proxy.endpoint.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("PUT", "/bucket/unsigned", body=iter([b"abc", b"defg"]), encode_chunked=True)
        first = conn.getresponse()
        assert first.status == 403
        assert b"<Error>" in first.read()
        conn.request("HEAD", "/bucket/imagery/a.bin")
        second = conn.getresponse()
        second.read()
        assert second.status == 403
        conn.close()
        assert [(m, p) for _, m, p, _ in proxy.history] == [
            ("PUT", "/bucket/unsigned"),
            ("HEAD", "/bucket/imagery/a.bin"),
        ]
