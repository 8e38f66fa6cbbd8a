"""`evledger record …` against a live server: a whole release recorded from options only (docs/cli.md).

One ledger and one `evledger serve` for the module. Keys are made with
`evledger keygen`, registered with `evledger key register` and the policy
published with `evledger policy publish`; every piece of evidence is then
recorded with `evledger record KIND`, the gate asked with `evledger gate`, and
the timeline read with `evledger timeline --json`. The CLI runs in-process
(CliRunner), and once as the installed console script with no terminal.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import Result
from ledger_harness import Ledger, init_ledger, live_server, token
from service_support import scratch_database
from typer.testing import CliRunner

from cli import record_approval
from cli.main import app

PRODUCT, OTHER = "ivd-analyzer", "other-product"
DIGEST = "sha256:" + "4f2a" * 16
OLD_DIGEST = "sha256:" + "77" * 32
DATASET = "sha256:" + "9b1d" * 16
COMMIT = "c0ffee" * 6 + "c0ff"
POLICY = """name = "record-cli"
version = "1"
[tiers.low]
required_suites = ["unit"]
required_approval_roles = ["qa", "release-manager"]
require_validation = true
[tiers.medium]
required_suites = ["unit"]
required_approval_roles = ["qa", "release-manager"]
require_validation = true
[tiers.high]
required_suites = ["unit"]
required_approval_roles = ["qa", "release-manager"]
require_validation = true
[separation_of_duties]
approver_not_author = true
one_person_one_role = true
[exceptions]
allowed_rules = ["tests.required-suites"]
max_duration_days = 14
review_within_days = 30
[continuity]
environments = ["production"]
[approvals]
after_evidence = true
[sealing]
roles = ["release-manager"]
"""
PEOPLE = {
    "developer": ("Dana Developer", ["developer"]),
    "pipeline": ("CI pipeline", ["builder", "deployer"]),
    "qa": ("Quinn Quality", ["qa"]),
    "manager": ("Riley Release", ["release-manager"]),
}
runner = CliRunner()


@dataclass(frozen=True)
class Live:
    url: str
    ledger: Ledger
    keys: dict[str, Path]
    appender: str  # scoped to PRODUCT
    other: str  # an appender token scoped to OTHER only
    auditor: str

    def record(self, kind: str, version: str, who: str, *args: str, input_text: str | None = None) -> Result:
        """`evledger record KIND PRODUCT VERSION ARGS` signed by `who` with the appender token."""
        common = ["--key", str(self.keys[who]), "--server", self.url, "--token", self.appender]
        return runner.invoke(app, ["record", kind, PRODUCT, version, *args, *common], input=input_text)

    def timeline(self, version: str) -> dict[str, Any]:
        result = runner.invoke(
            app, ["timeline", PRODUCT, version, "--server", self.url, "--token", self.auditor, "--json"]
        )
        assert result.exit_code == 0, result.output
        answer: dict[str, Any] = json.loads(result.stdout)
        return answer

    def gate(self, version: str) -> tuple[int, dict[str, Any]]:
        args = ["gate", PRODUCT, version, "--environment", "production", "--json"]
        result = runner.invoke(app, [*args, "--server", self.url, "--token", self.appender])
        return result.exit_code, json.loads(result.stdout)


def ok(result: Result) -> dict[str, Any]:
    """The JSON answer of a command that must have succeeded."""
    assert result.exit_code == 0, result.output
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer


@pytest.fixture(scope="module")
def live(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    directory = tmp_path_factory.mktemp("record-cli")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = init_ledger(dsn, directory)
        with live_server(ledger) as url:
            admin = token(dsn, "admin")
            admin_args = ["--key", str(ledger.key_path), "--server", url, "--token", admin]
            keys: dict[str, Path] = {}
            for who, (owner, roles) in PEOPLE.items():
                out = directory / who
                assert runner.invoke(app, ["keygen", f"record.test/{who}", "--out", str(out)]).exit_code == 0
                keys[who] = out.with_suffix(".key")
                role_args = [a for role in roles for a in ("--role", role)]
                register = ["key", "register", str(out.with_suffix(".pub")), "--owner", owner, *role_args]
                ok(runner.invoke(app, [*register, "--product", PRODUCT, *admin_args, "--json"]))
            policy = directory / "policy.toml"
            policy.write_text(POLICY)
            ok(runner.invoke(app, ["policy", "publish", str(policy), *admin_args, "--json"]))
            yield Live(
                url,
                ledger,
                keys,
                token(dsn, "appender", [PRODUCT]),
                token(dsn, "appender", [OTHER]),
                token(dsn, "auditor"),
            )


CHANGE = [
    "--change-id", "CHG-2041", "--summary-what", "Correct rounding of borderline potassium results",
    "--summary-why", "5.45 mmol/L was rounded down", "--summary-risk", "A patient-facing result changes",
    "--summary-mitigation", "Golden dataset of 1,200 samples", "--risk-class", "high",
    "--no-affects-intended-use", "--patient-facing-output", "--component", "result-engine",
    "--component", "report-pdf", "--author", "Dana Developer", "--commit", COMMIT,
]  # fmt: skip
BUILD = [
    "--repository", "git.example/ivd/analyzer", "--commit", COMMIT, "--build-id", "build-88421",
    "--builder", "ci-runner-7", "--artifact", f"analyzer.tar={DIGEST}",
    "--infrastructure-revision", "infra@5d1e",
]  # fmt: skip
VALIDATION = [
    "--objective", "Borderline potassium results match the reference method",
    "--dataset-name", "potassium-borderline", "--dataset-version", "2026.03", "--dataset-digest", DATASET,
    "--result", "passed", "--subject-digest", DIGEST, "--subject-name", "analyzer.tar",
]  # fmt: skip


def approve(
    live: Live, version: str, who: str, role: str, *extra: str, input_text: str | None = None
) -> Result:
    args = ["--role", role, "--meaning", "approval", "--decision", "approved", "--artifact-digest", DIGEST]
    return live.record("approval", version, who, *args, *extra, input_text=input_text)


def test_a_whole_release_recorded_with_record_commands(live: Live) -> None:
    version = "2.4.0"
    change = ok(live.record("change", version, "developer", *CHANGE, "--json"))
    assert change["subjects"] == [f"gitCommit:{COMMIT}"]
    assert change["idempotency_key"].startswith("evledger-attest:change:")
    build = ok(live.record("build", version, "pipeline", *BUILD, "--json"))
    assert build["subjects"] == [DIGEST]
    ok(live.record("validation", version, "pipeline", *VALIDATION, "--json"))

    qa = approve(live, version, "qa", "qa", "--comment", "qa review of CHG-2041", "--yes")
    assert qa.exit_code == 0, qa.output
    assert "You are about to sign, as Quinn Quality" in qa.stderr  # named from its registration
    assert "approved by Quinn Quality as qa (approval)" in qa.stdout
    manager = ok(approve(live, version, "manager", "release-manager", "--yes", "--json"))
    reviewed = manager["predicate"]["entries"]
    assert reviewed == [e["index"] for e in live.timeline(version)["events"][: len(reviewed)]]

    denied, answer = live.gate(version)
    assert (denied, answer["decision"]) == (1, "deny")
    open_findings = [f["rule"] for f in answer["compliance"]["findings"] if f["status"] != "pass"]
    assert open_findings == ["tests.required-suites"]  # all else the policy asks for is recorded

    justification = "Unit tests ran on the previous build; the change touches no unit-tested code"
    exception = ok(live.record(
        "exception", version, "manager", "--rule", "tests.required-suites", "--justification", justification,
        "--expires", "7d", "--review-due", "21d", "--subject-digest", DIGEST, "--json",
    ))  # fmt: skip
    exception_entry = exception["receipts"][0]["index"]
    allowed, answer = live.gate(version)
    assert (allowed, answer["decision"]) == (0, "allow"), answer

    ok(live.record(
        "deployment", version, "pipeline", "--environment", "production", "--artifact-digest", DIGEST,
        "--result", "succeeded", "--started", "2026-03-01T14:30:00+01:00",
        "--finished", "2026-03-01T13:34:00Z", "--json",
    ))  # fmt: skip
    review = ok(live.record(
        "exception-review", version, "qa", "--exception-entry", str(exception_entry),
        "--outcome", "accepted", "--comment", "Unit suite added to the next release", "--json",
    ))  # fmt: skip
    assert review["subjects"] == [DIGEST]  # what the exception was about

    seal_and_check(live, version, build, exception_entry)


def seal_and_check(live: Live, version: str, build: dict[str, Any], exception_entry: int) -> None:
    """Seal the release, check what its timeline shows, and retry as a re-run job would."""
    before_seal = live.timeline(version)
    sealed = ok(live.record("seal", version, "manager", "--json"))
    assert sealed["predicate"]["count"] == before_seal["count"]
    assert sealed["predicate"]["head"] == before_seal["head"]["leaf_hash"]
    assert sealed["subjects"] == [DIGEST]  # the artifacts the release built

    timeline = live.timeline(version)
    assert timeline["sealed"]
    assert timeline["complete"]
    assert timeline["count"] == before_seal["count"] + 1
    kinds = [e["kind"] for e in timeline["events"]]
    assert kinds == [
        "change", "build", "validation", "approval", "approval", "gate-decision", "exception",
        "gate-decision", "deployment", "exception-review", "release-seal",
    ]  # fmt: skip
    events = timeline["events"]
    facts = {e["kind"]: e for e in events}
    assert facts["change"]["summary"]["change_id"] == "CHG-2041"
    assert facts["change"]["summary"]["risk_class"] == "high"
    assert facts["change"]["summary"]["patient_facing_output"] is True
    assert facts["change"]["signer"]["owner"] == "Dana Developer"
    assert facts["build"]["summary"]["artifacts"] == [{"name": "analyzer.tar", "digest": DIGEST}]
    assert facts["validation"]["summary"]["dataset"]["digest"] == DATASET
    approvals = [e for e in events if e["kind"] == "approval"]
    assert [(a["summary"]["approver"], a["summary"]["role"]) for a in approvals] == [
        ("Quinn Quality", "qa"),
        ("Riley Release", "release-manager"),
    ]
    assert all(a["summary"]["signed_at"] for a in approvals)
    assert approvals[0]["summary"]["comment"] == "qa review of CHG-2041"
    assert facts["exception"]["summary"]["rule"] == "tests.required-suites"
    assert facts["deployment"]["summary"]["started"] == "2026-03-01T13:30:00.000Z"  # written in UTC
    assert facts["deployment"]["summary"]["digests"] == [DIGEST]
    assert facts["exception-review"]["summary"]["exception_entry"] == exception_entry
    assert facts["release-seal"]["summary"]["count"] == before_seal["count"]

    # A retried job: the same statement gets its first receipt back; the seal is reported as it stands.
    again = ok(live.record("build", version, "pipeline", *BUILD, "--json"))
    assert again["already_recorded"]
    assert again["receipts"] == build["receipts"]
    text = live.record("build", version, "pipeline", *BUILD)
    assert f"already recorded as entry {build['receipts'][0]['index']}" in text.stdout
    resealed = live.record("seal", version, "manager")
    assert resealed.exit_code == 0, resealed.output
    assert f"already recorded as entry {timeline['head']['index']}" in resealed.stdout
    late = live.record("validation", version, "pipeline", *VALIDATION[:-4], "--subject-digest", OLD_DIGEST)
    assert late.exit_code == 2  # nothing joins a sealed release
    assert "409" in late.output


def test_rollback_names_both_artifacts(live: Live) -> None:
    version = "2.4.1"
    ok(live.record("build", version, "pipeline", *BUILD, "--json"))
    result = live.record(
        "rollback", version, "pipeline", "--environment", "production", "--from-digest", DIGEST,
        "--to-digest", OLD_DIGEST, "--reason", "Result export failed on site B", "--result", "succeeded",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "appended: entry" in result.stdout
    rollback = live.timeline(version)["events"][-1]
    assert rollback["kind"] == "rollback"
    assert rollback["summary"]["from_digest"] == DIGEST
    assert rollback["summary"]["to_digest"] == OLD_DIGEST
    assert rollback["summary"]["started"] == rollback["summary"]["finished"]  # both default to now
    assert sorted(rollback["subjects"]) == sorted([DIGEST, OLD_DIGEST])


BAD = "sha256:" + "ab" * 31
BAD_INPUT = [
    ("change", ["--risk-class", "extreme"], "--risk-class must be one of low, medium, high"),
    ("change", ["--commit", "not-a-commit"], "--commit must be a git commit id"),
    ("change", ["--author", "  "], "--author must not be empty"),
    ("build", ["--artifact", f"analyzer.tar={BAD}"], "sha256:<64 hex digits>"),
    ("build", ["--artifact", DIGEST], "--artifact must be written NAME=sha256"),
    ("build", ["--dependency-lock-digest", "md5:abc"], "--dependency-lock-digest must be written sha256"),
    ("validation", ["--result", "maybe"], "--result must be one of passed, failed"),
    ("validation", ["--manual"], "a manual validation must list its steps"),
    ("validation", ["--dataset-digest", "sha1:" + "a" * 40], "--dataset-digest must be written sha256"),
    ("approval", ["--meaning", "consent"], "--meaning must be one of review, approval, responsibility"),
    ("approval", ["--decision", "yes"], "--decision must be one of approved, rejected"),
    ("approval", ["--artifact-digest", BAD], "--artifact-digest must be written sha256:<64 hex digits>"),
    ("exception", ["--expires", "next tuesday"], "--expires must be a duration from now"),
    ("exception", ["--review-due", "2026-03-01"], "--review-due must be a duration from now"),
    ("exception", ["--justification", " "], "--justification must not be empty"),
    ("exception-review", ["--outcome", "fine"], "--outcome must be one of accepted, remediation-required"),
    ("deployment", ["--started", "2026-03-01 14:30"], "--started must be an RFC 3339 date and time"),
    ("deployment", ["--started", "2026-03-02T00:00:00Z", "--finished", "2026-03-01T00:00:00Z"], "is after"),
    ("deployment", ["--result", "ok"], "--result must be one of succeeded, failed"),
    ("rollback", ["--to-digest", "sha256:XYZ"], "--to-digest must be written sha256"),
    ("seal", ["--subject-digest", BAD], "--subject-digest must be written sha256"),
]
GOOD = {
    "change": CHANGE,
    "build": BUILD,
    "validation": VALIDATION,
    "approval": [
        "--role", "qa", "--meaning", "approval", "--decision", "approved", "--artifact-digest", DIGEST,
    ],
    "exception": [
        "--rule", "tests.required-suites", "--justification", "why", "--expires", "7d",
        "--review-due", "21d", "--subject-digest", DIGEST,
    ],
    "exception-review": ["--exception-entry", "3", "--outcome", "accepted", "--comment", "ok"],
    "deployment": ["--environment", "production", "--artifact-digest", DIGEST, "--result", "succeeded"],
    "rollback": [
        "--environment", "production", "--from-digest", DIGEST, "--to-digest", OLD_DIGEST,
        "--reason", "r", "--result", "succeeded",
    ],
    "seal": [],
}  # fmt: skip


def _offline(kind: str, args: list[str], tmp_path: Path) -> Result:
    """Run a record command against a port nobody listens on: a refusal must come before any request."""
    key = tmp_path / "k"
    assert runner.invoke(app, ["keygen", "record.test/offline", "--out", str(key)]).exit_code == 0
    common = ["--key", str(key.with_suffix(".key")), "--server", "http://127.0.0.1:9", "--token", "t"]
    return runner.invoke(
        app, ["record", kind, PRODUCT, "9.9.9", *args, *common, "--yes"] if kind == "approval"
        else ["record", kind, PRODUCT, "9.9.9", *args, *common],
        env={"EVLEDGER_RETRIES": "0"},
    )  # fmt: skip


@pytest.mark.parametrize(("kind", "bad", "message"), BAD_INPUT)
def test_bad_input_is_refused_before_sending(kind: str, bad: list[str], message: str, tmp_path: Path) -> None:
    result = _offline(kind, [*GOOD[kind], *bad], tmp_path)  # a single option's last value wins
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert "cannot reach" not in result.output


@pytest.mark.parametrize("kind", list(GOOD))
def test_each_command_needs_its_required_options(kind: str, tmp_path: Path) -> None:
    result = _offline(kind, [], tmp_path)
    if kind == "seal":  # every option of a seal is read from the ledger
        assert result.exit_code == 3, result.output  # so it went to ask the (absent) server
        return
    assert result.exit_code == 2, result.output
    assert "Missing option" in result.output


def test_the_change_needs_a_subject(tmp_path: Path) -> None:
    result = _offline("change", CHANGE[:-2], tmp_path)
    assert result.exit_code == 2
    assert "--commit (the source commit) or --subject-digest" in result.output


def test_a_wrong_token_is_refused_with_401(live: Live) -> None:
    args = [*CHANGE, "--key", str(live.keys["developer"]), "--server", live.url, "--token", "not-a-token"]
    result = runner.invoke(app, ["record", "change", PRODUCT, "3.0.0", *args])
    assert result.exit_code == 2
    assert "401" in result.output


def test_a_token_for_another_product_is_refused_with_403(live: Live) -> None:
    args = [*CHANGE, "--key", str(live.keys["developer"]), "--server", live.url, "--token", live.other]
    result = runner.invoke(app, ["record", "change", PRODUCT, "3.0.0", *args, "--json"])
    assert result.exit_code == 2
    assert "403" in json.loads(result.stdout)["detail"]


def test_a_seal_needs_events(live: Live) -> None:
    result = live.record("seal", "0.0.0-none", "manager")
    assert result.exit_code == 2
    assert "has no events: there is nothing to seal" in result.output


def test_exception_review_must_name_an_exception(live: Live) -> None:
    version = "2.5.0"
    build = ok(live.record("build", version, "pipeline", *BUILD, "--json"))
    index = str(build["receipts"][0]["index"])
    result = live.record(
        "exception-review", version, "qa", *GOOD["exception-review"][2:], "--exception-entry", index
    )
    assert result.exit_code == 2
    assert f"entry {index} of the release is a build, not an exception" in result.output


def test_an_approval_without_a_terminal_needs_yes(live: Live) -> None:
    version = "2.6.0"
    ok(live.record("build", version, "pipeline", *BUILD, "--json"))
    before = live.timeline(version)["count"]
    result = approve(live, version, "qa", "qa")
    assert result.exit_code == 2
    assert "add --yes" in result.output
    assert "nothing was signed" in result.output
    assert "You are about to sign, as Quinn Quality" in result.stderr
    assert live.timeline(version)["count"] == before

    # The installed command, its standard input not a terminal: it refuses at once rather than wait.
    cli = Path(sys.executable).with_name("evledger")
    args = ["--role", "qa", "--meaning", "approval", "--decision", "approved", "--artifact-digest", DIGEST]
    common = ["--key", str(live.keys["qa"]), "--server", live.url, "--token", live.appender]
    done = subprocess.run(  # noqa: S603 - our own CLI
        [str(cli), "record", "approval", PRODUCT, version, *args, *common],
        stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60, check=False,
        env={**os.environ, "EVLEDGER_RETRIES": "0"},
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "add --yes" in done.stderr
    assert live.timeline(version)["count"] == before


def test_an_approval_at_a_terminal_asks_first(live: Live, monkeypatch: pytest.MonkeyPatch) -> None:
    version = "2.7.0"
    ok(live.record("build", version, "pipeline", *BUILD, "--json"))
    monkeypatch.setattr(record_approval, "_interactive", lambda: True)
    declined = approve(live, version, "qa", "qa", "--entry", "1", input_text="n\n")
    assert declined.exit_code == 2
    assert "not confirmed; nothing was signed or appended" in declined.output
    assert "entries   1" in declined.stderr
    assert live.timeline(version)["count"] == 1

    wrong_role = approve(live, version, "qa", "release-manager", input_text="y\n")
    assert wrong_role.exit_code == 2
    assert "registered with roles qa, not 'release-manager'" in wrong_role.output

    signed = approve(live, version, "qa", "qa", input_text="y\n")
    assert signed.exit_code == 0, signed.output
    assert "Sign and append this approval?" in signed.stderr
    assert "appended: entry" in signed.stdout
    approval = live.timeline(version)["events"][-1]
    assert (approval["kind"], approval["summary"]["approver"]) == ("approval", "Quinn Quality")
