"""Files a user hands the CLI, holding bytes that are not UTF-8 or JSON nested past the recursion limit.

Each must end in the contract's exit code with a message naming the file, never
in "internal error": 2 for an input file the command reads (receipts, proofs,
keys, reports, statements, policies), 1 for what a verification reads (a
dossier, a checkpoint). No server is needed: every file is refused before any
request (the server URL points at a closed port).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.main import app
from ledger.core.keys import SignerKey

runner = CliRunner()
NOWHERE = "http://127.0.0.1:9"
DIGEST = "sha256:" + "ab" * 32
DEEP = b"[" * 5000 + b"]" * 5000


@pytest.fixture
def keys(tmp_path: Path) -> tuple[Path, Path]:
    signer = SignerKey.generate("untrusted.test/k")
    (tmp_path / "k.key").write_text(signer.format())
    (tmp_path / "k.pub").write_text(signer.verifier().format())
    return tmp_path / "k.key", tmp_path / "k.pub"


def _file(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


RECEIPT = b'{"index": 0, "leaf_hash": "MARK", "checkpoint": "c", "inclusion_proof": []}'
STATEMENT = b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"name": "MARK", "digest": {"sha256": "ab"}}], "predicateType": "https://x.test/t", "predicate": {}}'  # noqa: E501
SARIF = b'{"version": "2.1.0", "runs": [{"tool": {"driver": {"name": "MARK"}}, "results": []}]}'


def _args(case: str, path: Path, key: Path, pub: Path) -> list[str]:
    subject = ["--product", "p", "--version", "1", "--subject-name", "a", "--subject-digest", DIGEST]
    append = ["--key", str(key), "--token", "t", "--server", NOWHERE]
    return {
        "receipt": ["verify-proof", "inclusion", "--receipt", str(path), "--key", str(pub)],
        "proof file": ["verify-proof", "consistency", "--old", str(path), "--new", str(path),
                       "--proof", str(path), "--key", str(pub)],
        "key to register": ["key", "register", str(path), "--owner", "o", "--role", "appender", *append],
        "statement": ["attest", "statement", str(path), *append],
        "SARIF report": ["attest", "sarif", str(path), *subject, *append],
        "JUnit report": ["attest", "junit", str(path), *subject, "--suite", "unit", "--command", "pytest",
                         "--commit", "c0ffee", "--environment", "ci", *append],
        "policy": ["policy", "check", str(path)],
    }[case]  # fmt: skip


# (file content, what the message calls the file)
NOT_UTF8 = {
    "receipt": (RECEIPT.replace(b"MARK", b"\xff"), "receipt"),
    "key to register": (b"untrusted.test/k+\xff", "key file"),
    "statement": (STATEMENT.replace(b"MARK", b"\xc3("), "payload is not an in-toto Statement"),
    "SARIF report": (SARIF.replace(b"MARK", b"\xed\xa0\x80"), "SARIF report is not a SARIF log"),
    "policy": (b'[tiers]\nname = "\xff"\n', "policy file"),
    "JUnit report": (
        b'<testsuite><testcase name="\xff"/></testsuite>',
        "JUnit XML report is not well-formed XML",
    ),
}
NESTED = {
    "receipt": (b'{"deep": ' + DEEP + b', "index": 0}', "receipt"),
    "proof file": (b'{"deep": ' + DEEP + b', "hashes": []}', "proof file"),
    "statement": (STATEMENT.replace(b'"MARK"', DEEP), "payload is not an in-toto Statement"),
}


@pytest.mark.parametrize("case", NOT_UTF8)
def test_an_input_file_that_is_not_utf8_is_an_input_error(
    tmp_path: Path, keys: tuple[Path, Path], case: str
) -> None:
    content, named = NOT_UTF8[case]
    path = _file(tmp_path, "input", content)
    result = runner.invoke(app, _args(case, path, *keys))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert "evledger: error:" in result.output
    assert named in result.output


@pytest.mark.parametrize("case", NESTED)
def test_an_input_file_nested_past_the_recursion_limit_is_an_input_error(
    tmp_path: Path, keys: tuple[Path, Path], case: str
) -> None:
    content, named = NESTED[case]
    path = _file(tmp_path, "input", content)
    result = runner.invoke(app, _args(case, path, *keys))
    assert result.exit_code == 2, result.output
    assert "internal error" not in result.output
    assert named in result.output


@pytest.mark.parametrize(
    "content", [b'{"format": "\xff"}', b'{"format": "x", "deep": ' + DEEP + b"}"], ids=["not UTF-8", "nested"]
)
def test_a_dossier_file_that_cannot_be_read_fails_verification(
    tmp_path: Path, keys: tuple[Path, Path], content: bytes
) -> None:
    path = _file(tmp_path, "d.dossier.json", content)
    result = runner.invoke(app, ["verify", str(path), "--key", str(keys[1])])
    assert result.exit_code == 1, result.output
    assert f"verification FAILED: {path} is not an intact dossier" in result.output


class _Serves(BaseHTTPRequestHandler):
    """Answers every GET with 200 and a body that is JSON but for a byte that is not UTF-8."""

    def do_GET(self) -> None:
        body = b'{"format": "\xff"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *_: object) -> None:
        """Quiet."""


def test_a_dossier_the_server_sends_that_is_not_json_fails_verification(tmp_path: Path) -> None:
    server = HTTPServer(("127.0.0.1", 0), _Serves)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_port}"
        out = tmp_path / "d.dossier.json"
        result = runner.invoke(app, ["dossier", "p", "1", "-o", str(out), "--server", url, "--token", "t"])
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1, result.output
    assert "verification FAILED: the server's dossier is malformed" in result.output
    assert not out.exists()
