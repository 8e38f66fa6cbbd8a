"""The CLI's HTTP client against a scripted server: retries, exit 3, "already recorded", 409 advice.

The server here is a real HTTP server on 127.0.0.1 that answers from a script, so what is
tested is the client's own behaviour: which answers it tries again, how long it waits,
and what it tells the user.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.client import LedgerClient
from cli.main import app
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.errors import ConflictError, UnavailableError

RECEIPT = {
    "index": 7,
    "leaf_hash": "ab" * 32,
    "time": "2026-12-04T10:00:00.000Z",
    "checkpoint": "x",
    "inclusion_proof": [],
}
SIGNER = SignerKey.from_seed("ci.test/pipeline", bytes(range(32)))
STATEMENT = json.dumps(
    {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "a", "digest": {"sha256": "00" * 32}}],
        "predicateType": "https://example.test/p/v1",
        "predicate": {},
    }
).encode()


class Scripted:
    """An HTTP server answering each request with the next (status, headers, body) of `script`."""

    def __init__(self, script: list[tuple[int, dict[str, str], bytes] | None]) -> None:
        """`None` in the script closes the connection without an answer."""
        self.script = script
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                outer.requests.append((self.command, self.path, dict(self.headers)))
                step = outer.script.pop(0) if outer.script else (500, {}, b"{}")
                if step is None:
                    self.close_connection = True
                    self.connection.close()
                    return
                status, headers, body = step
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _answer  # noqa: N815 - http.server's names
            do_POST = _answer  # noqa: N815

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def scripted() -> Iterator[type[Scripted]]:
    made: list[Scripted] = []

    class Tracked(Scripted):
        def __init__(self, script: list[tuple[int, dict[str, str], bytes] | None]) -> None:
            super().__init__(script)
            made.append(self)

    yield Tracked
    for server in made:
        server.close()


def busy(retry_after: str = "0") -> tuple[int, dict[str, str], bytes]:
    body = json.dumps({"status": 503, "error": "unavailable", "detail": "queue full"}).encode()
    return 503, {"Retry-After": retry_after}, body


def envelope() -> object:
    return sign_envelope(INTOTO_PAYLOAD_TYPE, STATEMENT, [SIGNER])


def test_a_busy_service_is_tried_again_honouring_retry_after(scripted: type[Scripted]) -> None:
    server = scripted([busy("1"), busy("0"), (201, {}, json.dumps(RECEIPT).encode())])
    started = time.monotonic()
    with LedgerClient(server.url, "t", retries=3) as client:
        appended = client.append_envelopes([envelope()], "key-1")  # type: ignore[list-item]
    assert time.monotonic() - started >= 1.0  # the first Retry-After was honoured
    assert appended.receipts == [RECEIPT]
    assert not appended.already_recorded
    assert len(server.requests) == 3
    assert all(headers.get("Idempotency-Key") == "key-1" for _, _, headers in server.requests)


def test_a_service_busy_beyond_the_retries_is_unavailable(scripted: type[Scripted]) -> None:
    server = scripted([busy(), busy(), busy()])
    with LedgerClient(server.url, "t", retries=2) as client, pytest.raises(UnavailableError, match="503"):
        client.get("/v1/checkpoint")
    assert len(server.requests) == 3


def test_a_200_answer_to_an_append_is_already_recorded(scripted: type[Scripted]) -> None:
    server = scripted([(200, {}, json.dumps(RECEIPT).encode())])
    with LedgerClient(server.url, "t") as client:
        appended = client.append_envelopes([envelope()])  # type: ignore[list-item]
    assert appended.already_recorded


def test_a_reused_idempotency_key_says_how_to_choose_another(scripted: type[Scripted]) -> None:
    detail = "Idempotency-Key 'k' was used before with another body"
    server = scripted(
        [(409, {}, json.dumps({"status": 409, "error": "conflict", "detail": detail}).encode())]
    )
    with LedgerClient(server.url, "t") as client, pytest.raises(ConflictError) as caught:
        client.append_envelopes([envelope()], "k")  # type: ignore[list-item]
    assert any("--idempotency-key" in note for note in caught.value.__notes__)


def test_a_gate_request_whose_connection_broke_is_not_sent_again(scripted: type[Scripted]) -> None:
    """A POST that may have reached the service (a gate decision is appended) is never repeated."""
    server = scripted([None, (201, {}, b"{}")])
    with LedgerClient(server.url, "t", retries=3) as client, pytest.raises(UnavailableError):
        client.post_json("/v1/gates/evaluate", {"product": "p"})
    assert len(server.requests) == 1


def test_cli_exits_3_when_the_service_stays_unavailable(scripted: type[Scripted]) -> None:
    server = scripted([busy(), busy()])
    result = CliRunner().invoke(
        app, ["timeline", "p", "1.0", "--server", server.url, "--token", "t"], env={"EVLEDGER_RETRIES": "1"}
    )
    assert result.exit_code == 3, result.output
    assert len(server.requests) == 2


def test_cli_says_already_recorded_for_a_retried_submit(scripted: type[Scripted], tmp_path: Path) -> None:
    server = scripted([(200, {}, json.dumps(RECEIPT).encode())])
    statement, key = tmp_path / "s.json", tmp_path / "k.key"
    statement.write_bytes(STATEMENT)
    key.write_text(SIGNER.format() + "\n")
    result = CliRunner().invoke(
        app, ["submit", str(statement), "--key", str(key), "--server", server.url, "--token", "t"]
    )
    assert result.exit_code == 0, result.output
    assert "already recorded as entry 7" in result.output


def test_a_bad_retries_setting_is_a_usage_error() -> None:
    result = CliRunner().invoke(
        app,
        ["timeline", "p", "1.0", "--server", "http://127.0.0.1:9", "--token", "t"],
        env={"EVLEDGER_RETRIES": "x"},
    )
    assert result.exit_code == 2, result.output
    assert "EVLEDGER_RETRIES" in result.output
