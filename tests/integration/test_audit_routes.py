"""Where an auditor starts (issue #12): the releases, keys and policies listings, and search by owner."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import msgspec
import pytest
from ledger_harness import Ledger, evidence, register, revoke, to_json, token
from litestar.testing import TestClient
from service_support import bearer, check_error, scratch_ledger, service

from cli.demo import POLICY_FILE
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.query import audit_lists
from ledger.records import predicates as p
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml, policy_digest
from ledger.storage import entry_queries

# (product, version, entries on its chain); "app 1.0" and "tool 0.1" are sealed.
RELEASES = [("app", "1.0", 2), ("app", "2.0", 1), ("app", "1.5", 3), ("tool", "0.1", 1), ("zeta", "9", 1)]
SEALED = {("app", "1.0"), ("tool", "0.1")}


@dataclass
class World:
    client: TestClient  # type: ignore[type-arg]
    ledger: Ledger
    admin: dict[str, str]
    auditor: dict[str, str]
    keys: dict[str, SignerKey]
    at: dict[str, int] = field(default_factory=dict)

    def post(self, name: str, body: bytes) -> dict[str, Any]:
        response = self.client.post("/v1/entries", content=body, headers=self.admin)
        assert response.status_code == 201, response.text
        receipt: dict[str, Any] = response.json()
        self.at[name] = receipt["index"]
        return receipt

    def get(self, path: str, **params: object) -> Any:
        response = self.client.get(path, params=params, headers=self.auditor)
        assert response.status_code == 200, response.text
        return response.json()


def seal(world: World, product: str, version: str) -> None:
    timeline = world.get(f"/v1/releases/{product}/{version}/timeline")
    body = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "release", "digest": {"sha256": "5e" * 32}}],
        "predicateType": p.RELEASE_SEAL,
        "predicate": msgspec.to_builtins(
            p.Seal(p.Release(product, version), timeline["count"], timeline["head"]["leaf_hash"])
        ),
    }
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, msgspec.json.encode(body), [world.keys["pipeline"]])
    world.post(f"seal {product} {version}", to_json(envelope))


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("audit")) as ledger, service(ledger) as client:
        admin = bearer(token(ledger.dsn, "admin"))
        keys = {
            name: SignerKey.generate(f"keys.test/{name}") for name in ("pipeline", "tester", "old-pipeline")
        }
        w = World(client, ledger, admin, bearer(token(ledger.dsn, "auditor")), keys)
        w.post("register pipeline", to_json(register(ledger.signer, keys["pipeline"], ["release-manager"])))
        w.post("register tester", to_json(register(ledger.signer, keys["tester"], ["tester"], ["app"])))
        w.post("register old", to_json(register(ledger.signer, keys["old-pipeline"], ["appender"])))
        n = 0
        for product, version, count in RELEASES:
            for _ in range(count):
                n += 1
                signer = (
                    keys["old-pipeline"] if n == 1 else keys["tester" if product == "app" else "pipeline"]
                )
                w.post(
                    f"{product} {version} #{n}",
                    to_json(evidence(signer, product=product, version=version, n=n)),
                )
        w.post("revoke old", to_json(revoke(ledger.signer, keys["old-pipeline"].keyid, "laptop stolen")))
        for product, version in sorted(SEALED):
            seal(w, product, version)
        policy = load_policy_toml(POLICY_FILE.read_text(encoding="utf-8"))
        newer = msgspec.structs.replace(policy, version=policy.version + ".1")
        for name, published in (("policy 1", policy), ("policy 2", newer)):
            envelope = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_policy_record(published), [ledger.signer])
            w.post(name, to_json(envelope))
        yield w


def all_releases(world: World, **params: object) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):
        page = world.get("/v1/releases", **params, **({"cursor": cursor} if cursor else {}))
        found += page["releases"]
        cursor = page["next_cursor"]
        if cursor is None:
            return found
    raise AssertionError("the listing never ended")


def test_releases_are_listed_by_product_and_version_with_their_chains(world: World) -> None:
    listed = world.get("/v1/releases")
    assert listed["next_cursor"] is None
    names = [(r["product"], r["version"]) for r in listed["releases"]]
    assert names == sorted((prod, ver) for prod, ver, _ in RELEASES)
    by_name = {(r["product"], r["version"]): r for r in listed["releases"]}
    for product, version, count in RELEASES:
        row = by_name[product, version]
        timeline = world.get(f"/v1/releases/{product}/{version}/timeline")
        assert row["events"] == timeline["count"] == count + ((product, version) in SEALED)
        chain = [e for e in timeline["events"] if e["release_seq"] is not None]
        assert (row["first_index"], row["first_time"]) == (chain[0]["index"], chain[0]["time"])
        assert (row["last_index"], row["last_time"]) == (chain[-1]["index"], chain[-1]["time"])
        sealed = world.at.get(f"seal {product} {version}")
        assert row["sealed_at"] == sealed
        assert timeline["sealed"] == (sealed is not None)


def test_releases_filter_by_product_and_state_and_page(world: World) -> None:
    assert [r["version"] for r in world.get("/v1/releases", product="app")["releases"]] == [
        "1.0",
        "1.5",
        "2.0",
    ]
    assert world.get("/v1/releases", product="nothing") == {"releases": [], "next_cursor": None}
    sealed = [(r["product"], r["version"]) for r in world.get("/v1/releases", state="sealed")["releases"]]
    assert sealed == sorted(SEALED)
    open_ = [(r["product"], r["version"]) for r in all_releases(world, state="open", limit=1)]
    assert open_ == sorted({(prod, ver) for prod, ver, _ in RELEASES} - SEALED)
    paged = all_releases(world, limit=2)
    assert paged == world.get("/v1/releases")["releases"]
    app_paged = all_releases(world, product="app", limit=1)
    assert [r["version"] for r in app_paged] == ["1.0", "1.5", "2.0"]
    first = world.get("/v1/releases", limit=2)
    assert first["next_cursor"] == audit_lists.encode_release_cursor("app", "1.5")


@pytest.mark.parametrize(
    "params",
    [
        {"limit": "0"},
        {"limit": "1001"},
        {"limit": "ten"},
        {"state": "closed"},
        {"cursor": "not base64!"},
        {"cursor": audit_lists.encode_release_cursor("a", "b")[:-2] + "%%"},
        {"cursor": "W10"},  # []
        {"cursor": "x" * 5000},
        {"cursor": audit_lists.encode_release_cursor("a\x00", "b")},
        {"cursor": "WyJcdWQ4MDAiLCJ4Il0"},  # ["\ud800","x"]: a lone surrogate
        {"product": "a\x00b"},
    ],
)
def test_bad_release_listing_parameters_are_400(world: World, params: dict[str, str]) -> None:
    check_error(world.client.get("/v1/releases", params=params, headers=world.auditor), 400)


@pytest.mark.parametrize("path", ["/v1/releases", "/v1/keys", "/v1/policies", "/v1/search?signer_owner=x"])
def test_audit_routes_need_a_token(world: World, path: str) -> None:
    check_error(world.client.get(path), 401)


def test_keys_list_every_key_with_its_history(world: World) -> None:
    keys = world.get("/v1/keys")["keys"]
    by_id = {k["keyid"]: k for k in keys}
    assert [k["registered_at"]["index"] for k in keys] == sorted(k["registered_at"]["index"] for k in keys)
    ledger_key = keys[0]
    assert ledger_key["registered_at"]["index"] == 0
    assert ledger_key["keyid"] == world.ledger.signer.keyid
    assert "admin" in ledger_key["roles"]
    tester = by_id[world.keys["tester"].keyid]
    assert tester["owner"] == "owner of keys.test/tester"
    assert (tester["roles"], tester["products"], tester["revoked_at"]) == (["tester"], ["app"], None)
    assert tester["registered_at"]["index"] == world.at["register tester"]
    entry = world.get("/v1/search", kind="key.registered", cursor=world.at["register tester"], limit=1)
    assert tester["registered_at"]["time"] == entry["events"][0]["time"]
    old = by_id[world.keys["old-pipeline"].keyid]
    assert old["revoked_at"]["index"] == world.at["revoke old"]
    assert old["revoked_at"]["reason"] == "laptop stolen"
    assert old["revoked_at"]["time"] >= old["registered_at"]["time"]


def test_policies_list_every_publication_and_the_one_in_force(world: World) -> None:
    policies = world.get("/v1/policies")["policies"]
    assert [q["index"] for q in policies] == [world.at["policy 1"], world.at["policy 2"]]
    assert [q["in_force"] for q in policies] == [False, True]
    policy = load_policy_toml(POLICY_FILE.read_text(encoding="utf-8"))
    assert (policies[0]["name"], policies[0]["version"]) == (policy.name, policy.version)
    assert policies[0]["digest"] == policy_digest(policy)
    assert policies[1]["version"] == policy.version + ".1"
    assert policies[0]["digest"] != policies[1]["digest"]


def test_search_by_signer_owner_covers_every_key_of_the_owner(world: World) -> None:
    old = world.keys["old-pipeline"].keyid
    owner = "owner of keys.test/old-pipeline"
    by_owner = world.get("/v1/search", signer_owner=owner)
    by_key = world.get("/v1/search", signer=old)
    assert by_owner == by_key
    assert [e["signer"]["keyid"] for e in by_owner["events"]] == [old]
    tester = world.get(
        "/v1/search", signer_owner="owner of keys.test/tester", kind="https://evledger.test/generic/v1"
    )
    assert [e["signer"]["owner"] for e in tester["events"]] == ["owner of keys.test/tester"] * 5
    assert world.get("/v1/search", signer_owner="nobody") == {"events": [], "next_cursor": None}
    paged, cursor = [], None
    for _ in range(10):
        page = world.get(
            "/v1/search",
            signer_owner="owner of keys.test/tester",
            limit=2,
            **({"cursor": cursor} if cursor else {}),
        )
        paged += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [e["index"] for e in paged] == [e["index"] for e in tester["events"]]


def test_search_by_owner_merges_keys_and_refuses_bad_filters(world: World) -> None:
    for params in ({"signer_owner": "nobody", "kind": "nonsense"}, {"signer_owner": "x", "signer": "y"}):
        check_error(world.client.get("/v1/search", params=params, headers=world.auditor), 400)


def test_the_release_listing_is_an_index_scan(world: World) -> None:
    async def plans() -> list[str]:
        conn = await asyncpg.connect(world.ledger.dsn)
        try:
            found = []
            for product, after, args in (
                (False, False, [10]),
                (True, False, [10, "app"]),
                (False, True, [10, "app", "1.0"]),
                (True, True, [10, "app", "1.0", "app"]),
            ):
                await conn.execute("SET enable_seqscan = off")  # a tiny table: ask whether an index serves
                sql = entry_queries.release_list_sql(product=product, after=after)
                rows = await conn.fetch(f"EXPLAIN {sql}", *args)
                found.append("\n".join(r[0] for r in rows))
            return found
        finally:
            await conn.close()

    for plan in asyncio.run(plans()):
        assert "Seq Scan" not in plan, plan
        assert "Index Scan Backward using entries_release_seq" in plan, plan  # each release's newest entry
        # The one sort is the page's own rows (at most $1), in the order the skip scan found them.
        assert plan.count("Sort Key") == 1, plan
        assert plan.startswith("Sort"), plan


def test_keys_and_policies_are_the_same_on_a_second_worker(world: World) -> None:
    with service(world.ledger) as other:
        for path in ("/v1/keys", "/v1/policies", "/v1/releases"):
            assert other.get(path, headers=world.auditor).json() == world.get(path)


def test_search_by_owner_pages_through_several_keys_in_index_order(
    pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """An owner with two keys (one revoked): one search over both, interleaved, a page at a time."""
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("owner")) as ledger, service(ledger) as client:
        admin, auditor = bearer(token(ledger.dsn, "admin")), bearer(token(ledger.dsn, "auditor"))
        first, second = (SignerKey.generate("keys.test/qa") for _ in range(2))
        other = SignerKey.generate("keys.test/someone-else")

        def post(envelope: Any) -> int:
            response = client.post("/v1/entries", content=to_json(envelope), headers=admin)
            assert response.status_code == 201, response.text
            index: int = response.json()["index"]
            return index

        for key in (first, second, other):
            post(register(ledger.signer, key, ["tester"]))
        signers = [first, other, second, second, other, first, second]
        indices = [post(evidence(key, product="app", version="1", n=n)) for n, key in enumerate(signers)]
        expected = [index for index, key in zip(indices, signers, strict=True) if key is not other]
        post(revoke(ledger.signer, first.keyid, "rotated"))

        def search(**params: object) -> list[int]:
            found: list[int] = []
            cursor = None
            for _ in range(20):
                query = {**params, **({"cursor": cursor} if cursor else {})}
                page = client.get("/v1/search", params=query, headers=auditor).json()
                found += [e["index"] for e in page["events"]]
                assert all(e["signer"]["owner"] == "owner of keys.test/qa" for e in page["events"])
                cursor = page["next_cursor"]
                if cursor is None:
                    return found
            raise AssertionError("the search never ended")

        assert search(signer_owner="owner of keys.test/qa") == expected
        assert search(signer_owner="owner of keys.test/qa", limit=1) == expected
        generic = "https://evledger.test/generic/v1"
        assert search(signer_owner="owner of keys.test/qa", kind=generic, product="app", limit=2) == expected
        assert search(signer_owner="owner of keys.test/qa", kind="build") == []


def test_a_search_over_several_signers_is_one_ordered_scan_per_signer() -> None:
    sql, args = entry_queries.search_sql(
        start=5, stop=None, kinds=["a", "b"], product=None, version=None, signers=["k1", "k2"], limit=3
    )
    assert sql.count("UNION ALL") == 3  # one arm per (kind, signer)
    assert sql.count("ORDER BY idx LIMIT $2") == 5  # each arm ordered and limited, then the merge
    assert args[:2] == [5, 3]
    assert sorted(str(a) for a in args[2:]) == ["a", "a", "b", "b", "k1", "k1", "k2", "k2"]
    single, _ = entry_queries.search_sql(
        start=0, stop=None, kinds=[], product=None, version=None, signers=["k1"], limit=3
    )
    assert "UNION" not in single
    assert "signer_keyid = $3" in single
