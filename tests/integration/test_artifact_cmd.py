"""`evledger artifact DIGEST` against a live `evledger serve` (issue #13).

One ledger and one server for the module, holding several entries about artifact A (some
naming two subjects). The command must list every one of them in log order, proven
complete at the newest checkpoint, and prove an unknown artifact absent. Between the
command and the server, a small real HTTP proxy (a thread of `http.server`) forwards every
request and can alter one answer: withholding a middle entry, serving another entry in its
place, or claiming another tree size must fail the command (exit 1) naming what is wrong.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from ledger_harness import Ledger, free_port, live_server, register, to_json, token
from proxy_support import Proxy
from service_support import scratch_ledger
from typer.testing import CliRunner

from cli.main import app
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey

runner = CliRunner()
A, B, C = (f"sha256:{n:064x}" for n in (0xA1, 0xB2, 0xC3))
NOBODY = f"sha256:{0xD4:064x}"


@dataclass(frozen=True)
class World:
    ledger: Ledger
    url: str
    auditor: str
    about_a: list[int]  # the indices of the entries naming A, in log order
    proxy: Proxy
    directory: Path


def statement(signer: SignerKey, subjects: tuple[str, ...], n: int) -> bytes:
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"s{i}", "digest": {"sha256": d[7:]}} for i, d in enumerate(subjects)],
        "predicateType": "https://evledger.test/generic/v1",
        "predicate": {"release": {"product": "app", "version": "1.0"}, "n": n},
    }
    return to_json(sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [signer]))


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    directory = tmp_path_factory.mktemp("artifact")
    with scratch_ledger(pg_server_dsn, directory) as ledger, live_server(ledger) as url:
        admin = {"Authorization": f"Bearer {token(ledger.dsn, 'admin')}"}
        pipeline = SignerKey.generate("ci.test/pipeline")

        def post(body: bytes) -> int:
            response = httpx.post(f"{url}/v1/entries", content=body, headers=admin)
            assert response.status_code == 201, response.text
            return int(response.json()["index"])

        post(to_json(register(ledger.signer, pipeline, ["appender"])))
        about_a = []
        for n, subjects in enumerate([(A,), (A, B), (C,), (B, A), (C,), (A,)]):
            index = post(statement(pipeline, subjects, n))
            if A in subjects:
                about_a.append(index)
        with Proxy(url) as proxy:
            yield World(ledger, url, token(ledger.dsn, "auditor"), about_a, proxy, directory)


@pytest.fixture
def proxy(world: World) -> Iterator[Proxy]:
    world.proxy.alter = None
    yield world.proxy
    world.proxy.alter = None


def run(world: World, digest: str, *extra: object, server: str | None = None, **env: str) -> Any:
    args = ["artifact", digest, "--server", server or world.url, "--token", world.auditor]
    args += ["--key", str(world.ledger.pub_path), *map(str, extra)]
    return runner.invoke(app, args, env=env or None)


def as_json(result: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(result.stdout)
    return body


def test_every_entry_about_the_artifact_is_listed_complete_and_in_log_order(world: World) -> None:
    result = run(world, A, "--json")
    assert result.exit_code == 0, result.output
    body = as_json(result)
    assert body["ok"] is True
    assert [e["index"] for e in body["entries"]] == world.about_a
    assert [e["seq"] for e in body["entries"]] == [0, 1, 2, 3]
    assert body["count"] == 4
    assert body["newest"] == world.about_a[-1]
    assert body["chained_from"] == 0
    assert {(e["kind"], e["product"], e["version"]) for e in body["entries"]} == {("evidence", "app", "1.0")}
    assert body["statement"] == (
        f"complete at checkpoint {body['tree_size']}: 4 of 4 entries about {A} "
        f"(the completeness index names entry {world.about_a[-1]} as the newest)"
    )

    text = run(world, A.upper().replace("SHA256", "sha256"))  # hex in capitals: the stored spelling is used
    assert text.exit_code == 0, text.output
    lines = text.stdout.splitlines()
    assert lines[0] == f"artifact {A}"
    assert lines[1].split() == ["index", "time", "kind", "release", "signer"]
    assert [int(line.split()[0]) for line in lines[3:-2]] == world.about_a
    assert lines[-1] == body["statement"]


def test_an_artifact_never_recorded_is_proven_absent(world: World) -> None:
    result = run(world, NOBODY, "--json")
    assert result.exit_code == 0, result.output
    body = as_json(result)
    assert (body["count"], body["entries"], body["newest"]) == (0, [], None)
    assert body["statement"] == f"no entry names {NOBODY} at checkpoint {body['tree_size']} (proven absent)"


def _entry_path(index: int) -> str:
    return f"/v1/entries/{index}"


def test_a_withheld_middle_entry_fails_the_listing(world: World, proxy: Proxy) -> None:
    middle = world.about_a[1]

    def withhold(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == _entry_path(middle):
            return 404, b'{"status": 404, "error": "not found", "detail": "no such entry"}'
        return status, body

    proxy.alter = withhold
    result = run(world, A, "--json", server=proxy.url)
    assert result.exit_code == 1, result.output
    detail = as_json(result)["detail"]
    assert f"entry {middle} (member 1 of the chain of {A}" in detail
    assert "withheld" in detail


def test_another_entry_served_in_place_of_a_middle_one_fails_naming_it(world: World, proxy: Proxy) -> None:
    middle, other = world.about_a[2], world.about_a[2] - 1  # the entry before it is about C, not A

    def substitute(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == _entry_path(middle):
            return status, httpx.get(world.url + _entry_path(other), headers=_auditor(world)).content
        return status, body

    proxy.alter = substitute
    result = run(world, A, "--json", server=proxy.url)
    assert result.exit_code == 1, result.output
    failure = as_json(result)
    assert f"entry {middle} (member 2 of the chain of {A}" in failure["detail"]
    assert failure["labels"] == {"expected": "link names leaf", "calculated": "entry given hashes to"}


def test_a_tampered_byte_in_an_entry_fails(world: World, proxy: Proxy) -> None:
    first = world.about_a[0]

    def tamper(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path != _entry_path(first):
            return status, body
        answer = json.loads(body)
        data = bytearray(base64.b64decode(answer["entry"]))
        data[data.index(b'"time":"') + 9] ^= 1  # one digit of the year
        answer["entry"] = base64.b64encode(bytes(data)).decode()
        return status, json.dumps(answer).encode()

    proxy.alter = tamper
    result = run(world, A, "--json", server=proxy.url)
    assert result.exit_code == 1, result.output
    assert f"entry {first} (member 0 of the chain" in as_json(result)["detail"]


def test_the_head_entry_swapped_for_an_older_one_fails(world: World, proxy: Proxy) -> None:
    newest, older = world.about_a[-1], world.about_a[-2]

    def swap(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if path == _entry_path(newest):
            return status, httpx.get(world.url + _entry_path(older), headers=_auditor(world)).content
        return status, body

    proxy.alter = swap
    result = run(world, A, "--json", server=proxy.url)
    assert result.exit_code == 1, result.output
    assert (
        f"entry {newest} (member 3 of the chain of {A}, named by the completeness index's head"
        in (as_json(result)["detail"])
    )


def test_a_claimed_tree_size_other_than_the_checkpoints_fails(world: World, proxy: Proxy) -> None:
    def grow(path: str, status: int, body: bytes) -> tuple[int, bytes]:
        if not path.startswith("/v1/index/proof"):
            return status, body
        answer = json.loads(body)
        answer["tree_size"] += 1
        return status, json.dumps(answer).encode()

    proxy.alter = grow
    result = run(world, A, "--json", server=proxy.url)
    assert result.exit_code == 1, result.output
    assert "tree size" in as_json(result)["detail"]


def test_another_ledger_key_fails(world: World) -> None:
    other = world.directory / "other.pub"
    other.write_text(SignerKey.generate("ledger.test/it").verifier().format() + "\n")
    args = ["artifact", A, "--server", world.url, "--token", world.auditor, "--key", str(other), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 1, result.output
    assert as_json(result)["error"] == "signature"


def _auditor(world: World) -> dict[str, str]:
    return {"Authorization": f"Bearer {world.auditor}"}


def test_a_malformed_digest_is_a_usage_error(world: World) -> None:
    for digest in ("sha256:abc", "sha512:" + "0" * 64, "0" * 64):
        result = run(world, digest, "--json")
        assert result.exit_code == 2, result.output
        assert as_json(result)["error"] == "input"


def test_a_wrong_token_is_refused(world: World) -> None:
    args = [
        "artifact",
        A,
        "--server",
        world.url,
        "--token",
        "not-a-token",
        "--key",
        str(world.ledger.pub_path),
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 2, result.output
    failure = as_json(result)
    assert failure["error"] == "unauthenticated"
    assert "401" in failure["detail"]


def test_a_server_that_cannot_be_reached_is_unavailable(world: World) -> None:
    result = run(world, A, "--json", server=f"http://127.0.0.1:{free_port()}", EVLEDGER_RETRIES="0")
    assert result.exit_code == 3, result.output
    assert as_json(result)["error"] == "unavailable"
