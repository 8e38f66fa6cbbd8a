"""`evledger witness serve` as an operator runs it: a real process, a real port, a real data directory.

The log is built here with `ledger.core` (roots from compact ranges, consistency proofs from
`ledger.core.proof`'s node lists hashed over the leaves), and its signed checkpoints are POSTed
over HTTP as a log would (c2sp.org/tlog-witness §add-checkpoint):

- cosignatures verify with the witness's key, over the submitted checkpoint;
- a fork (another tree of the cosigned size, or a larger tree not extending it) is refused, and
  kept in refused.jsonl;
- the state survives a SIGKILL right after a 200 (it was persisted before the answer), and a
  restarted witness answers a client that says `old 0` with the stored size;
- concurrent submissions never roll the stored size back;
- unknown key 403, unknown origin 404, malformed or oversized bodies 400/413, never a 500;
- `--key` of the wrong type and `--log` of the wrong type exit 2 with guidance.
No PostgreSQL is needed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import signal
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
from litestar.testing import TestClient

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.cosignature import verify_cosignature
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey, VerifierKey, parse_signer_key, parse_verifier_key
from ledger.core.note import parse_note
from ledger.core.proof import consistency_nodes
from ledger.core.witness_protocol import (
    MAX_BODY_BYTES,
    SIZE_CONTENT_TYPE,
    format_add_checkpoint,
    parse_add_checkpoint,
    parse_cosignature_response,
    parse_size_body,
)
from ledger.witness.app import create_witness_app
from ledger.witness.state import REFUSED_FILE, WitnessState

CLI = str(Path(sys.executable).with_name("evledger"))
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}
ORIGIN = "log.example/witnessed"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Log:
    """A transparency log kept in memory: leaves, roots from compact ranges, RFC 9162 proofs."""

    def __init__(self, signer: SignerKey, salt: bytes = b"") -> None:
        self.signer, self.salt = signer, salt
        self.leaves: list[bytes] = []

    def grow(self, size: int) -> None:
        while len(self.leaves) < size:
            entry = self.salt + len(self.leaves).to_bytes(8, "big")
            self.leaves.append(hashlib.sha256(b"\x00" + entry).digest())

    def root(self, size: int) -> bytes:
        return root_from_leaf_hashes(self.leaves[:size])

    def checkpoint(self, size: int) -> str:
        self.grow(size)
        return sign_checkpoint(Checkpoint(self.signer.name, size, self.root(size)), self.signer)

    def proof(self, old: int, size: int) -> list[bytes]:
        """The consistency proof from `old` to `size`, node hashes computed from the leaves."""
        if not 0 < old < size:
            return []
        nodes = consistency_nodes(old, size)
        hashes = []
        for node in nodes.ids:
            begin, end = node.coverage()
            hashes.append(root_from_leaf_hashes(self.leaves[begin:end]))
        return nodes.rehash(hashes)

    def body(self, old: int, size: int) -> tuple[bytes, str]:
        note = self.checkpoint(size)
        return format_add_checkpoint(old, self.proof(old, size), note), note


@dataclass
class Keys:
    witness_key: Path
    witness: VerifierKey
    log_pub: Path
    log: SignerKey


@pytest.fixture
def keys(tmp_path: Path) -> Keys:
    """A witness key made by `evledger keygen --witness`, and a ledger key pair."""
    done = subprocess.run(  # noqa: S603 - our own CLI
        [CLI, "keygen", "witness.example/w1", "--witness", "--out", str(tmp_path / "witness")],
        env=CLEAN_ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "witness.example/w1" in done.stdout
    signer = parse_signer_key((tmp_path / "witness.key").read_text(), ALG_COSIGNATURE_V1)
    witness = parse_verifier_key((tmp_path / "witness.pub").read_text(), ALG_COSIGNATURE_V1)
    assert signer.verifier() == witness
    log = SignerKey.generate(ORIGIN)
    (tmp_path / "ledger.pub").write_text(log.verifier().format() + "\n")
    return Keys(tmp_path / "witness.key", witness, tmp_path / "ledger.pub", log)


@contextmanager
def witness_server(
    keys: Keys, data_dir: Path, port: int | None = None
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """Run `evledger witness serve` until the block ends; yield its URL once /healthz answers."""
    port = port or free_port()
    args = [CLI, "witness", "serve", "--key", str(keys.witness_key), "--log", str(keys.log_pub)]
    args += ["--data-dir", str(data_dir), "--port", str(port)]
    process = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        args,
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                pytest.fail(f"witness exited with {process.returncode}: {output}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("witness did not start")
            time.sleep(0.05)
        yield url, process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if process.stdout:
            output = process.stdout.read()
            process.stdout.close()
            assert "Traceback" not in output, output


def post(url: str, body: bytes) -> httpx.Response:
    response = httpx.post(f"{url}/add-checkpoint", content=body, timeout=10)
    assert response.status_code != 500, response.text
    return response


def assert_cosigned(response: httpx.Response, note: str, witness: VerifierKey) -> int:
    """The response is a 200 whose cosignature verifies over `note`; its timestamp."""
    assert response.status_code == 200, response.text
    lines = parse_cosignature_response(response.content, note, witness)
    return verify_cosignature(parse_note(note).text, lines[0], witness)


def assert_conflict(response: httpx.Response, size: int) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == SIZE_CONTENT_TYPE
    assert parse_size_body(response.content) == size


def test_cosigns_a_growing_log_and_refuses_forks(keys: Keys, tmp_path: Path) -> None:
    log, fork = Log(keys.log), Log(keys.log, salt=b"fork")
    data_dir = tmp_path / "witness-data"
    with witness_server(keys, data_dir) as (url, _):
        body, note = log.body(0, 5)
        before = int(time.time())
        timestamp = assert_cosigned(post(url, body), note, keys.witness)
        assert before <= timestamp <= int(time.time())
        # growth with a consistency proof; the log's note may carry other cosignatures already
        body, note = log.body(5, 13)
        assert_cosigned(post(url, body), note, keys.witness)
        # the same checkpoint again is fine; a stale client learns the size
        assert_cosigned(post(url, log.body(13, 13)[0]), note, keys.witness)
        assert_conflict(post(url, log.body(0, 20)[0]), 13)
        assert_conflict(post(url, log.body(5, 20)[0]), 13)
        # fork 1: another tree of the cosigned size
        assert_conflict(post(url, fork.body(13, 13)[0]), 13)
        # fork 2: a larger tree that does not extend the cosigned one, with its own proof
        assert post(url, fork.body(13, 21)[0]).status_code == 422
        # and the honest log's proof does not lead to the fork's root either
        forged = format_add_checkpoint(13, log.proof(13, 21), fork.checkpoint(21))
        assert post(url, forged).status_code == 422
        # a smaller tree than the cosigned one is never cosigned
        assert post(url, log.body(13, 8)[0]).status_code == 400
        assert_conflict(post(url, log.body(8, 8)[0]), 13)
        # the honest log goes on
        body, note = log.body(13, 21)
        assert_cosigned(post(url, body), note, keys.witness)

        # a checkpoint of the origin signed by another key: 403; an unknown origin: 404
        impostor = Log(SignerKey.generate(ORIGIN))
        assert post(url, impostor.body(21, 30)[0]).status_code == 403
        stranger = Log(SignerKey.generate("other.example/log"))
        assert post(url, stranger.body(0, 3)[0]).status_code == 404

        # malformed and oversized bodies: 400 / 413, JSON error bodies, never a 500
        good = log.body(21, 25)[0]
        for bad in (
            b"",
            b"old 21\n",
            b"old 021\n\n" + good.split(b"\n\n", 1)[1],
            b"\xff\xfe",
            good[:-1],
            good.replace(b"old 21", b"old -21"),
            b"old 0\n" + b"A" * 44 + b"\n\n" + log.checkpoint(3).encode(),
        ):
            response = post(url, bad)
            assert response.status_code == 400, (bad[:40], response.text)
            assert response.json()["status"] == 400
        assert post(url, b"x" * (MAX_BODY_BYTES + 1)).status_code == 413
        chunks = (b"x" * 4096 for _ in range(MAX_BODY_BYTES // 4096 + 2))  # no Content-Length
        assert httpx.post(f"{url}/add-checkpoint", content=chunks, timeout=10).status_code == 413
        assert httpx.get(f"{url}/add-checkpoint", timeout=10).status_code == 405
        # the state is still 21: none of the refusals moved it
        assert_conflict(post(url, log.body(0, 25)[0]), 21)

    # the two signed forks that contradicted the cosigned checkpoint are on record, as evidence
    records = [json.loads(line) for line in (data_dir / REFUSED_FILE).read_text().splitlines()]
    assert [(r["status"], r["cosigned_size"], r["submitted_size"]) for r in records] == [
        (409, 13, 13),
        (422, 13, 21),
        (422, 13, 21),
    ]
    assert all(r["origin"] == ORIGIN for r in records)
    assert parse_add_checkpoint(format_add_checkpoint(13, [], records[0]["checkpoint"])).origin == ORIGIN


def test_restart_resumes_from_the_durable_state(keys: Keys, tmp_path: Path) -> None:
    log = Log(keys.log)
    data_dir = tmp_path / "witness-data"
    with witness_server(keys, data_dir) as (url, process):
        assert_cosigned(post(url, log.body(0, 4)[0]), log.checkpoint(4), keys.witness)
        body, note = log.body(4, 7)
        assert_cosigned(post(url, body), note, keys.witness)
        # killed at once, no shutdown: what it answered must already be on disk
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    with witness_server(keys, data_dir) as (url, _):
        assert_conflict(post(url, log.body(0, 9)[0]), 7)  # a client that knows nothing
        assert_conflict(post(url, log.body(4, 9)[0]), 7)  # a client one step behind
        body, note = log.body(7, 9)
        assert_cosigned(post(url, body), note, keys.witness)
    with witness_server(keys, data_dir) as (url, _):
        assert_conflict(post(url, log.body(0, 9)[0]), 9)


def test_concurrent_submissions_never_roll_back(keys: Keys, tmp_path: Path) -> None:
    log = Log(keys.log)
    log.grow(200)
    targets = list(range(10, 200, 6))

    async def client(http: httpx.AsyncClient, url: str, target: int) -> list[int]:
        """Submit the checkpoint of `target` leaves, following 409s, until it is cosigned or overtaken."""
        old, cosigned = 0, []
        while old <= target:
            response = await http.post(f"{url}/add-checkpoint", content=log.body(old, target)[0])
            if response.status_code == 200:
                cosigned.append(target)
                break
            assert response.status_code == 409, response.text
            assert response.headers["content-type"] == SIZE_CONTENT_TYPE
            stored = parse_size_body(response.content)
            old = stored
            if stored > target:
                break
        return cosigned

    async def run(url: str) -> list[int]:
        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=64)) as http:
            results = await asyncio.gather(*(client(http, url, t) for t in reversed(targets)))
        return [size for sizes in results for size in sizes]

    with witness_server(keys, tmp_path / "witness-data") as (url, _):
        cosigned = asyncio.run(run(url))
        assert max(targets) in cosigned  # the largest tree always gets through: nothing overtakes it
        # no submission rolled the witness back below the largest tree it cosigned
        assert_conflict(post(url, log.body(0, 199)[0]), max(targets))


def test_wrong_key_types_exit_2_with_guidance(keys: Keys, tmp_path: Path) -> None:
    def refused(args: list[str]) -> str:
        done = subprocess.run(  # noqa: S603 - our own CLI
            [CLI, "witness", "serve", *args, "--data-dir", str(tmp_path / "d"), "--port", str(free_port())],
            env=CLEAN_ENV,
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 2, (done.stdout, done.stderr)
        assert "Traceback" not in done.stderr
        return done.stderr

    note_key = tmp_path / "note.key"
    note_key.write_text(SignerKey.generate("witness.example/w1").format() + "\n")
    assert "keygen NAME --witness" in refused(["--key", str(note_key), "--log", str(keys.log_pub)])
    witness_pub = tmp_path / "witness.pub"
    assert "not an Ed25519 key" in refused(["--key", str(keys.witness_key), "--log", str(witness_pub)])
    assert "signer" in refused(["--key", str(keys.witness_key), "--log", str(keys.witness_key)])
    assert refused(["--key", str(keys.witness_key)])  # no --log


def test_one_witness_per_data_directory_and_port(keys: Keys, tmp_path: Path) -> None:
    data_dir = tmp_path / "witness-data"
    with witness_server(keys, data_dir) as (url, _):
        port = url.rsplit(":", 1)[1]
        args = [CLI, "witness", "serve", "--key", str(keys.witness_key), "--log", str(keys.log_pub)]
        for extra in (
            ["--data-dir", str(data_dir), "--port", str(free_port())],
            ["--data-dir", str(tmp_path / "other"), "--port", port],
        ):
            done = subprocess.run(  # noqa: S603 - our own CLI
                args + extra, env=CLEAN_ENV, capture_output=True, text=True, timeout=30, check=False
            )
            assert done.returncode == 2, (done.stdout, done.stderr)


# --- in process: the state, without a server ------------------------------------------------


def test_a_cosignature_is_answered_only_once_the_state_is_on_disk(keys: Keys, tmp_path: Path) -> None:
    log = Log(keys.log)
    signer = parse_signer_key(keys.witness_key.read_text(), ALG_COSIGNATURE_V1)
    state = WitnessState(tmp_path, signer, {ORIGIN: (keys.log.verifier(),)})

    async def submit(old: int, size: int) -> object:
        return await state.add_checkpoint(parse_add_checkpoint(log.body(old, size)[0]))

    asyncio.run(submit(0, 3))
    # a fresh reader of the directory (a restarted witness) sees it at once
    stored = WitnessState(tmp_path, signer, {ORIGIN: (keys.log.verifier(),)}).latest_note(ORIGIN)
    assert stored is not None
    assert parse_note(stored).text == parse_note(log.checkpoint(3)).text
    # the stored note carries the log's signature and the witness's cosignature, nothing else
    names = [sig.name for sig in parse_note(stored).signatures]
    assert names == [ORIGIN, "witness.example/w1"]
    assert not list(tmp_path.glob("checkpoints/*.tmp"))


def test_a_corrupt_state_is_503_never_a_fresh_start(keys: Keys, tmp_path: Path) -> None:
    log = Log(keys.log)
    signer = parse_signer_key(keys.witness_key.read_text(), ALG_COSIGNATURE_V1)
    app = create_witness_app(signer, [keys.log.verifier()], tmp_path)
    with TestClient(app) as http:
        assert http.post("/add-checkpoint", content=log.body(0, 3)[0]).status_code == 200
    (state_file,) = tmp_path.glob("checkpoints/*")
    state_file.write_text("garbage\n")
    app = create_witness_app(signer, [keys.log.verifier()], tmp_path)
    with TestClient(app) as http:
        response = http.post("/add-checkpoint", content=log.body(0, 3)[0])
        assert response.status_code == 503
        assert "Retry-After" in response.headers
        assert http.post("/add-checkpoint", content=log.body(3, 5)[0]).status_code == 503
    # another log's state in that file is refused too
    state_file.write_text(Log(SignerKey.generate("other.example/log")).checkpoint(2))
    app = create_witness_app(signer, [keys.log.verifier()], tmp_path)
    with TestClient(app) as http:
        assert http.post("/add-checkpoint", content=log.body(0, 3)[0]).status_code == 503
