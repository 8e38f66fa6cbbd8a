"""A real RFC 3161 time-stamping authority for tests: OpenSSL's `openssl ts -reply` behind HTTP.

`LocalTsa` makes, in a temporary folder and with `openssl` commands only, a self-signed CA and a
TSA certificate it issues (extendedKeyUsage critical timeStamping, RFC 3161 section 2.3), writes an
`openssl ts` configuration, and answers RFC 3161 section 3.4 HTTP requests on 127.0.0.1 (a free
port) by running `openssl ts -reply` on each POSTed query. Every instance is a different authority
(its own keys), so a second one is an untrusted TSA for the first one's users.

`mode` makes it answer wrongly for negative tests: `wrong_imprint` signs a token for another
message (same nonce), `http_500` fails, `garbage` answers bytes that are no TimeStampResp,
`wrong_type` answers a good reply under another content type.

The fixtures `local_tsa` and `other_tsa` (session-scoped) can be imported by a conftest or a test
module.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Literal, Self

import pytest
from ci_mode import ci_requested
from rfc3161_client._rust import parse_timestamp_request

needs_openssl = pytest.mark.skipif(
    shutil.which("openssl") is None and not ci_requested(),
    reason="needs the openssl command (a CI run requires it: the tests then fail instead)",
)
"""Mark for tests of a real TSA: skipped without `openssl` on a developer's machine, never in CI."""

Mode = Literal["ok", "wrong_imprint", "http_500", "garbage", "wrong_type"]

REPLY_TYPE = "application/timestamp-reply"
QUERY_TYPE = "application/timestamp-query"

_TSA_EXTENSIONS = """\
[tsa_ext]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = critical, timeStamping
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""

_TS_CONFIG = """\
[tsa]
default_tsa = tsa_config

[tsa_config]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.pem
certs = $dir/ca.pem
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.3.6.1.4.1.99999.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def _openssl(*args: str | Path, cwd: Path) -> bytes:
    """Run one openssl command in `cwd`; its stdout, or AssertionError with its stderr."""
    done = subprocess.run(  # noqa: S603 - fixed program, arguments made here
        ["openssl", *map(str, args)],  # noqa: S607 - openssl from PATH, as a user would run it
        cwd=cwd,
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        msg = f"openssl {' '.join(map(str, args))} failed: {done.stderr.decode(errors='replace')}"
        raise AssertionError(msg)
    return done.stdout


class LocalTsa:
    """One local time-stamping authority (CA, TSA certificate, HTTP endpoint); a context manager."""

    _count: ClassVar[int] = 0

    def __init__(
        self, name: str | None = None, *, mode: Mode = "ok", ca_from: LocalTsa | None = None
    ) -> None:
        """Make the keys and certificates now; the HTTP endpoint starts in `start()` / `with`.

        With `ca_from`, the TSA certificate is issued by that authority's CA (a sibling TSA).
        """
        LocalTsa._count += 1
        self.name = name or f"Test TSA {LocalTsa._count}"
        self.mode: Mode = mode
        self.dir = Path(tempfile.mkdtemp(prefix="evledger-tsa-"))
        if ca_from is not None:
            for part in ("ca.key", "ca.pem"):
                shutil.copyfile(ca_from.dir / part, self.dir / part)
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._make_authority()
        self.ca_path = self.dir / "ca.pem"
        self.cert_path = self.dir / "tsa.pem"
        self.ca_pem: bytes = self.ca_path.read_bytes()
        self.tsa_cert_pem: bytes = self.cert_path.read_bytes()
        self.config_path = self.dir / "ts.cnf"
        self.url = ""

    def _make_authority(self) -> None:
        """A P-256 CA (self-signed) and a TSA certificate it issues, plus the `openssl ts` config."""
        d = self.dir
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        if not (d / "ca.pem").exists():
            _openssl(
                "req", "-x509", *ec, "-keyout", "ca.key", "-out", "ca.pem", "-days", "3650",
                "-subj", f"/O=evidence-ledger tests/CN={self.name} Root CA",
                "-addext", "basicConstraints=critical,CA:TRUE",
                "-addext", "keyUsage=critical,keyCertSign,cRLSign",
                cwd=d,
            )  # fmt: skip
        _openssl(
            "req", "-new", *ec, "-keyout", "tsa.key", "-out", "tsa.csr",
            "-subj", f"/O=evidence-ledger tests/CN={self.name}",
            cwd=d,
        )  # fmt: skip
        (d / "ext.cnf").write_text(_TSA_EXTENSIONS, encoding="utf-8")
        _openssl(
            "x509", "-req", "-in", "tsa.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-set_serial", str(4096 + LocalTsa._count), "-days", "365",
            "-extfile", "ext.cnf", "-extensions", "tsa_ext", "-out", "tsa.pem",
            cwd=d,
        )  # fmt: skip
        (d / "serial").write_text("01\n", encoding="ascii")
        (d / "ts.cnf").write_text(_TS_CONFIG.format(dir=d), encoding="utf-8")

    def reply(self, query: bytes) -> bytes:
        """The DER TimeStampResp `openssl ts -reply` gives for one DER TimeStampReq (serialised)."""
        if self.mode == "wrong_imprint":
            imprint = parse_timestamp_request(query).message_imprint.message
            query = query.replace(
                imprint, hashlib.new(_hash_name(len(imprint)), b"another checkpoint").digest()
            )
        with self._lock, tempfile.TemporaryDirectory(dir=self.dir) as work:
            query_file = Path(work) / "query.tsq"
            reply_file = Path(work) / "reply.tsr"
            query_file.write_bytes(query)
            _openssl(
                "ts", "-reply", "-config", self.config_path, "-queryfile", query_file, "-out", reply_file,
                cwd=self.dir,
            )  # fmt: skip
            return reply_file.read_bytes()

    def start(self) -> Self:
        """Serve on 127.0.0.1 at a free port, on a daemon thread; sets `url`."""
        tsa = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                if tsa.mode == "http_500":
                    self._answer(500, "text/plain", b"TSA out of order")
                    return
                if tsa.mode == "garbage":
                    self._answer(200, REPLY_TYPE, b"this is not a TimeStampResp")
                    return
                if self.headers.get("Content-Type") != QUERY_TYPE:
                    self._answer(415, "text/plain", b"expected application/timestamp-query")
                    return
                try:
                    reply = tsa.reply(body)
                except (AssertionError, ValueError) as exc:
                    self._answer(400, "text/plain", str(exc).encode())
                    return
                self._answer(
                    200, "application/octet-stream" if tsa.mode == "wrong_type" else REPLY_TYPE, reply
                )

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib signature
                """Keep test output quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        host, port = self._server.server_address[:2]
        self.url = f"http://{host!s}:{port}/tsa"
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"tsa-{port}", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving and remove the temporary folder."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        """Start serving."""
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        """Stop serving and clean up."""
        self.close()


def _hash_name(size: int) -> str:
    """The hashlib name of the SHA-2 digest of `size` bytes."""
    return {32: "sha256", 48: "sha384", 64: "sha512"}[size]


@pytest.fixture(scope="session")
def local_tsa() -> Iterator[LocalTsa]:
    """A running local TSA (mode `ok`), shared by the session."""
    with LocalTsa("Local Test TSA") as tsa:
        yield tsa


@pytest.fixture(scope="session")
def other_tsa() -> Iterator[LocalTsa]:
    """A second, unrelated TSA: its tokens must not verify against `local_tsa`'s certificates."""
    with LocalTsa("Other Test TSA") as tsa:
        yield tsa
