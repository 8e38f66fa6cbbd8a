"""`evledger attest` against a live server: reports become signed, idempotent evidence (docs/cli.md).

One ledger and one `evledger serve` for the module; a pipeline key is
registered with role `tester` for one product through POST /v1/entries with an
admin token, as an operator would. The CLI runs in-process (CliRunner), and
once as the installed console script.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledger_harness import Ledger, free_port, init_ledger, live_server, register, to_json, token
from service_support import bearer, scratch_database
from typer.testing import CliRunner

from cli.main import app
from ledger.core.entry import parse_entry
from ledger.core.keys import SignerKey

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"
ATTEST_FIXTURES = FIXTURES / "attest"
PRODUCT, VERSION = "ivd-analyzer", "2.4.0"
DIGEST = "sha256:" + "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
RELEASE = [
    "--product",
    PRODUCT,
    "--version",
    VERSION,
    "--subject-name",
    "analyzer.tar",
    "--subject-digest",
    DIGEST,
]
TEST_RUN = ["--suite", "regression", "--command", "pytest tests/regression", "--commit", "4f1c2a9"]
TEST_RUN += ["--environment", "ci-linux-x86_64"]
runner = CliRunner()


@dataclass(frozen=True)
class Pipeline:
    url: str
    ledger: Ledger
    key_path: Path
    keyid: str
    env: dict[str, str]  # EVLEDGER_SERVER, EVLEDGER_TOKEN and EVLEDGER_KEY of the pipeline
    auditor: str


@pytest.fixture(scope="module")
def pipeline(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pipeline]:
    directory = tmp_path_factory.mktemp("attest-cli")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = init_ledger(dsn, directory)
        with live_server(ledger) as url:
            signer = SignerKey.generate("ci.test/pipeline")
            key_path = directory / "pipeline.key"
            key_path.write_text(signer.format() + "\n")
            key_path.chmod(0o600)
            admin = token(dsn, "admin")
            registration = to_json(register(ledger.signer, signer, ["tester"], [PRODUCT]))
            response = httpx.post(f"{url}/v1/entries", content=registration, headers=bearer(admin))
            assert response.status_code == 201, response.text
            env = {
                "EVLEDGER_SERVER": url,
                "EVLEDGER_TOKEN": token(dsn, "appender", [PRODUCT]),
                "EVLEDGER_KEY": str(key_path),
            }
            yield Pipeline(url, ledger, key_path, signer.keyid, env, token(dsn, "auditor"))


def attest(pipeline: Pipeline, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
    """Run `evledger attest ... --json`; the exit code and the one JSON object it printed."""
    result = runner.invoke(app, ["attest", *args, "--json"], env={**pipeline.env, **(env or {})})
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, (result.exit_code, result.stdout, result.stderr)
    return result.exit_code, json.loads(lines[0])


def appended(pipeline: Pipeline, *args: str) -> dict[str, Any]:
    code, output = attest(pipeline, *args)
    assert code == 0, output
    assert output["ok"] is True
    return output


def tree_size(pipeline: Pipeline) -> int:
    response = httpx.get(f"{pipeline.url}/v1/checkpoint", headers=bearer(pipeline.auditor))
    assert response.status_code == 200, response.text
    return int(response.text.split("\n")[1])


def logged_statement(pipeline: Pipeline, index: int) -> tuple[dict[str, Any], str]:
    """The statement in entry `index` and the keyid that signed it, as the ledger serves them."""
    response = httpx.get(f"{pipeline.url}/v1/entries/{index}", headers=bearer(pipeline.auditor))
    assert response.status_code == 200, response.text
    entry = parse_entry(base64.b64decode(response.json()["entry"]))
    payload = base64.b64decode(entry.envelope.payload)
    return json.loads(payload), entry.envelope.signatures[0].keyid


def test_junit_report_is_appended_once_however_often_the_job_retries(pipeline):
    report = FIXTURES / "junit-pytest.xml"
    first = appended(pipeline, "junit", str(report), *RELEASE, *TEST_RUN)
    (receipt,) = first["receipts"]
    assert first["idempotency_key"].startswith("evledger-attest:test-run:")
    assert first["predicate"]["result"] == "failed"
    size = tree_size(pipeline)

    retry = appended(pipeline, "junit", str(report), *RELEASE, *TEST_RUN)
    assert retry["idempotency_key"] == first["idempotency_key"]
    assert retry["receipts"][0]["index"] == receipt["index"]
    assert retry["receipts"][0]["leaf_hash"] == receipt["leaf_hash"]
    assert tree_size(pipeline) == size

    statement, keyid = logged_statement(pipeline, receipt["index"])
    assert keyid == pipeline.keyid
    assert statement["predicateType"] == "https://evledger.dev/test-run/v1"
    assert statement["subject"] == [{"name": "analyzer.tar", "digest": {"sha256": DIGEST[7:]}}]
    predicate = statement["predicate"]
    assert (predicate["passed"], predicate["failed"], predicate["skipped"]) == (3, 2, 2)
    assert predicate["release"] == {"product": PRODUCT, "version": VERSION}


def test_a_different_report_is_new_evidence(pipeline):
    pytest_run = appended(pipeline, "junit", str(FIXTURES / "junit-pytest.xml"), *RELEASE, *TEST_RUN)
    surefire = appended(pipeline, "junit", str(FIXTURES / "junit-surefire.xml"), *RELEASE, *TEST_RUN)
    assert surefire["idempotency_key"] != pytest_run["idempotency_key"]
    assert surefire["receipts"][0]["index"] > pytest_run["receipts"][0]["index"]
    assert (surefire["predicate"]["passed"], surefire["predicate"]["skipped"]) == (3, 1)


def blob(pipeline: Pipeline, digest: str) -> httpx.Response:
    return httpx.get(f"{pipeline.url}/v1/blobs/{digest}", headers=bearer(pipeline.auditor), timeout=30)


@pytest.mark.parametrize(("command", "fixture"), [("junit", "junit-surefire.xml"), ("sarif", "codeql.sarif")])
def test_the_report_itself_is_stored_in_the_ledger_before_its_evidence_is_appended(
    pipeline, command, fixture
):
    extra = TEST_RUN if command == "junit" else []
    output = appended(pipeline, command, str(FIXTURES / fixture), *RELEASE, *extra)
    digest = output["predicate"]["report_digest"]
    assert output["report"]["digest"] == digest
    stored = blob(pipeline, digest)
    assert stored.status_code == 200, stored.text
    assert stored.content == (FIXTURES / fixture).read_bytes()


def test_no_store_records_only_the_reports_digest(pipeline, tmp_path):
    report = tmp_path / "kept-elsewhere.sarif"
    report.write_bytes((FIXTURES / "semgrep.sarif").read_bytes() + b"\n")  # a file no other test stores
    output = appended(pipeline, "sarif", str(report), *RELEASE, "--no-store")
    assert output["report"] is None
    assert blob(pipeline, output["predicate"]["report_digest"]).status_code == 404


def test_sarif_log_is_appended_as_a_scan(pipeline):
    output = appended(pipeline, "sarif", str(FIXTURES / "codeql.sarif"), *RELEASE)
    statement, _ = logged_statement(pipeline, output["receipts"][0]["index"])
    assert statement["predicateType"] == "https://evledger.dev/scan/v1"
    assert statement["predicate"]["tool"] == "CodeQL"
    assert statement["predicate"]["findings"] == {"critical": 1, "high": 3, "medium": 1, "low": 2, "info": 0}


@pytest.mark.parametrize(
    ("fixture", "format_args", "counts"),
    [
        ("nunit3-console.xml", [], (3, 2, 2)),
        ("ctrf-playwright.json", [], (3, 1, 2)),
        ("googletest.xml", ["--format", "junit"], (1, 1, 3)),
    ],
)
def test_nunit_ctrf_and_disabled_tests_are_appended_as_counted(pipeline, fixture, format_args, counts):
    output = appended(pipeline, "junit", str(ATTEST_FIXTURES / fixture), *RELEASE, *TEST_RUN, *format_args)
    statement, _ = logged_statement(pipeline, output["receipts"][0]["index"])
    predicate = statement["predicate"]
    assert (predicate["passed"], predicate["failed"], predicate["skipped"]) == counts
    assert predicate["result"] == "failed"


def test_sarif_severity_map_is_applied_and_recorded_in_the_evidence(pipeline):
    report = str(ATTEST_FIXTURES / "ruff.sarif")
    plain = appended(pipeline, "sarif", report, *RELEASE)
    assert plain["predicate"]["findings"]["high"] == 3
    assert "severity_map" not in plain["predicate"]
    output = appended(pipeline, "sarif", report, *RELEASE, "--severity-map", "ruff:error=low")
    assert output["idempotency_key"] != plain["idempotency_key"]
    statement, _ = logged_statement(pipeline, output["receipts"][0]["index"])
    assert statement["predicate"]["findings"] == {"critical": 0, "high": 0, "medium": 0, "low": 3, "info": 0}
    assert statement["predicate"]["severity_map"] == [{"tool": "ruff", "level": "error", "severity": "low"}]


@pytest.mark.parametrize(
    ("args", "detail"),
    [
        (["junit", str(ATTEST_FIXTURES / "billion-laughs.xml"), *RELEASE, *TEST_RUN], "declares a DOCTYPE"),
        (["junit", str(ATTEST_FIXTURES / "xxe.xml"), *RELEASE, *TEST_RUN], "declares a DOCTYPE"),
        (["junit", str(FIXTURES / "junit-pytest.xml"), *RELEASE, *TEST_RUN, "--format", "xunit"],
         "the report format must be one of"),
        (["sarif", str(ATTEST_FIXTURES / "ruff.sarif"), *RELEASE, "--severity-map", "ruff:error"],
         "is not TOOL:LEVEL=SEVERITY"),
        (["sarif", str(ATTEST_FIXTURES / "ruff.sarif"), *RELEASE, "--severity-map", "flake8:error=low"],
         "names tool 'flake8'"),
    ],
)  # fmt: skip
def test_attack_and_bad_options_exit_2_and_append_nothing(pipeline, args, detail):
    size = tree_size(pipeline)
    code, output = attest(pipeline, *args)
    assert (code, output["ok"]) == (2, False), output
    assert output["error"] in {"input", "encoding"}
    assert detail in output["detail"]
    assert "lollol" not in output["detail"]
    assert "root:" not in output["detail"]
    assert tree_size(pipeline) == size


def test_statement_file_is_appended_as_written_and_idempotently(pipeline, tmp_path):
    path = tmp_path / "sbom.json"
    path.write_bytes(
        b'{"_type": "https://in-toto.io/Statement/v1",\n "subject": [{"name": "analyzer.tar", '
        b'"digest": {"sha256": "' + DIGEST[7:].encode() + b'"}}],\n "predicateType": '
        b'"https://cyclonedx.org/bom", "predicate": {"release": '
        b'{"product": "ivd-analyzer", "version": "2.4.0"}}}\n'
    )
    first = appended(pipeline, "statement", str(path))
    again = appended(pipeline, "statement", str(path))
    assert first["receipts"][0]["index"] == again["receipts"][0]["index"]
    response = httpx.get(
        f"{pipeline.url}/v1/entries/{first['receipts'][0]['index']}", headers=bearer(pipeline.auditor)
    )
    payload = base64.b64decode(parse_entry(base64.b64decode(response.json()["entry"])).envelope.payload)
    assert payload == path.read_bytes()


@pytest.mark.parametrize(
    ("args", "error", "detail"),
    [
        (["junit", "<broken>", *RELEASE, *TEST_RUN], "encoding", "not well-formed XML"),
        (["junit", "<doctype>", *RELEASE, *TEST_RUN], "encoding", "declares a DOCTYPE"),
        (["junit", "<missing>", *RELEASE, *TEST_RUN], "input", "cannot read JUnit report"),
        (
            ["junit", "<pytest>", *RELEASE, *TEST_RUN[:1], "smoke", *TEST_RUN[2:]],
            "input",
            "suite must be one of",
        ),
        (["sarif", "<broken>", *RELEASE], "encoding", "is not a SARIF log"),
        (["sarif", "<codeql>", *RELEASE[:-1], "sha256:abc"], "input", "sha256:<64 hex digits>"),
        (["statement", "<sarif-statement>"], "encoding", "scan predicate is invalid"),
    ],
)
def test_bad_input_exits_2_naming_the_file_and_appends_nothing(pipeline, tmp_path, args, error, detail):
    files = {
        "<broken>": tmp_path / "broken.xml",
        "<doctype>": tmp_path / "doctype.xml",
        "<missing>": tmp_path / "missing.xml",
        "<pytest>": FIXTURES / "junit-pytest.xml",
        "<codeql>": FIXTURES / "codeql.sarif",
        "<sarif-statement>": tmp_path / "statement.json",
    }
    files["<broken>"].write_text("<testsuite><testcase name='a'>")
    files["<doctype>"].write_text(
        '<!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]><testsuite>&x;</testsuite>'
    )
    files["<sarif-statement>"].write_text(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "analyzer.tar", "digest": {"sha256": DIGEST[7:]}}],
                "predicateType": "https://evledger.dev/scan/v1",
                "predicate": {"release": {"product": PRODUCT, "version": VERSION}, "tool": "CodeQL"},
            }
        )
    )
    args = [str(files[a]) if a in files else a for a in args]
    size = tree_size(pipeline)
    code, output = attest(pipeline, *args)
    assert (code, output["ok"], output["error"]) == (2, False, error), output
    assert detail in output["detail"]
    if args[1] in {str(files["<broken>"]), str(files["<doctype>"])}:
        kind = "JUnit XML report" if args[0] == "junit" else "SARIF report"
        assert output["detail"].startswith(f"{args[1]}: {kind} ")
    assert tree_size(pipeline) == size


@pytest.mark.parametrize(
    ("env", "error", "code"),
    [
        ({"EVLEDGER_TOKEN": ""}, "input", 2),  # no token: refused before anything is sent
        ({"EVLEDGER_TOKEN": "not-a-token"}, "unauthenticated", 2),
        ({"EVLEDGER_KEY": ""}, "input", 2),
        ({"EVLEDGER_SERVER": f"http://127.0.0.1:{free_port()}"}, "unavailable", 3),
        ({"EVLEDGER_KEY": "<unregistered key>"}, "signature", 1),  # the ledger's signature check failed
    ],
)
def test_refusals_exit_with_the_contract_code(pipeline, tmp_path, env, error, code):
    if env.get("EVLEDGER_KEY") == "<unregistered key>":
        stranger = tmp_path / "stranger.key"
        stranger.write_text(SignerKey.generate("ci.test/stranger").format() + "\n")
        env = {"EVLEDGER_KEY": str(stranger)}
    size = tree_size(pipeline)
    result = attest(pipeline, "sarif", str(FIXTURES / "semgrep.sarif"), *RELEASE, env=env)
    assert result[0] == code, result
    assert result[1]["error"] == error
    assert tree_size(pipeline) == size


def test_product_outside_the_token_scope_is_forbidden(pipeline):
    args = ["sarif", str(FIXTURES / "semgrep.sarif"), *RELEASE]
    args[args.index(PRODUCT)] = "other-product"
    code, output = attest(pipeline, *args)
    assert (code, output["error"]) == (2, "permission_denied"), output


def test_reusing_an_explicit_idempotency_key_for_other_evidence_is_a_conflict(pipeline):
    key = ["--idempotency-key", "ci-job-88412"]
    appended(pipeline, "sarif", str(FIXTURES / "semgrep.sarif"), *RELEASE, *key)
    code, output = attest(pipeline, "sarif", str(FIXTURES / "codeql.sarif"), *RELEASE, *key)
    assert (code, output["error"]) == (2, "conflict"), output


def test_console_script_prints_the_idempotency_key_and_the_receipt(pipeline):
    cli = Path(sys.executable).with_name("evledger")
    command = [str(cli), "attest", "junit", str(FIXTURES / "junit-surefire.xml"), *RELEASE, *TEST_RUN]
    done = subprocess.run(  # noqa: S603 - our own CLI with arguments we built
        command, env={**os.environ, **pipeline.env}, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("idempotency key: evledger-attest:test-run:")
    assert lines[1] == "test run regression: 3 passed, 2 failed, 1 skipped: failed"
    # An earlier test of this module may have recorded the same report: then the original receipt.
    assert lines[2].startswith(("appended: entry ", "already recorded as entry "))
