"""The release story the demo tells (and the end-to-end tests replay), over the real HTTP API.

A high-risk change to an IVD analyzer goes through build, the six test suites
its tier requires, a scan with one open high finding, validation against a
golden dataset, and approvals by four different people in four roles. The
production gate denies it (the finding); the release manager records a
time-boxed exception; the gate allows it; it is deployed and sealed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from cli.client import LedgerClient
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.encoding import format_time, parse_time
from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, encode_admin_record, encode_policy_record
from ledger.records.policy import load_policy_toml

PRODUCT = "ivd-analyzer"
SUITES: tuple[p.TestSuite, ...] = ("unit", "integration", "regression", "system", "security", "performance")
Say = Callable[[str], None]
Timeline = Callable[[], dict[str, Any]]


@dataclass(frozen=True)
class Person:
    """A signing key and who holds it."""

    key: SignerKey
    owner: str
    roles: tuple[str, ...]


@dataclass
class Story:
    """Who takes part, what they work on, and the receipts collected on the way."""

    ledger: SignerKey
    version: str
    people: dict[str, Person]
    commit: str = "c0ffee" * 6 + "c0ffee12"
    artifact: str = "sha256:" + "4f2a" * 16
    receipts: dict[str, dict[str, Any]] = field(default_factory=dict)
    sent: dict[str, Envelope] = field(default_factory=dict)

    @property
    def release(self) -> p.Release:
        """The release this story is about."""
        return p.Release(PRODUCT, self.version)


def cast(ledger: SignerKey, version: str) -> Story:
    """Fresh keys for everyone (names carry the version, so reruns register new keys)."""
    who = {
        "pipeline": ("CI pipeline", ("builder", "tester", "deployer")),
        "developer": ("Dana Developer", ("developer",)),
        "qa": ("Quinn Quality", ("qa",)),
        "clinical": ("Dr. Casey Chen", ("clinical",)),
        "security": ("Sam Security", ("security",)),
        "release_manager": ("Riley Release", ("release-manager",)),
    }
    people = {
        name: Person(SignerKey.generate(f"demo.evledger/{name}-{version}"), owner, roles)
        for name, (owner, roles) in who.items()
    }
    return Story(ledger, version, people)


def _statement(story: Story, predicate_type: str, predicate: object, *, commit: bool) -> bytes:
    subject = (
        {"name": "git", "digest": {"gitCommit": story.commit}}
        if commit
        else {"name": "analyzer.tar", "digest": {"sha256": story.artifact.removeprefix("sha256:")}}
    )
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [subject],
            "predicateType": predicate_type,
            "predicate": msgspec.to_builtins(predicate),
        }
    )


def _record(
    client: LedgerClient,
    story: Story,
    say: Say,
    name: str,
    who: str,
    predicate: object,
    *,
    commit: bool = False,
) -> None:
    """Sign a statement as `who`, append it (idempotently), keep and print its receipt."""
    predicate_type = next(t for t, cls in p.PREDICATE_TYPES.items() if isinstance(predicate, cls))
    body = _statement(story, predicate_type, predicate, commit=commit)
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, body, [story.people[who].key])
    (receipt,) = client.append([envelope], idempotency_key=f"{story.version}/{name}")
    story.receipts[name], story.sent[name] = receipt, envelope
    size = receipt["checkpoint"].split("\n")[1]
    say(f"  {name:<24} entry {receipt['index']:>4}  leaf {receipt['leaf_hash'][:12]}…  checkpoint {size}")


def register_people(admin: LedgerClient, story: Story) -> list[dict[str, Any]]:
    """Register every person's key with their roles (admin records signed by the ledger key)."""
    envelopes: list[Envelope] = []
    for person in story.people.values():
        record = KeyRegistered(person.key.verifier().format(), person.owner, list(person.roles), [PRODUCT])
        envelopes.append(sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [story.ledger]))
    return admin.append(envelopes)


def publish_policy(admin: LedgerClient, story: Story, policy_toml: str) -> dict[str, Any]:
    """Publish the release policy (an admin record signed by the ledger key)."""
    payload = encode_policy_record(load_policy_toml(policy_toml))
    (receipt,) = admin.append([sign_envelope(ADMIN_PAYLOAD_TYPE, payload, [story.ledger])])
    return receipt


def build_and_test(client: LedgerClient, story: Story, say: Say) -> None:
    """Change, build, six suites, scan (one open high finding) and validation."""
    r = story.release
    change = p.Change(
        r, "CHG-2041",
        p.ChangeSummary(
            what="Correct rounding of borderline potassium results",
            why="Results at 5.45 mmol/L were rounded down, hiding hyperkalaemia flags",
            risk="Changes a patient-facing result near a clinical decision limit",
            mitigation="Golden dataset of 1,200 archived borderline samples; full regression suite",
        ),
        "high", affects_intended_use=False, patient_facing_output=True,
        components=["result-engine"], author="Dana Developer",
    )  # fmt: skip
    _record(client, story, say, "change", "developer", change, commit=True)
    build = p.Build(
        r, "git.example/ivd/analyzer", story.commit, "build-88421", "ci-runner-7",
        [p.Artifact("analyzer.tar", story.artifact)], infrastructure_revision="infra@5d1e",
    )  # fmt: skip
    _record(client, story, say, "build", "pipeline", build)
    for suite in SUITES:
        run = p.TestRun(r, suite, f"make test-{suite}", story.commit, "ci", 120, 0, 2, "passed")
        _record(client, story, say, f"test-{suite}", "pipeline", run)
    _record(client, story, say, "scan", "pipeline", p.Scan(r, "grype", "0.80.1", p.Findings(high=1, low=4)))
    validation = p.Validation(
        r, "Borderline potassium results match the reference method",
        p.Dataset("potassium-borderline", "2026.03", "sha256:" + "9b1d" * 16), "passed",
    )  # fmt: skip
    _record(client, story, say, "validation", "pipeline", validation)


def approve(client: LedgerClient, story: Story, say: Say) -> None:
    """Four people approve in four roles, each listing the entries they reviewed."""
    reviewed = sorted(rc["index"] for name, rc in story.receipts.items() if name != "change")
    for who, role in (("qa", "qa"), ("clinical", "clinical"), ("security", "security"),
                      ("release_manager", "release-manager")):  # fmt: skip
        signed_at = format_time(datetime.now(UTC))
        approval = p.Approval(story.release, role, "approval", "approved", story.artifact, reviewed,
                              signed_at, comment=f"{role} review of CHG-2041")  # fmt: skip
        _record(client, story, say, f"approval-{role}", who, approval)


def record_exception(client: LedgerClient, story: Story, say: Say) -> None:
    """The release manager waives the open high finding for seven days, review due in three weeks."""
    now = datetime.now(UTC)
    exception = p.PolicyException(
        story.release, "findings.max-open",
        "CVE-2026-1234 is in the PDF export library, which the analyzer never loads; fix due in 2.4.1",
        format_time(now + timedelta(days=7)), format_time(now + timedelta(days=21)),
    )  # fmt: skip
    _record(client, story, say, "exception", "release_manager", exception)


def deploy_and_seal(client: LedgerClient, story: Story, timeline: Timeline, say: Say) -> None:
    """Deploy the approved artifact to production, then seal the release at its current head.

    The pipeline deploys once the gate has allowed it (rule deployments.gate-allow), and its
    window starts now: never before the ledger recorded the evidence it deploys (rule
    deployments.after-evidence; the receipts' ledger times bound it, should this clock lag).
    """
    started = format_time(max([datetime.now(UTC), *(parse_time(r["time"]) for r in story.receipts.values())]))
    deployment = p.Deployment(
        story.release, "production", story.artifact, started, started, "succeeded",
        infrastructure_revision="infra@5d1e",
    )  # fmt: skip
    _record(client, story, say, "deployment", "pipeline", deployment)
    head = timeline()
    _record(
        client,
        story,
        say,
        "seal",
        "release_manager",
        p.Seal(story.release, head["count"], head["head"]["leaf_hash"]),
    )


def retry(client: LedgerClient, story: Story, name: str) -> dict[str, Any]:
    """Send an earlier statement again with the same idempotency key, as a retried CI job would."""
    (receipt,) = client.append([story.sent[name]], idempotency_key=f"{story.version}/{name}")
    return receipt
