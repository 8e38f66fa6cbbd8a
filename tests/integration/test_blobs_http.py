"""`PUT` and `GET /v1/blobs/sha256:<hex>` against a live server (issue #14): evidence files over HTTP.

The server runs with a body budget of 1 MiB and files of up to 16 MiB, so an upload larger than
the budget passes only because the guard charges a streamed body a message at a time. Every
test runs twice: with the files kept in PostgreSQL, and in a SeaweedFS bucket (s3_support.py).
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from ledger_harness import Ledger, live_server, token
from s3_support import CREDENTIALS, S3Server, new_bucket
from service_support import bearer, scratch_ledger

MIB = 1 << 20
LIMIT = 16 * MIB
PAUSE = 2.0  # seconds a streamed body may go without a byte (EVLEDGER_BODY_TIMEOUT)


@dataclass
class Server:
    url: str
    ledger: Ledger
    appender: str  # scoped to "analyzer"
    other_appender: str  # scoped to "reader"
    admin: str
    auditor: str
    analyzer_reader: str  # an auditor scoped to "analyzer"
    reader_reader: str  # an auditor scoped to "reader"

    def put(
        self, data: bytes, *, credential: str | None = None, product: str = "analyzer", name: str = ""
    ) -> httpx.Response:
        name = name or f"sha256:{hashlib.sha256(data).hexdigest()}"
        headers = bearer(credential or self.appender)
        return httpx.put(
            f"{self.url}/v1/blobs/{name}",
            params={"product": product},
            content=data,
            headers=headers,
            timeout=60,
        )

    def get(self, name: str, credential: str | None = None) -> httpx.Response:
        return httpx.get(
            f"{self.url}/v1/blobs/{name}", headers=bearer(credential or self.auditor), timeout=60
        )


@pytest.fixture(scope="module", params=["postgres", "s3"])
def server(
    request: pytest.FixtureRequest, pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("blobs_http")) as ledger:
        env = {
            "EVLEDGER_BODY_BUDGET": str(MIB),
            "EVLEDGER_MAX_BLOB": str(LIMIT),
            "EVLEDGER_BODY_TIMEOUT": str(PAUSE),
            "EVLEDGER_MAX_UPLOADS": "1",  # one upload at a time: the next is refused while it runs
        }
        if request.param == "s3":  # the same tests with the files' bytes in a bucket
            s3: S3Server = request.getfixturevalue("s3_server")
            env |= {"EVLEDGER_BLOB_STORE": s3.url(new_bucket(s3, "http")), **CREDENTIALS}
        with live_server(ledger, env=env) as url:
            dsn = ledger.dsn
            yield Server(
                url,
                ledger,
                token(dsn, "appender", ["analyzer"]),
                token(dsn, "appender", ["reader"]),
                token(dsn, "admin"),
                token(dsn, "auditor"),
                token(dsn, "auditor", ["analyzer"]),
                token(dsn, "auditor", ["reader"]),
            )


def chunks(data: bytes, size: int = 64 * 1024) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_a_file_larger_than_the_body_budget_streams_in_and_out(server: Server) -> None:
    data = os.urandom(3 * MIB + 17)
    name = f"sha256:{hashlib.sha256(data).hexdigest()}"
    response = httpx.put(
        f"{server.url}/v1/blobs/{name}", params={"product": "analyzer"}, content=chunks(data),
        headers=bearer(server.appender), timeout=60,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    assert response.json() == {"digest": name, "size": len(data), "created": True}
    fetched = server.get(name)
    assert fetched.status_code == 200, fetched.text
    assert fetched.content == data
    assert fetched.headers["content-type"] == "application/octet-stream"
    assert fetched.headers["etag"] == f'"{name}"'
    assert int(fetched.headers["content-length"]) == len(data)


def test_a_file_past_the_frameworks_default_body_limit_goes_through(server: Server) -> None:
    # Litestar refuses bodies over 10 MB unless a route says otherwise; the blob route's limit is its own.
    data = os.urandom(11 * MIB + 5)  # also an S3 multipart upload: over one 8 MiB part
    name = f"sha256:{hashlib.sha256(data).hexdigest()}"
    response = httpx.put(
        f"{server.url}/v1/blobs/{name}", params={"product": "analyzer"}, content=chunks(data, MIB),
        headers=bearer(server.appender), timeout=120,
    )  # fmt: skip
    assert response.status_code == 201, response.text
    fetched = server.get(name)
    assert fetched.status_code == 200, fetched.text
    assert hashlib.sha256(fetched.content).hexdigest() == name.removeprefix("sha256:")


def test_an_upload_again_is_200_and_stores_nothing_new(server: Server) -> None:
    data = os.urandom(4000)
    assert server.put(data).status_code == 201
    again = server.put(data)
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False


def test_bytes_that_do_not_hash_to_the_path_are_refused_and_not_stored(server: Server) -> None:
    data = os.urandom(5000)
    name = f"sha256:{hashlib.sha256(data + b'x').hexdigest()}"
    response = server.put(data, name=name)
    assert response.status_code == 400, response.text
    assert "nothing was stored" in response.json()["detail"]
    assert server.get(name).status_code == 404


def test_a_file_over_the_limit_is_413_declared_or_streamed(server: Server) -> None:
    data = os.urandom(LIMIT + 1)
    name = f"sha256:{hashlib.sha256(data).hexdigest()}"
    declared = server.put(data)  # Content-Length says it: refused before a byte is read
    assert declared.status_code == 413, declared.text
    streamed = httpx.put(
        f"{server.url}/v1/blobs/{name}", params={"product": "analyzer"}, content=chunks(data),
        headers=bearer(server.appender), timeout=60,
    )  # fmt: skip
    assert streamed.status_code == 413, streamed.text
    assert server.get(name).status_code == 404


def test_an_upload_that_stalls_is_cut_and_stores_nothing(server: Server) -> None:
    data = os.urandom(256 * 1024)
    name = f"sha256:{hashlib.sha256(data).hexdigest()}"

    def stalling() -> Iterator[bytes]:
        yield data[:65536]
        time.sleep(PAUSE + 2)
        yield data[65536:]

    try:
        response = httpx.put(
            f"{server.url}/v1/blobs/{name}", params={"product": "analyzer"}, content=stalling(),
            headers=bearer(server.appender), timeout=30,
        )  # fmt: skip
    except httpx.TransportError:
        pass  # the server answered 408 and closed while the client was still sending
    else:
        assert response.status_code == 408, response.text
        assert "may pause at most" in response.json()["detail"]
    assert server.get(name).status_code == 404
    assert server.put(data).status_code == 201  # the budget it held was given back


def test_an_upload_past_the_worker_s_limit_is_503_at_once_and_goes_through_after(server: Server) -> None:
    slow = os.urandom(4 * 64 * 1024)
    started = threading.Event()

    def trickle() -> Iterator[bytes]:
        for start in range(0, len(slow), 64 * 1024):
            yield slow[start : start + 64 * 1024]
            started.set()
            time.sleep(0.6)

    answers: list[httpx.Response] = []
    uploading = threading.Thread(
        target=lambda: answers.append(
            httpx.put(
                f"{server.url}/v1/blobs/sha256:{hashlib.sha256(slow).hexdigest()}",
                params={"product": "analyzer"},
                content=trickle(),
                headers=bearer(server.appender),
                timeout=60,
            )
        )
    )
    uploading.start()
    assert started.wait(10)
    time.sleep(0.2)
    other = os.urandom(1000)
    refused = server.put(other)
    uploading.join(30)
    assert refused.status_code == 503, refused.text
    assert refused.headers["retry-after"] == "2"
    assert "EVLEDGER_MAX_UPLOADS" in refused.json()["detail"]
    assert answers[0].status_code == 201, answers[0].text
    assert server.put(other).status_code == 201  # the slot was given back


@pytest.mark.parametrize(
    "name", ["sha256:abc", "sha512:" + "0" * 128, "sha256:" + "g" * 64, "sha256:" + "0" * 65, "ledger.pub"]
)
def test_a_malformed_name_is_400(server: Server, name: str) -> None:
    assert server.put(b"data", name=name).status_code == 400
    assert server.get(name).status_code == 400


def test_uploads_need_an_appender_for_the_product(server: Server) -> None:
    data = os.urandom(100)
    assert server.put(data, credential="not-a-token").status_code == 401
    assert server.put(data, credential=server.auditor).status_code == 403  # a reader's role
    assert server.put(data, credential=server.other_appender).status_code == 403  # another product
    missing = httpx.put(
        f"{server.url}/v1/blobs/sha256:{hashlib.sha256(data).hexdigest()}", content=data,
        headers=bearer(server.appender), timeout=30,
    )  # fmt: skip
    assert missing.status_code == 400  # no product named
    assert server.put(data, credential=server.admin, product="any-product").status_code == 201


def test_a_scoped_reader_sees_only_its_products_files(server: Server) -> None:
    data = os.urandom(300)
    name = f"sha256:{hashlib.sha256(data).hexdigest()}"
    assert server.put(data).status_code == 201  # for "analyzer"
    assert server.get(name, server.analyzer_reader).status_code == 200
    assert server.get(name, server.auditor).status_code == 200  # unscoped
    hidden = server.get(name, server.reader_reader)
    assert hidden.status_code == 404  # as if it did not exist
    assert server.get(name, "not-a-token").status_code == 401
    # The other product's appender must send the bytes to list the file for its product too.
    guessed = httpx.put(
        f"{server.url}/v1/blobs/{name}", params={"product": "reader"}, content=b"not the file",
        headers=bearer(server.other_appender), timeout=30,
    )  # fmt: skip
    assert guessed.status_code == 400
    assert server.get(name, server.reader_reader).status_code == 404
    assert server.put(data, credential=server.other_appender, product="reader").status_code == 200
    assert server.get(name, server.reader_reader).content == data


def test_the_routes_are_in_the_openapi_document(server: Server) -> None:
    document = httpx.get(f"{server.url}/schema/openapi.json", timeout=30).json()
    path = document["paths"]["/v1/blobs/{digest}"]
    body = path["put"]["requestBody"]["content"]["application/octet-stream"]["schema"]
    assert body == {"type": "string", "format": "binary"}
    assert {"200", "201", "400", "401", "403", "408", "413", "503"} <= set(path["put"]["responses"])
    assert {"200", "400", "401", "404"} <= set(path["get"]["responses"])
    assert [p["name"] for p in path["put"]["parameters"] if p["in"] == "query"] == ["product"]
