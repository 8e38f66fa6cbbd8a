"""A small release under a small policy, built over HTTP, for the tests of gates and decisions.

The policy asks for one thing only: a `qa` approval of the candidate artifact (low tier,
no suites, no scans, no separation rules). So a release is compliant exactly when its
qa's latest decision is an approval, which lets a test flip it with one signed
statement and ask the gate what it now sees.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec
from ledger_harness import Ledger, register, to_json
from story_support import signed

from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.encoding import format_time
from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.records.admin import PolicyPublished, encode_admin_record
from ledger.records.policy import load_policy_toml, policy_digest

PRODUCT = "gatekeeper"
ARTIFACT = "sha256:" + "5e" * 32
_TIER = """required_suites = []
required_approval_roles = ["qa"]
require_validation = false
"""
POLICY_TOML = f"""name = "qa-only"
version = "1"
[tiers.low]
{_TIER}[tiers.medium]
{_TIER}[tiers.high]
{_TIER}[separation_of_duties]
approver_not_author = false
one_person_one_role = false
[exceptions]
allowed_rules = []
max_duration_days = 1
review_within_days = 0
[continuity]
environments = []
[approvals]
after_evidence = false
[sealing]
roles = ["release-manager"]
"""


@dataclass(frozen=True)
class People:
    """The keys of the people and machines of these tests."""

    pipeline: SignerKey
    qa: SignerKey
    manager: SignerKey


def now() -> str:
    """The present, as statements write times."""
    return format_time(datetime.now(UTC))


def post(url: str, token: str, path: str, body: bytes) -> httpx.Response:
    """One request on a connection of its own (with several workers, any worker may answer it)."""
    return httpx.post(url + path, content=body, headers={"Authorization": f"Bearer {token}"}, timeout=30)


def append(url: str, token: str, envelope: Envelope) -> dict[str, object]:
    """Append one envelope; it must be recorded (201)."""
    response = post(url, token, "/v1/entries", to_json(envelope))
    assert response.status_code == 201, response.text
    answer: dict[str, object] = response.json()
    return answer


def decision(people: People, version: str, verdict: str, comment: str) -> Envelope:
    """The qa's signed approval or rejection of the release's artifact, signed now."""
    release = p.Release(PRODUCT, version)
    predicate = p.Approval(release, "qa", "approval", verdict, ARTIFACT, [], now(), comment)  # type: ignore[arg-type]
    return signed(people.qa, p.APPROVAL, predicate, ARTIFACT)


def gate(url: str, token: str, version: str) -> dict[str, object]:
    """Ask the production gate about the release; the decision is appended (201)."""
    body = msgspec.json.encode({"product": PRODUCT, "version": version, "environment": "production"})
    response = post(url, token, "/v1/gates/evaluate", body)
    assert response.status_code == 201, response.text
    answer: dict[str, object] = response.json()
    return answer


def set_up(url: str, ledger: Ledger, admin_token: str, appender_token: str, version: str) -> People:
    """Publish the policy, register the keys, record a low-risk change and its build."""
    people = People(*(SignerKey.generate(f"people.test/{name}") for name in ("pipeline", "qa", "manager")))
    policy = load_policy_toml(POLICY_TOML)
    record = PolicyPublished(policy, policy_digest(policy))
    published = sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(record), [ledger.signer])
    response = post(url, admin_token, "/v1/entries", to_json(published))
    assert response.status_code in {200, 201}, response.text  # 200: an earlier set-up published it
    roles = {people.pipeline: ["appender"], people.qa: ["qa"], people.manager: ["release-manager"]}
    for key, key_roles in roles.items():
        append(url, admin_token, register(ledger.signer, key, key_roles))
    release = p.Release(PRODUCT, version)
    summary = p.ChangeSummary("a label", "a typo", "none", "review")
    change = p.Change(
        release, "CHG-1", summary, "low", affects_intended_use=False, patient_facing_output=False,
        components=["ui"], author="Ann Author",
    )  # fmt: skip
    append(url, appender_token, signed(people.pipeline, p.CHANGE, change, ARTIFACT))
    build = p.Build(release, "git.test/repo", "c0ffee", "b-1", "ci", [p.Artifact("app.tar", ARTIFACT)])
    append(url, appender_token, signed(people.pipeline, p.BUILD, build, ARTIFACT))
    return people
