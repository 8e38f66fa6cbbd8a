"""Entry bundles gzip-compressed when the client takes gzip (C2SP tlog-tiles: SHOULD), identity otherwise.

One live server (`evledger serve`) on a ledger of 302 entries: bundle 0 is full, bundle 1
a partial one of 46. Hash tiles are hashes and stay uncompressed; the cache headers stay
as they were, and every entry bundle answer says `Vary: Accept-Encoding`.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from audit_support import ServedLedger, fill_ledger, new_ledger, run_cli, scratch_database, serving

from ledger.core.tiles import TILE_WIDTH, decode_entry_bundle
from ledger.service.routes_tiles import accepts_gzip

FULL_BUNDLE = "/tile/entries/000"
PARTIAL_BUNDLE = "/tile/entries/001.p/46"
HASH_TILE = "/tile/0/000"
IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture(scope="module")
def served(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedLedger]:
    directory = tmp_path_factory.mktemp("tile-compression")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = new_ledger(dsn, directory / "keys")
        with serving(ledger) as url:
            yield fill_ledger(ledger, url, [150, 150], directory)


@dataclass(frozen=True)
class Raw:
    """An answer as it came over the wire: the body not decoded."""

    status_code: int
    headers: httpx.Headers
    content: bytes


def raw_get(served: ServedLedger, path: str, accept_encoding: str | None) -> Raw:
    """GET `path` with exactly this Accept-Encoding (none when None)."""
    with httpx.Client(base_url=served.url, timeout=30) as client:
        request = client.build_request("GET", path, headers={"Authorization": f"Bearer {served.auditor}"})
        del request.headers["accept-encoding"]
        if accept_encoding is not None:
            request.headers["accept-encoding"] = accept_encoding
        response = client.send(request, stream=True)
        try:
            return Raw(response.status_code, response.headers, b"".join(response.iter_raw()))
        finally:
            response.close()


def body(response: Raw) -> bytes:
    return response.content


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, False),
        ("", False),
        ("identity", False),
        ("gzip", True),
        ("GZIP", True),
        ("x-gzip", True),
        ("gzip, deflate, br", True),
        ("deflate;q=1, gzip;q=0.5", True),
        ("gzip;q=0", False),
        ("gzip; q=0.000", False),
        ("gzip;q=0, *", False),  # the named coding's weight decides, not the wildcard's
        ("*", True),
        ("*;q=0", False),
        ("br, *;q=0.1", True),
        ("identity, *;q=0", False),
        ("gzip;q=nonsense", False),
        ("br, deflate", False),
    ],
)
def test_accept_encoding_is_parsed_with_its_weights(header: str | None, expected: bool) -> None:
    assert accepts_gzip(header) is expected


@pytest.mark.parametrize("path", [FULL_BUNDLE, PARTIAL_BUNDLE])
def test_a_bundle_is_gzip_when_asked_and_the_same_bytes_decompressed(served: ServedLedger, path: str) -> None:
    identity = raw_get(served, path, None)
    compressed = raw_get(served, path, "gzip")
    assert identity.status_code == compressed.status_code == 200
    assert "content-encoding" not in identity.headers
    assert compressed.headers["content-encoding"] == "gzip"
    for response in (identity, compressed):
        assert response.headers["vary"] == "Accept-Encoding"
        assert response.headers["content-type"] == "application/octet-stream"
        assert int(response.headers["content-length"]) == len(body(response))
    assert gzip.decompress(body(compressed)) == body(identity)
    expected = TILE_WIDTH if path == FULL_BUNDLE else 46
    assert len(decode_entry_bundle(body(identity))) == expected
    cache = IMMUTABLE if path == FULL_BUNDLE else "no-cache"
    assert identity.headers["cache-control"] == compressed.headers["cache-control"] == cache


@pytest.mark.parametrize("header", ["identity", "gzip;q=0", "*;q=0", "deflate, br"])
def test_a_bundle_is_identity_when_gzip_is_refused_or_not_named(served: ServedLedger, header: str) -> None:
    response = raw_get(served, FULL_BUNDLE, header)
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert response.headers["vary"] == "Accept-Encoding"
    assert len(decode_entry_bundle(body(response))) == TILE_WIDTH


@pytest.mark.parametrize("header", ["*", "br;q=1, gzip;q=0.2", "x-gzip"])
def test_a_bundle_is_gzip_for_a_wildcard_or_a_low_weight(served: ServedLedger, header: str) -> None:
    response = raw_get(served, FULL_BUNDLE, header)
    assert response.headers["content-encoding"] == "gzip"
    assert len(decode_entry_bundle(gzip.decompress(body(response)))) == TILE_WIDTH


def test_the_same_bundle_compresses_to_the_same_bytes(served: ServedLedger) -> None:
    assert body(raw_get(served, FULL_BUNDLE, "gzip")) == body(raw_get(served, FULL_BUNDLE, "gzip"))


def test_hash_tiles_are_never_compressed(served: ServedLedger) -> None:
    response = raw_get(served, HASH_TILE, "gzip")
    assert response.status_code == 200
    assert "content-encoding" not in response.headers
    assert "vary" not in response.headers
    assert response.headers["cache-control"] == IMMUTABLE
    assert len(body(response)) == TILE_WIDTH * 32


def test_a_full_bundle_compresses_well(served: ServedLedger) -> None:
    identity = body(raw_get(served, FULL_BUNDLE, None))
    compressed = body(raw_get(served, FULL_BUNDLE, "gzip"))
    ratio = len(identity) / len(compressed)
    print(f"entry bundle 0: {len(identity)} bytes, {len(compressed)} gzip, ratio {ratio:.2f}")  # noqa: T201
    assert ratio > 2  # JSON envelopes with base64 payloads; 4x or more measured


def test_verify_log_over_http_still_passes(served: ServedLedger) -> None:
    """httpx (the CLI's client) asks for gzip and decompresses transparently."""
    code, output = run_cli(
        "verify-log", "--server", served.url, "--token", served.auditor, "--key", served.ledger.pub_path
    )
    assert code == 0, output
    assert "302 entries, 302 signatures checked" in output
