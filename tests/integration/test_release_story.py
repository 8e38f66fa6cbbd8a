"""The whole release story end to end (issue #4): gates, exception, deployment, seal, dossier, report.

The story of cli/demo.py runs once against one live `evledger serve`; its
dossier is exported once with `evledger dossier --tlog-proofs`. The tests then
check what each party relies on: the pipeline (gate answers, 409 after the
seal), the auditor (timeline, compliance) and the inspector (offline verify,
the printed record, C2SP tlog-proofs). Two small releases built with the typed
predicates show the policy refusing a self-approved change and a deployment of
another digest than the approved one.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from ledger_harness import to_json
from story_support import LiveLedger, Played, evledger, live_ledger, play_story, signed

from cli import story as s
from ledger.core.checkpoint import open_checkpoint
from ledger.core.dsse import (
    ADMIN_PAYLOAD_TYPE,
    INTOTO_PAYLOAD_TYPE,
    envelope_payload,
    sign_envelope,
    verify_envelope,
)
from ledger.core.encoding import format_time, hash_from_hex
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey
from ledger.core.proof import verify_inclusion
from ledger.core.tlog_proof import parse_tlog_proof, verify_tlog_proof
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, encode_admin_record

VERSION = "2.4.1"


def _now() -> str:
    return format_time(datetime.now(UTC))


APPROVERS = {"qa": "qa", "clinical": "clinical", "security": "security", "release_manager": "release-manager"}


@dataclass(frozen=True)
class World:
    live: LiveLedger
    played: Played
    dossier_path: Path
    dossier: dict[str, Any]
    proofs_dir: Path
    export_output: str
    out: Path

    @property
    def story(self) -> s.Story:
        return self.played.story

    def index(self, name: str) -> int:
        return int(self.story.receipts[name]["index"])

    def get(self, path: str, **params: str) -> Any:
        with self.live.admin() as client:
            return client.get(path, **params).json()

    def release_path(self, version: str = VERSION) -> str:
        return f"/v1/releases/{s.PRODUCT}/{version}"


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("story")
    with live_ledger(pg_server_dsn, out) as live:
        played = play_story(live, VERSION)
        dossier_path, proofs_dir = out / "release.dossier.json", out / "tlog-proofs"
        exported = evledger(
            "dossier", s.PRODUCT, VERSION, "-o", str(dossier_path), "--tlog-proofs", str(proofs_dir),
            "--server", live.url, "--token", live.admin_token,
        )  # fmt: skip
        assert exported.exit_code == 0, exported.output
        dossier = json.loads(dossier_path.read_bytes())
        yield World(live, played, dossier_path, dossier, proofs_dir, exported.output, out)


# --- the pipeline: gates ---------------------------------------------------------------------------


def test_first_production_gate_denies_on_the_open_high_finding_of_the_scan(world: World) -> None:
    deny = world.played.deny
    assert deny.exit_code == 1, deny.answer
    assert deny.answer["decision"] == "deny"
    compliance = deny.answer["compliance"]
    assert (compliance["status"], compliance["environment"]) == ("non-compliant", "production")
    failing = [f for f in compliance["findings"] if f["status"] == "fail"]
    assert [f["rule"] for f in failing] == ["findings.max-open"]
    assert failing[0]["entries"] == [world.index("scan")]
    assert "high 1 (at most 0)" in failing[0]["message"]
    assert world.story.artifact in failing[0]["message"]


def test_after_the_exception_the_gate_allows_with_the_finding_waived(world: World) -> None:
    allow = world.played.allow
    assert allow.exit_code == 0, allow.answer
    assert (allow.answer["decision"], allow.answer["compliance"]["status"]) == ("allow", "compliant")
    (finding,) = allow.answer["compliance"]["findings"]
    exception = world.index("exception")
    assert (finding["rule"], finding["status"], finding["waived_by"]) == (
        "findings.max-open",
        "waived",
        exception,
    )
    assert finding["entries"] == sorted([world.index("scan"), exception])


@pytest.mark.parametrize("which", ["deny", "allow"])
def test_gate_decisions_are_ledger_signed_vsas_in_the_release_chain(world: World, which: str) -> None:
    answer = getattr(world.played, which).answer
    receipt = answer["receipt"]
    ledger = world.live.ledger.signer.verifier()
    checkpoint = open_checkpoint(receipt["checkpoint"], ledger)
    proof = [hash_from_hex(h) for h in receipt["inclusion_proof"]]
    leaf = hash_from_hex(receipt["leaf_hash"])
    verify_inclusion(receipt["index"], checkpoint.size, leaf, proof, checkpoint.root_hash)

    stored = world.get(f"/v1/entries/{receipt['index']}")
    entry = parse_entry(base64.b64decode(stored["entry"]))
    assert entry.envelope.payload_type == INTOTO_PAYLOAD_TYPE
    assert [sig.keyid for sig in entry.envelope.signatures] == [ledger.keyid]
    assert verify_envelope(entry.envelope, {ledger.keyid: ledger}.get) == [ledger]
    statement = msgspec.json.decode(envelope_payload(entry.envelope))
    assert statement["predicateType"] == p.GATE_DECISION == "https://slsa.dev/verification_summary/v1"
    predicate = statement["predicate"]
    gate_fields = predicate[p.GATE_EXTENSION]  # SLSA VSA v1: extension fields are URI-named
    assert (gate_fields["decision"], gate_fields["environment"]) == (which, "production")
    assert predicate["verificationResult"] == ("PASSED" if which == "allow" else "FAILED")
    assert predicate["verifier"] == {"id": f"https://evledger.dev/verifier/{ledger.name}"}
    assert entry.release is not None
    assert (entry.release.product, entry.release.version) == (s.PRODUCT, VERSION)

    timeline = world.get(f"{world.release_path()}/timeline")
    (event,) = [e for e in timeline["events"] if e["index"] == receipt["index"]]
    assert (event["kind"], event["release_seq"]) == ("gate-decision", entry.release.seq)
    assert event["signer"]["keyid"] == ledger.keyid


# --- the auditor: compliance and timeline ----------------------------------------------------------


@pytest.mark.parametrize("environment", [None, "production"])
def test_compliance_is_compliant_after_deployment(world: World, environment: str | None) -> None:
    params = {"environment": environment} if environment else {}
    result = world.get(f"{world.release_path()}/compliance", **params)
    assert result["status"] == "compliant", result["findings"]
    assert result["candidates"] == [{"name": "analyzer.tar", "digest": world.story.artifact}]
    assert world.index("deployment") in result["entries"]
    assert [(f["rule"], f["status"]) for f in result["findings"]] == [("findings.max-open", "waived")]


def test_timeline_is_complete_and_sealed(world: World) -> None:
    timeline = world.get(f"{world.release_path()}/timeline")
    assert (timeline["complete"], timeline["sealed"]) == (True, True)
    seal = world.story.receipts["seal"]
    assert timeline["head"] == {"index": seal["index"], "leaf_hash": seal["leaf_hash"]}
    assert [e["release_seq"] for e in timeline["events"]] == list(range(timeline["count"]))
    assert [e["index"] for e in timeline["events"]] == [e["index"] for e in world.dossier["entries"]]
    kinds = [e["kind"] for e in timeline["events"]]
    assert (kinds[0], kinds[-1], kinds.count("gate-decision"), kinds.count("test-run")) == (
        "change",
        "release-seal",
        2,
        len(s.SUITES),
    )


@pytest.mark.parametrize("environment", ["prod", "Production", "staging"])
def test_a_gate_for_an_environment_the_policy_does_not_name_is_422_and_appends_nothing(
    world: World, environment: str
) -> None:
    """The example policy names `production`: a typo would get a decision without its checks (issue #12)."""
    size = world.get("/v1/entries", start="0", limit="1000")["entries"][-1]["index"]
    body = msgspec.json.encode({"product": s.PRODUCT, "version": VERSION, "environment": environment})
    response = httpx.post(
        f"{world.live.url}/v1/gates/evaluate", content=body, headers=_bearer(world.live.appender_token)
    )
    assert response.status_code == 422, response.text
    assert "names the environments production" in response.json()["detail"]
    assert world.get("/v1/entries", start="0", limit="1000")["entries"][-1]["index"] == size


def test_a_late_entry_after_the_seal_is_refused_with_409(world: World) -> None:
    before = httpx.get(f"{world.live.url}/v1/checkpoint", headers=_bearer(world.live.admin_token)).text
    run = p.TestRun(
        world.story.release, "unit", "make test-unit", world.story.commit, "ci", 1, 0, 0, "passed"
    )
    late = signed(world.story.people["pipeline"].key, p.TEST_RUN, run, world.story.artifact)
    response = httpx.post(
        f"{world.live.url}/v1/entries", content=to_json(late), headers=_bearer(world.live.appender_token)
    )
    assert response.status_code == 409, response.text
    body = response.json()
    assert body["status"] == 409
    assert "sealed" in body["detail"]
    assert str(world.index("seal")) in body["detail"]
    after = httpx.get(f"{world.live.url}/v1/checkpoint", headers=_bearer(world.live.admin_token)).text
    assert after.split("\n")[1] == before.split("\n")[1]


def test_a_retried_ci_job_gets_its_original_receipt(world: World) -> None:
    assert world.played.retried_build["index"] == world.index("build")
    assert world.played.retried_build["leaf_hash"] == world.story.receipts["build"]["leaf_hash"]


# --- the inspector: dossier, verify, report, tlog-proofs -------------------------------------------


def test_exported_dossier_covers_the_whole_release(world: World) -> None:
    assert world.dossier["format"] == "evledger-dossier/v1"
    assert (world.dossier["product"], world.dossier["version"]) == (s.PRODUCT, VERSION)
    indices = [e["index"] for e in world.dossier["entries"]]
    assert set(indices) >= {int(r["index"]) for r in world.story.receipts.values()}
    assert {
        world.played.deny.answer["receipt"]["index"],
        world.played.allow.answer["receipt"]["index"],
    } <= set(indices)
    assert [k["index"] for k in world.dossier["keys"]] == [
        0,
        *(r["index"] for r in world.played.registrations),
    ]
    assert world.dossier["policy"]["index"] == world.played.policy["index"]
    assert world.dossier["compliance"]["status"] == "compliant"
    assert "compliance compliant" in world.export_output


def test_exported_dossier_verifies_offline(world: World) -> None:
    pub = str(world.live.ledger.pub_path)
    text = evledger("verify", str(world.dossier_path), "--key", pub)
    assert text.exit_code == 0, text.output
    assert f"dossier of {s.PRODUCT} {VERSION}: VERIFIED, sealed at entry " in text.stdout
    result = evledger("verify", str(world.dossier_path), "--key", pub, "--json")
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert (answer["ok"], answer["sealed"], answer["compliance"]) == (True, True, "compliant")
    assert answer["entries"] == len(world.dossier["entries"])
    assert answer["completeness"]["complete"] is True
    seal = answer["completeness"]["sealed_at"]
    assert f"release seal at entry {seal} commits to the chain before it" in answer["checks"]


def test_report_prints_names_meanings_change_summary_and_verification(world: World) -> None:
    out = world.out / "release.html"
    result = evledger(
        "report", s.PRODUCT, VERSION, "-o", str(out),
        "--key", str(world.live.ledger.pub_path), "--dossier", str(world.dossier_path),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    for person, role in APPROVERS.items():
        owner = world.story.people[person].owner
        assert html.escape(owner) in page, owner
        assert html.escape(f"APPROVED by {owner} as {role} (meaning of signature: approval)") in page, role
    assert "EXCEPTION to rule findings.max-open GRANTED by " in page
    assert "RELEASE RECORD SEALED by " in page
    assert '<p class="complete"><b>Completeness:</b> sealed at entry ' in page
    summary = p.ChangeSummary(
        what="Correct rounding of borderline potassium results",
        why="Results at 5.45 mmol/L were rounded down, hiding hyperkalaemia flags",
        risk="Changes a patient-facing result near a clinical decision limit",
        mitigation="Golden dataset of 1,200 archived borderline samples; full regression suite",
    )
    for text in msgspec.structs.astuple(summary):
        assert html.escape(text) in page, text
    assert "CHG-2041" in page
    assert "Verified offline" in page


def test_tlog_proof_files_each_verify_offline(world: World) -> None:
    ledger = world.live.ledger.signer.verifier()
    items = [*world.dossier["keys"], world.dossier["policy"], *world.dossier["entries"]]
    files = sorted(world.proofs_dir.glob("*.tlog-proof"))
    assert len(files) == len(items)
    for item in items:
        path = world.proofs_dir / f"entry-{item['index']}.tlog-proof"
        proof = parse_tlog_proof(path.read_text(encoding="utf-8"))
        assert proof.index == item["index"]
        assert proof.checkpoint == world.dossier["checkpoint"]
        assert verify_tlog_proof(proof, ledger) == base64.b64decode(item["entry"])


# --- the policy refuses: self-approval, another digest deployed ------------------------------------


def _artifact(tag: str) -> str:
    return "sha256:" + msgspec.json.encode(tag).hex()[:8].ljust(64, "0")


def _append(world: World, envelope: Any, *, admin: bool = False) -> int:
    client = world.live.admin() if admin else world.live.appender()
    with client:
        (receipt,) = client.append([envelope])
    return int(receipt["index"])


def _low_risk_change(release: p.Release, author: str) -> p.Change:
    summary = p.ChangeSummary("Fix a label", "Typo on the results screen", "None to patients", "Review")
    return p.Change(
        release, f"CHG-{release.version}", summary, "low",
        affects_intended_use=False, patient_facing_output=False, components=["ui"], author=author,
    )  # fmt: skip


def _build(world: World, release: p.Release, digest: str) -> int:
    build = p.Build(release, "git.example/ivd/analyzer", world.story.commit, f"b-{release.version}", "ci",
                    [p.Artifact("analyzer.tar", digest)])  # fmt: skip
    return _append(world, signed(world.story.people["pipeline"].key, p.BUILD, build, digest))


def _compliance(world: World, version: str) -> dict[str, Any]:
    result: dict[str, Any] = world.get(f"{world.release_path(version)}/compliance")
    return result


def test_a_change_approved_by_its_own_author_is_non_compliant(world: World) -> None:
    release = p.Release(s.PRODUCT, f"{VERSION}-sod")
    digest = _artifact("sod")
    dana = world.story.people["developer"]
    # The developer also holds a key registered with role qa: another key, the same person.
    dana_qa = SignerKey.generate(f"people.test/dana-qa-{release.version}")
    record = KeyRegistered(dana_qa.verifier().format(), dana.owner, ["qa"], [s.PRODUCT])
    admin_record = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [world.live.ledger.signer])
    _append(world, admin_record, admin=True)

    change = _append(world, signed(dana.key, p.CHANGE, _low_risk_change(release, dana.owner), digest))
    build = _build(world, release, digest)
    approval = p.Approval(
        release, "qa", "approval", "approved", digest, [change, build], _now(), comment="LGTM"
    )
    approved = _append(world, signed(dana_qa, p.APPROVAL, approval, digest))

    result = _compliance(world, release.version)
    assert result["status"] == "non-compliant"
    sod = [f for f in result["findings"] if f["rule"] == "sod.approver-not-author"]
    assert len(sod) == 1, result["findings"]
    assert sod[0]["status"] == "fail"
    assert sod[0]["entries"] == sorted([approved, change])
    assert dana.owner in sod[0]["message"]
    assert f"entry {approved}" in sod[0]["message"]


def test_deploying_another_digest_than_the_approved_one_is_non_compliant(world: World) -> None:
    release = p.Release(s.PRODUCT, f"{VERSION}-continuity")
    approved_digest, deployed_digest = _artifact("approved"), _artifact("deployed")
    people = world.story.people
    developer = people["developer"]
    change_record = _low_risk_change(release, developer.owner)
    change = _append(world, signed(developer.key, p.CHANGE, change_record, approved_digest))
    build = _build(world, release, approved_digest)
    runs = []
    for suite in ("unit", "regression"):
        run = p.TestRun(release, suite, f"make {suite}", world.story.commit, "ci", 10, 0, 0, "passed")
        runs.append(_append(world, signed(people["pipeline"].key, p.TEST_RUN, run, approved_digest)))
    scan = p.Scan(release, "grype", "0.80.1", p.Findings())
    scanned = _append(world, signed(people["pipeline"].key, p.SCAN, scan, approved_digest))
    reviewed = [change, build, *runs, scanned]
    approval = p.Approval(release, "qa", "approval", "approved", approved_digest, reviewed, _now())
    approved = _append(world, signed(people["qa"].key, p.APPROVAL, approval, approved_digest))
    before = _compliance(world, release.version)
    assert before["status"] == "compliant", before["findings"]

    now = datetime.now(UTC)
    started, finished = format_time(now - timedelta(minutes=1)), format_time(now)
    deployment = p.Deployment(release, "production", deployed_digest, started, finished, "succeeded")
    deployed = _append(world, signed(people["pipeline"].key, p.DEPLOYMENT, deployment, deployed_digest))

    result = _compliance(world, release.version)
    assert result["status"] == "non-compliant"
    continuity = [f for f in result["findings"] if f["rule"] == "continuity.artifact"]
    assert len(continuity) == 1, result["findings"]
    assert continuity[0]["status"] == "fail"
    assert deployed in continuity[0]["entries"]
    assert approved in continuity[0]["entries"]
    assert deployed_digest in continuity[0]["message"]
    assert "not what was approved" in continuity[0]["message"]


def _bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}
