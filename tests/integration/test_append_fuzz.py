"""Signed statements of arbitrary content, appended over HTTP: admission alone decides.

Every envelope here carries a valid signature by a registered key, so nothing but its
content can be refused. The property: each append is a 201 or a 422 from admission,
never a 5xx, and never the database refusing what admission let through (the
sequencer's UnstorableError): admission must know every limit of the storage.
Afterwards the stored log is a whole chain.
"""

from __future__ import annotations

import base64
import itertools
import random
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger_harness import Ledger, register, token
from litestar.testing import TestClient
from service_support import bearer, check_error, scratch_ledger, service, written

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.entry import verify_chain
from ledger.core.keys import SignerKey
from ledger.records.statement import STATEMENT_TYPE_V1

KEY = SignerKey.generate("fuzz.test/ci")
UNSTORABLE = "database cannot store"
_numbers = itertools.count()


def _random_text(low: int, high: int) -> st.SearchStrategy[str]:
    """Random text of 200 to 1,200 code points in [low, high], from a drawn seed.

    Hypothesis's own long text repeats characters, and PostgreSQL compresses such a value
    until it fits an index row; random text does not compress, so it reaches the limits.
    """

    def text(seed: int, size: int) -> str:
        rng = random.Random(seed)  # noqa: S311 - test data, not a secret
        points = (rng.randint(low, high) for _ in range(2 * size))
        return "".join(chr(p) for p in points if not 0xD800 <= p <= 0xDFFF)[:size]

    return st.builds(text, st.integers(0, 2**32), st.integers(200, 1200))


# Short text of any kind (control characters and U+0000 included; surrogates cannot be encoded),
# and long random text. One field of a statement is wild at a time, so that a refusal for one
# limit never hides what another field would have done.
_wild = (
    st.text(max_size=40)
    | st.text(st.characters(max_codepoint=0x1F), min_size=1, max_size=8)  # C0 controls, U+0000 too
    | _random_text(0x20, 0x7E)  # printable ASCII
    | _random_text(0x1, 0xFFFF)  # the BMP from U+0001, control characters included
    | _random_text(0x10000, 0x10FFFF)  # 4 UTF-8 bytes each, up to 4.8 kB
)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | _wild,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=12,
)
FIELDS = ("product", "version", "predicateType", "digest algorithm", "digest value", "predicate")


@st.composite
def statements(draw: st.DrawFn) -> dict[str, Any]:
    """An in-toto Statement v1, valid but for one field drawn at random from FIELDS."""
    n = next(_numbers)
    field = draw(st.sampled_from(FIELDS))
    wild: Any = draw(_json if field == "predicate" else _wild)
    value = {name: wild if name == field else None for name in FIELDS}
    return {
        "_type": STATEMENT_TYPE_V1,
        "subject": [
            {
                "name": f"fuzz-{n}",
                "digest": {
                    value["digest algorithm"] or "sha256": value["digest value"] or f"{n:064x}",
                },
            }
        ],
        "predicateType": value["predicateType"] if field == "predicateType" else "https://fuzz.test/v1",
        "predicate": {
            "release": {"product": value["product"] or "prod", "version": value["version"] or "1.0"},
            "content": value["predicate"],
        },
    }


class Client:
    """The in-process service, its tokens, and the status of every fuzzed append."""

    def __init__(self, client: TestClient, admin: str, appender: str) -> None:  # type: ignore[type-arg]
        self.client, self.admin, self.appender = client, admin, appender
        self.statuses: list[int] = []


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("fuzz")) as ledger:
        yield ledger


@pytest.fixture(scope="module")
def client(ledger: Ledger) -> Iterator[Client]:
    with service(ledger) as http:
        fuzz = Client(http, token(ledger.dsn, "admin"), token(ledger.dsn, "appender"))
        registration = register(ledger.signer, KEY, ["appender"])
        response = http.post(
            "/v1/entries", content=msgspec.json.encode(registration), headers=bearer(fuzz.admin)
        )
        assert response.status_code == 201, response.text
        yield fuzz


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(statement=statements())
def test_a_signed_statement_is_appended_or_refused_by_admission_never_by_the_database(
    client: Client, statement: dict[str, Any]
) -> None:
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(statement), [KEY])
    response = client.client.post(
        "/v1/entries", content=msgspec.json.encode(envelope), headers=bearer(client.appender)
    )
    client.statuses.append(response.status_code)
    # Either outcome is right for arbitrary content; each must be complete of its kind.
    if response.status_code == 201:
        assert set(response.json()) == {"index", "leaf_hash", "time", "checkpoint", "inclusion_proof"}
    else:
        check_error(response, 422)
    assert UNSTORABLE not in response.text


def test_the_fuzzed_log_is_one_unbroken_chain_with_both_outcomes(client: Client, ledger: Ledger) -> None:
    assert {201, 422} <= set(client.statuses), client.statuses  # the strategy reaches both sides
    size = written(ledger.dsn)[0]
    entries = client.client.get(f"/v1/entries?start=0&limit={size}", headers=bearer(client.admin)).json()
    assert len(entries["entries"]) == size
    verify_chain([base64.b64decode(e["entry"]) for e in entries["entries"]])
