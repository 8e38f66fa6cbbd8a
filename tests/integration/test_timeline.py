"""Release reconstruction over HTTP: timeline, artifacts, search, and the `evledger timeline` table."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec
import pytest
from ledger_harness import Ledger, init_ledger, live_server, register, to_json, token
from litestar.testing import TestClient
from typer.testing import CliRunner

from cli.main import app as cli_app
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.service.app import Settings, create_app
from ledger.storage import postgres_index

ARTIFACT = "a1" * 32  # the release's built artifact: the build statement's subject and artifacts[0]
SIDECAR = "b2" * 32  # listed only in the build's artifacts[], never a subject of the build
UNRELATED = "c3" * 32
OTHER_BUILD = "d4" * 32
GENERIC = "https://example.org/sbom/v1"


def statement(predicate_type: str, predicate: Any, *digests: str) -> bytes:
    subjects = [{"name": f"artifact-{d[:6]}", "digest": {"sha256": d}} for d in digests]
    body = {"_type": "https://in-toto.io/Statement/v1", "subject": subjects}
    body |= {"predicateType": predicate_type, "predicate": msgspec.to_builtins(predicate)}
    return msgspec.json.encode(body)


@dataclass
class World:
    client: TestClient
    admin: dict[str, str]
    auditor: dict[str, str]
    keys: dict[str, SignerKey]
    ledger: Ledger
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)

    def post(self, name: str, signer: str, body: bytes) -> dict[str, Any]:
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, body, [self.keys[signer]])
        response = self.client.post("/v1/entries", content=to_json(envelope), headers=self.admin)
        assert response.status_code == 201, response.text
        self.receipts[name] = response.json()
        return self.receipts[name]

    def get(self, path: str, **params: object) -> Any:
        response = self.client.get(path, params=params, headers=self.auditor)
        assert response.status_code == 200, response.text
        return response.json()


def rel(version: str = "1.0") -> p.Release:
    return p.Release("analyzer", version)


def change(version: str = "1.0") -> p.Change:
    summary = p.ChangeSummary("new cut-off", "assay drift", "false negatives", "golden dataset rerun")
    return p.Change(
        rel(version), f"CHG-{version}", summary, "high",
        affects_intended_use=True, patient_facing_output=False, components=["core"], author="Dana Dev",
    )  # fmt: skip


def build(version: str, *artifacts: str) -> p.Build:
    named = [p.Artifact(f"a{i}.tar", f"sha256:{d}") for i, d in enumerate(artifacts)]
    return p.Build(rel(version), "git.example/analyzer", "f" * 40, f"B-{version}", "ci.example", named)


@pytest.fixture
def world(fresh_dsn: str, tmp_path: Path):
    ledger = init_ledger(fresh_dsn, tmp_path)
    admin = {"Authorization": f"Bearer {token(fresh_dsn, 'admin')}"}
    auditor = {"Authorization": f"Bearer {token(fresh_dsn, 'auditor')}"}
    roles = {
        "pipeline": ["appender", "release-manager"],
        "tester": ["tester"],
        "qa": ["qa"],
        "clinical": ["clinical", "qa"],
    }
    keys = {name: SignerKey.generate(f"keys.test/{name}") for name in roles}
    with TestClient(create_app(Settings(dsn=fresh_dsn, signer=ledger.signer, max_delay=0))) as client:
        for name, key_roles in roles.items():
            body = to_json(register(ledger.signer, keys[name], key_roles))
            assert client.post("/v1/entries", content=body, headers=admin).status_code == 201
        w = World(client, admin, auditor, keys, ledger)
        w.post("change", "pipeline", statement(p.CHANGE, change(), ARTIFACT))
        w.post("other-change", "pipeline", statement(p.CHANGE, change("2.0"), OTHER_BUILD))
        w.post("build", "pipeline", statement(p.BUILD, build("1.0", ARTIFACT, SIDECAR), ARTIFACT))
        w.post("sbom", "pipeline", statement(GENERIC, {"format": "spdx", "packages": 42}, ARTIFACT))
        test_run = p.TestRun(rel(), "integration", "pytest", "f" * 40, "ci", 120, 0, 3, "passed")
        w.post("test-run", "tester", statement(p.TEST_RUN, test_run, ARTIFACT))
        w.post("other-build", "pipeline", statement(p.BUILD, build("2.0", OTHER_BUILD), OTHER_BUILD))
        w.post("sidecar-note", "pipeline", statement(GENERIC, {"note": "sidecar checked"}, SIDECAR))
        w.post("unrelated", "pipeline", statement(GENERIC, {"note": "elsewhere"}, UNRELATED))
        # Generic evidence that names the other release joins that release's chain, not this timeline.
        named = {"release": {"product": "analyzer", "version": "2.0"}, "note": "reused"}
        w.post("named-generic", "pipeline", statement(GENERIC, named, ARTIFACT))
        scan = p.Scan(rel(), "grype", "0.80", p.Findings(high=1, low=4))
        w.post("scan", "pipeline", statement(p.SCAN, scan, ARTIFACT))
        entries = [w.receipts[n]["index"] for n in ("change", "build", "test-run", "scan")]
        approval = p.Approval(
            rel(), "qa", "approval", "approved", f"sha256:{ARTIFACT}", entries, "2026-01-01T00:00:00Z", "ok"
        )
        w.post("approval", "qa", statement(p.APPROVAL, approval, ARTIFACT))
        yield w


def test_timeline_is_the_chain_plus_evidence_about_what_it_built(world: World) -> None:
    t = world.get("/v1/releases/analyzer/1.0/timeline")
    names = ["change", "build", "sbom", "test-run", "sidecar-note", "scan", "approval"]
    assert [e["index"] for e in t["events"]] == [world.receipts[n]["index"] for n in names]
    kinds = [e["kind"] for e in t["events"]]
    assert kinds == ["change", "build", "evidence", "test-run", "evidence", "scan", "approval"]
    assert [e["release_seq"] for e in t["events"]] == [0, 1, None, 2, None, 3, 4]
    head = world.receipts["approval"]
    assert (t["count"], t["head"]) == (5, {"index": head["index"], "leaf_hash": head["leaf_hash"]})
    assert (t["product"], t["version"], t["sealed"], t["complete"]) == ("analyzer", "1.0", False, True)
    events = {e["kind"]: e for e in t["events"] if e["kind"] != "evidence"}
    assert events["change"]["summary"]["summary"]["why"] == "assay drift"
    assert events["change"]["summary"]["risk_class"] == "high"
    assert events["change"]["summary"]["affects_intended_use"] is True
    assert [a["digest"] for a in events["build"]["summary"]["artifacts"]] == [
        f"sha256:{ARTIFACT}",
        f"sha256:{SIDECAR}",
    ]
    assert events["test-run"]["summary"] | {"passed": 120} == events["test-run"]["summary"]
    assert events["test-run"]["signer"]["owner"] == "owner of keys.test/tester"
    assert events["test-run"]["signer"]["roles"] == ["tester"]
    assert events["scan"]["summary"]["findings"]["high"] == 1
    approval = events["approval"]
    assert approval["summary"]["approver"] == "owner of keys.test/qa" == approval["signer"]["owner"]
    assert (approval["summary"]["role"], approval["summary"]["decision"]) == ("qa", "approved")
    assert approval["signer"]["keyid"] == world.keys["qa"].keyid
    sbom = t["events"][2]
    assert sbom["predicate_type"] == GENERIC
    assert sbom["release"] is None
    assert sbom["summary"] == {
        "predicate_keys": ["format", "packages"],
        "values": {"format": "spdx", "packages": 42},
    }
    assert sbom["subjects"] == [f"sha256:{ARTIFACT}"]
    for event in t["events"]:
        assert event["proof"] == {
            "inclusion": f"/v1/proofs/inclusion?index={event['index']}",
            "entry": f"/v1/entries/{event['index']}",
        }
    proof = world.client.get(approval["proof"]["inclusion"], headers=world.auditor).json()
    assert proof["leaf_hash"] == approval["leaf_hash"]
    assert world.get(approval["proof"]["entry"])["leaf_hash"] == approval["leaf_hash"]


def test_other_release_and_a_seal(world: World) -> None:
    other = world.get("/v1/releases/analyzer/2.0/timeline")
    assert [e["index"] for e in other["events"]] == [
        world.receipts[n]["index"] for n in ("other-change", "other-build", "named-generic")
    ]
    assert other["events"][-1]["kind"] == "evidence"
    assert other["events"][-1]["release"] == {"product": "analyzer", "version": "2.0"}
    head = world.get("/v1/releases/analyzer/1.0/timeline")["head"]
    world.post("seal", "pipeline", statement(p.RELEASE_SEAL, p.Seal(rel(), 5, head["leaf_hash"]), ARTIFACT))
    sealed = world.get("/v1/releases/analyzer/1.0/timeline")
    assert (sealed["sealed"], sealed["complete"], sealed["count"]) == (True, True, 6)
    assert sealed["head"]["index"] == world.receipts["seal"]["index"]
    assert sealed["events"][-1]["summary"] == {"count": 5, "head": head["leaf_hash"]}


def test_timeline_errors(world: World) -> None:
    missing = world.client.get("/v1/releases/analyzer/9.9/timeline", headers=world.auditor)
    assert missing.status_code == 404
    assert missing.json()["error"] == "not found"
    assert world.client.get("/v1/releases/analyzer/1.0/timeline").status_code == 401


def test_artifact_route(world: World) -> None:
    about = world.get(f"/v1/artifacts/sha256:{ARTIFACT}")
    names = ["change", "build", "sbom", "test-run", "named-generic", "scan", "approval"]
    assert about["digest"] == f"sha256:{ARTIFACT}"
    assert [e["index"] for e in about["events"]] == [world.receipts[n]["index"] for n in names]
    assert about["next_cursor"] is None
    # The sidecar is no build's subject: the build is found through its artifacts list.
    sidecar = world.get(f"/v1/artifacts/sha256:{SIDECAR.upper()}")
    assert [e["kind"] for e in sidecar["events"]] == ["build", "evidence"]
    first = world.get(f"/v1/artifacts/sha256:{ARTIFACT}", limit=4)
    rest = world.get(f"/v1/artifacts/sha256:{ARTIFACT}", limit=4, cursor=first["next_cursor"])
    assert [e["index"] for e in first["events"] + rest["events"]] == [e["index"] for e in about["events"]]
    assert world.get(f"/v1/artifacts/sha256:{'e5' * 32}")["events"] == []
    for bad in ("sha256:abc", f"md5:{ARTIFACT}", ARTIFACT, f"sha256:{'g' * 64}"):
        response = world.client.get(f"/v1/artifacts/{bad}", headers=world.auditor)
        assert response.status_code == 400, bad


def _walk(world: World, **params: object) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = world.get("/v1/search", **params, **({"cursor": cursor} if cursor else {}))
        events += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            return events


def test_search_filters_and_pagination(world: World) -> None:
    everything = _walk(world, limit=3)
    size = world.receipts["approval"]["index"] + 1
    assert [e["index"] for e in everything] == list(range(size))  # no duplicates, no gaps
    assert [e["kind"] for e in everything[:5]] == ["key.registered"] * 5
    assert everything[1]["summary"]["roles"] == ["appender", "release-manager"]
    changes = world.get("/v1/search", kind="change")["events"]
    assert [e["index"] for e in changes] == [world.receipts[n]["index"] for n in ("change", "other-change")]
    builds = _walk(world, kind="build", limit=1)
    assert [e["summary"]["build_id"] for e in builds] == ["B-1.0", "B-2.0"]
    assert _walk(world, kind=p.BUILD, limit=1) == builds
    assert len(world.get("/v1/search", kind="key.registered")["events"]) == 5
    generic = world.get("/v1/search", kind=GENERIC)["events"]
    assert len(generic) == 4
    release = _walk(world, product="analyzer", version="1.0", limit=2)
    assert [e["release_seq"] for e in release] == [0, 1, 2, 3, 4]
    assert len(_walk(world, product="analyzer", limit=2)) == 8
    qa = world.get("/v1/search", signer=world.keys["qa"].keyid)["events"]
    assert [e["kind"] for e in qa] == ["approval"]
    assert (
        world.get("/v1/search", kind="approval", product="analyzer", signer=world.keys["qa"].keyid)["events"]
        == qa
    )


def test_combined_filters_page_through_bounded_windows(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    """A combination no single index serves reads a bounded index range per call; the cursor walks it all."""
    monkeypatch.setattr(postgres_index, "SCAN_WINDOW", 2)
    monkeypatch.setattr(postgres_index, "MAX_WINDOWS", 2)
    pages = []
    cursor = None
    while True:
        params = {"kind": "scan", "product": "analyzer"} | ({"cursor": cursor} if cursor else {})
        page = world.get("/v1/search", **params)
        pages.append(page["events"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    found = [e["index"] for events in pages for e in events]
    assert found == [world.receipts["scan"]["index"]]
    assert any(not events for events in pages)  # short pages carry a cursor
    tests = _walk(world, kind="test-run", signer=world.keys["tester"].keyid, limit=1)
    assert [e["index"] for e in tests] == [world.receipts["test-run"]["index"]]


def test_search_by_time(world: World) -> None:
    everything = _walk(world, limit=1000)
    middle = everything[len(everything) // 2]
    since = world.get("/v1/search", since=middle["time"])["events"]
    assert since
    assert all(e["time"] >= middle["time"] for e in since)
    assert [e["index"] for e in since] == [e["index"] for e in everything if e["time"] >= middle["time"]]
    until = world.get("/v1/search", until=middle["time"])["events"]
    assert [e["index"] for e in until] == [e["index"] for e in everything if e["time"] < middle["time"]]
    window = world.get("/v1/search", since=middle["time"], until=middle["time"])["events"]
    assert window == []
    offset = middle["time"].replace("Z", "+00:00")
    assert world.get("/v1/search", since=offset)["events"] == since
    assert world.get("/v1/search", since="2999-01-01T00:00:00Z") == {"events": [], "next_cursor": None}


@pytest.mark.parametrize(
    "params",
    [
        {"kind": "evidence"},
        {"kind": "bogus"},
        {"cursor": "-1"},
        {"cursor": "abc"},
        {"limit": 0},
        {"limit": 1001},
        {"since": "yesterday"},
        {"since": "2026-01-01"},
        {"until": "2026-01-01T00:00:00"},
        {"version": "1.0"},
    ],
)
def test_search_refuses_bad_filters(world: World, params: dict[str, object]) -> None:
    response = world.client.get("/v1/search", params=params, headers=world.auditor)
    assert response.status_code == 400, response.text
    assert set(response.json()) == {"status", "error", "detail"}


def test_signer_registered_through_another_process(world: World, fresh_dsn: str) -> None:
    """A key registered by another service process is named once the registry catches up from storage."""
    late = SignerKey.generate("keys.test/late")
    with TestClient(create_app(Settings(dsn=fresh_dsn, signer=world.ledger.signer, max_delay=0))) as other:
        body = to_json(register(world.ledger.signer, late, ["clinical"]))
        assert other.post("/v1/entries", content=body, headers=world.admin).status_code == 201
        validation = p.Validation(
            rel(), "sensitivity", p.Dataset("golden", "7", f"sha256:{ARTIFACT}"), "passed"
        )
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement(p.VALIDATION, validation, ARTIFACT), [late])
        assert other.post("/v1/entries", content=to_json(envelope), headers=world.admin).status_code == 201
    last = world.get("/v1/releases/analyzer/1.0/timeline")["events"][-1]
    assert (last["kind"], last["signer"]["owner"], last["signer"]["roles"]) == (
        "validation",
        "owner of keys.test/late",
        ["clinical"],
    )
    assert last["summary"]["dataset"]["name"] == "golden"


# ledger_harness.live_server never closes the server's stdout pipe; the garbage collector reports
# that file as unclosed. It is the harness's leak, not the command's, so it is not an error here.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)
def test_cli_timeline_table_and_json(world: World) -> None:
    auditor_token = world.auditor["Authorization"].removeprefix("Bearer ")
    runner = CliRunner()
    with live_server(world.ledger) as url:
        result = runner.invoke(
            cli_app, ["timeline", "analyzer", "1.0", "--server", url, "--token", auditor_token]
        )
        as_json = runner.invoke(
            cli_app, ["timeline", "analyzer", "1.0", "--server", url, "--token", auditor_token, "--json"]
        )
        missing = runner.invoke(
            cli_app, ["timeline", "analyzer", "9.9", "--server", url, "--token", auditor_token]
        )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "release analyzer 1.0"
    assert lines[1].split() == ["index", "time", "kind", "signer", "facts"]
    approval = next(line for line in lines if " approval " in line)
    assert "owner of keys.test/qa (qa)" in approval
    recorded = world.receipts["approval"]["time"]
    assert (
        "APPROVED by owner of keys.test/qa as qa (meaning of signature: approval), "
        f"signed 2026-01-01T00:00:00Z, recorded {recorded}"
    ) in approval
    assert any("CHG-1.0 risk high: new cut-off" in line for line in lines)
    assert any(f"[{GENERIC}, linked by subject] format=spdx, packages=42" in line for line in lines)
    assert lines[-1].startswith("7 events; chain of 5 entries, head ")
    assert lines[-1].endswith("unbroken: yes; sealed: no (open: later events may be recorded)")

    assert as_json.exit_code == 0, as_json.output
    report = json.loads(as_json.output)
    assert report["ok"] is True
    assert (report["count"], report["complete"], len(report["events"])) == (5, True, 7)

    assert missing.exit_code == 2
    assert "404" in missing.output
