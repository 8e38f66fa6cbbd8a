"""Evidence files end to end (issue #14): attached, stored, exported in an audit package, verified offline.

One ledger and one `evledger serve` for the module. A pipeline records a release's requirements
baseline, a JUnit report whose test cases name requirements, an SBOM written by cyclonedx-py, a
VEX document, a residual anomaly and a validation with a PDF attached, and submits a statement
with a file attached. `evledger dossier --with-blobs` then writes the audit package, which
`evledger verify` accepts with every file present, and refuses with one file changed, missing,
added or damaged. The CLI runs in-process (CliRunner) against the live server.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ledger_harness import Ledger, init_ledger, live_server, register, to_json, token
from service_support import bearer, scratch_database
from typer.testing import CliRunner

from cli.main import app
from ledger.core.keys import SignerKey
from ledger.records.sbom import decode_soup_list, parse_sbom

FIXTURES = Path(__file__).resolve().parents[1] / "unit" / "fixtures"
REQUIREMENTS = FIXTURES / "requirements"
POLICY_FILE = Path(__file__).resolve().parents[2] / "schemas" / "policy.example.toml"
PRODUCT, VERSION = "ivd-analyzer", "3.1.0"
CANDIDATE = "sha256:" + "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
SUBJECT = ["--subject-name", "analyzer.tar", "--subject-digest", CANDIDATE]
RELEASE = ["--product", PRODUCT, "--version", VERSION, *SUBJECT]
runner = CliRunner()


@dataclass(frozen=True)
class Story:
    url: str
    ledger: Ledger
    env: dict[str, str]
    auditor: str
    directory: Path
    outputs: dict[str, dict[str, Any]]  # each step's JSON output


def evledger(env: dict[str, str], *args: str) -> tuple[int, dict[str, Any]]:
    """Run `evledger ARGS --json`; its exit code and the one JSON object it printed."""
    result = runner.invoke(app, [*args, "--json"], env=env)
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1, (result.exit_code, result.stdout, result.stderr)
    return result.exit_code, json.loads(lines[0])


def ok(env: dict[str, str], *args: str) -> dict[str, Any]:
    code, output = evledger(env, *args)
    assert code == 0, output
    return output


@pytest.fixture(scope="module")
def story(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Story]:
    directory = tmp_path_factory.mktemp("audit-package")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = init_ledger(dsn, directory)
        with live_server(ledger) as url:
            signer_path = directory / "pipeline.key"
            signer = SignerKey.generate("ci.test/pipeline")
            signer_path.write_text(signer.format() + "\n")
            signer_path.chmod(0o600)
            registration = to_json(register(ledger.signer, signer, ["tester", "qa"], [PRODUCT]))
            admin = token(dsn, "admin")
            answer = httpx.post(f"{url}/v1/entries", content=registration, headers=bearer(admin))
            assert answer.status_code == 201, answer.text
            admin_args = ["--key", str(ledger.key_path), "--server", url, "--token", admin]
            ok({}, "policy", "publish", str(POLICY_FILE), *admin_args)
            env = {
                "EVLEDGER_SERVER": url,
                "EVLEDGER_TOKEN": token(dsn, "appender", [PRODUCT]),
                "EVLEDGER_KEY": str(signer_path),
            }
            yield Story(url, ledger, env, token(dsn, "auditor"), directory, record_release(env, directory))


def record_release(env: dict[str, str], directory: Path) -> dict[str, dict[str, Any]]:
    """Every kind of evidence file the release's entries name; each step's output."""
    (directory / "run.log").write_bytes(b"collected 6 items\n" * 40)
    (directory / "validation-report.pdf").write_bytes(b"%PDF-1.7\n% golden panel agreement\n" * 30)
    (directory / "evaluation.txt").write_text("ANOM-7: evaluated by the risk board on 2026-12-01\n")
    (directory / "extra.txt").write_text("release notes\n")
    outputs = {
        "build": ok(
            env, "record", "build", PRODUCT, VERSION, "--repository", "https://git.example.org/analyzer",
            "--commit", "4f1c2a9", "--build-id", "b-1", "--builder", "ci",
            "--artifact", f"analyzer.tar={CANDIDATE}",
        ),
        "requirements": ok(
            env, "record", "requirements", PRODUCT, VERSION, str(FIXTURES / "requirements" / "baseline.csv"),
            "--document-id", "SRS-ANALYZER", "--document-version", "3",
        ),
        "junit": ok(
            env, "attest", "junit", str(REQUIREMENTS / "junit-pytest-requirements.xml"), *RELEASE,
            "--suite", "system", "--command", "pytest", "--commit", "4f1c2a9", "--environment", "ci",
            "--attach", str(directory / "run.log"),
        ),
        "sbom": ok(env, "attest", "sbom", str(FIXTURES / "sbom" / "cyclonedx-py-1.6.json"), *RELEASE),
        "vex": ok(env, "attest", "vex", str(FIXTURES / "sbom" / "vex" / "openvex-0.2.0.json"), *RELEASE),
        "anomaly": ok(
            env, "record", "anomaly", PRODUCT, VERSION, "--anomaly-id", "ANOM-7",
            "--description", "High results are flagged NORMAL", "--requirement", "REQ-2",
            "--requirement", "RC-1", "--test", "test_analyzer::test_flags_result_above_reference_range",
            "--evaluation", "Results above 30 mmol/L only; the analyzer's range ends at 25",
            "--justification", "Fixed in 3.1.1", *SUBJECT, "--attach", str(directory / "evaluation.txt"),
        ),
        "validation": ok(
            env, "record", "validation", PRODUCT, VERSION, "--objective", "Agreement on the golden panel",
            "--dataset-name", "golden", "--dataset-version", "1", "--dataset-digest", "sha256:" + "9c" * 32,
            "--result", "passed", *SUBJECT, "--attach", str(directory / "validation-report.pdf"),
        ),
    }  # fmt: skip
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "analyzer.tar", "digest": {"sha256": CANDIDATE.removeprefix("sha256:")}}],
        "predicateType": "https://evledger.dev/change/v1",
        "predicate": {
            "release": {"product": PRODUCT, "version": VERSION},
            "change_id": "CHG-9",
            "summary": {"what": "w", "why": "y", "risk": "r", "mitigation": "m"},
            "risk_class": "high",
            "affects_intended_use": False,
            "patient_facing_output": True,
            "components": ["result-calculator"],
            "author": "Dana Reyes",
        },
    }
    (directory / "change.json").write_text(json.dumps(statement))
    outputs["submit"] = ok(
        env, "submit", str(directory / "change.json"), "--attach", str(directory / "extra.txt")
    )
    return outputs


def test_each_command_stores_the_files_its_statement_names(story: Story) -> None:
    outputs = story.outputs
    assert [f["what"] for f in outputs["requirements"]["files"]] == [
        "requirements file",
        "requirements baseline",
    ]
    assert [f["what"] for f in outputs["junit"]["files"]] == ["report", "attachment run.log"]
    assert [f["what"] for f in outputs["sbom"]["files"]] == ["report", "SOUP list"]
    assert [f["what"] for f in outputs["anomaly"]["files"]] == ["attachment evaluation.txt"]
    assert [f["what"] for f in outputs["validation"]["files"]] == ["attachment validation-report.pdf"]
    baseline = outputs["requirements"]["predicate"]
    assert baseline["groups"] == [
        {"type": "system", "risk_class": None, "ids": ["SYS-1"]},
        {"type": "software", "risk_class": "low", "ids": ["REQ-4"]},
        {"type": "software", "risk_class": "medium", "ids": ["REQ-3"]},
        {"type": "software", "risk_class": "high", "ids": ["REQ-1", "REQ-2"]},
        {"type": "risk-control", "risk_class": "high", "ids": ["RC-1", "RC-2"]},
    ]
    run = outputs["junit"]["predicate"]
    assert {r["requirement"]: (r["passed"], r["failed"], r["skipped"]) for r in run["requirements"]} == {
        "REQ-1": (1, 0, 0), "REQ-2": (1, 1, 0), "RC-1": (2, 1, 0), "REQ-3": (2, 0, 1),
    }  # fmt: skip
    log = outputs["junit"]["files"][1]
    assert run["attachments"] == [
        {"name": "run.log", "digest": log["digest"], "size": log["size"]}  # no media type known for .log
    ]
    change = outputs["submit"]["receipts"][0]
    assert change["index"] > outputs["validation"]["receipts"][0]["index"]


def test_the_soup_list_is_stored_as_the_sbom_reads(story: Story) -> None:
    sbom = story.outputs["sbom"]
    predicate = sbom["predicate"]
    assert (predicate["format"], predicate["spec_version"], predicate["components"]) == (
        "CycloneDX",
        "1.6",
        7,
    )
    soup = httpx.get(
        f"{story.url}/v1/blobs/{predicate['soup_list_digest']}", headers=bearer(story.auditor), timeout=30
    )
    assert soup.status_code == 200, soup.text
    parsed = parse_sbom((FIXTURES / "sbom" / "cyclonedx-py-1.6.json").read_bytes())
    assert decode_soup_list(soup.content) == parsed.components
    assert predicate["sbom_digest"] == sbom["report"]["digest"]


def package(story: Story, name: str) -> Path:
    out = story.directory / name
    output = ok(story.env, "dossier", PRODUCT, VERSION, "-o", str(out), "--with-blobs")
    assert output["files"] == [str(out)]
    return out


def named_digests(story: Story) -> set[str]:
    """Every digest the release's statements name as a file, read from the steps' outputs."""
    found = set()
    for output in story.outputs.values():
        predicate = output.get("predicate")
        for stored in output.get("files", []):
            found.add(stored["digest"])
        if predicate and predicate.get("report_digest"):
            found.add(predicate["report_digest"])
    return found


def verify(story: Story, path: Path) -> tuple[int, dict[str, Any]]:
    return evledger(story.env, "verify", str(path), "--key", str(story.ledger.pub_path))


def test_the_audit_package_holds_the_dossier_and_every_named_file_and_verifies(story: Story) -> None:
    path = package(story, "release.zip")
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        for name in names:
            if name != "dossier.json":
                assert hashlib.sha256(archive.read(name)).hexdigest() == name.removeprefix("files/sha256/")
    assert "dossier.json" in names
    members = {"sha256:" + n.removeprefix("files/sha256/") for n in names if n != "dossier.json"}
    assert members == named_digests(story)
    code, output = verify(story, path)
    assert code == 0, output
    assert output["files"]["checked"] is True
    assert len(output["files"]["named"]) == len(members) == 10


def rewritten(source: Path, target: Path, change: Callable[[str, bytes], tuple[str, bytes] | None]) -> Path:
    """A copy of the package with each member passed through `change` (None drops it)."""
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(target, "w") as new:
        for info in old.infolist():
            kept = change(info.filename, old.read(info))
            if kept is not None:
                new.writestr(kept[0], kept[1])
    return target


@pytest.mark.parametrize("how", ["changed", "missing", "added"])
def test_a_package_with_one_file_changed_missing_or_added_is_refused(story: Story, how: str) -> None:
    source = story.directory / "release.zip"
    if not source.exists():
        package(story, "release.zip")
    with zipfile.ZipFile(source) as archive:
        victim = next(n for n in archive.namelist() if n.startswith("files/"))

    def change(name: str, data: bytes) -> tuple[str, bytes] | None:
        if name != victim:
            return name, data
        if how == "changed":
            return name, data[:-1] + bytes([data[-1] ^ 1])
        if how == "missing":
            return None
        return name, data

    target = rewritten(source, story.directory / f"{how}.zip", change)
    if how == "added":
        with zipfile.ZipFile(target, "a") as archive:
            archive.writestr("files/sha256/" + "0" * 64, b"planted")
            archive.writestr("notes.txt", b"by the way")
    code, output = verify(story, target)
    assert code == 1, output
    detail = str(output["detail"])
    expected = {
        "changed": f"altered: sha256:{victim.removeprefix('files/sha256/')}",
        "missing": f"missing: sha256:{victim.removeprefix('files/sha256/')}",
        "added": "not named by any entry: files/sha256/" + "0" * 64,
    }[how]
    assert expected in detail
    if how == "added":
        assert "not named by any entry: notes.txt" in detail


def test_a_damaged_archive_is_refused_not_crashed_on(story: Story) -> None:
    source = story.directory / "release.zip"
    if not source.exists():
        package(story, "release.zip")
    damaged = story.directory / "damaged.zip"
    data = bytearray(source.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged.write_bytes(bytes(data))
    code, output = verify(story, damaged)
    assert code == 1, output
    assert "Traceback" not in json.dumps(output)
    truncated = story.directory / "truncated.zip"
    truncated.write_bytes(bytes(data[: len(data) // 3]))
    code, output = verify(story, truncated)
    assert code == 1, output
    assert "not an intact audit package" in output["detail"]


def test_a_plain_dossier_verifies_and_says_its_files_are_not_checked(story: Story) -> None:
    out = story.directory / "release.dossier.json"
    ok(story.env, "dossier", PRODUCT, VERSION, "-o", str(out))
    code, output = verify(story, out)
    assert code == 0, output
    assert output["files"]["checked"] is False
    assert len(output["files"]["named"]) == 10
    result = runner.invoke(app, ["verify", str(out), "--key", str(story.ledger.pub_path)], env=story.env)
    assert "10 files named, not in a dossier" in result.stdout


def test_a_package_is_not_written_when_the_ledger_lacks_a_named_file(story: Story, tmp_path: Path) -> None:
    # A statement naming a report that was never stored (attest --no-store): the package cannot be complete.
    other = "3.1.1"
    report = FIXTURES / "junit-pytest.xml"
    ok(
        story.env, "attest", "junit", str(report), "--product", PRODUCT, "--version", other, *SUBJECT,
        "--suite", "unit", "--command", "pytest", "--commit", "4f1c2a9", "--environment", "ci", "--no-store",
    )  # fmt: skip
    out = tmp_path / "incomplete.zip"
    code, output = evledger(story.env, "dossier", PRODUCT, other, "-o", str(out), "--with-blobs")
    assert code == 1, output
    digest = f"sha256:{hashlib.sha256(report.read_bytes()).hexdigest()}"
    assert f"{digest} (report of entry" in output["detail"]
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # no partial file left behind


def test_attach_refuses_what_it_cannot_bind(story: Story) -> None:
    foreign = story.directory / "provenance.json"
    foreign.write_text(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": "ab" * 32}}],
                "predicateType": "https://slsa.dev/provenance/v1",
                "predicate": {"buildDefinition": {}, "runDetails": {}},
            }
        )
    )
    code, output = evledger(story.env, "submit", str(foreign), "--attach", str(story.directory / "extra.txt"))
    assert code == 2, output
    assert "own predicate types" in output["detail"]
    twice = ["--attach", str(story.directory / "extra.txt")] * 2
    code, output = evledger(
        story.env, "attest", "sbom", str(FIXTURES / "sbom" / "cyclonedx-py-1.4.json"), *RELEASE, *twice
    )
    assert code == 2, output
    assert "attached twice" in output["detail"]
    code, output = evledger(
        story.env, "attest", "sbom", str(FIXTURES / "sbom" / "cyclonedx-py-1.4.json"), *RELEASE,
        "--attach", str(story.directory / "no-such-file"),
    )  # fmt: skip
    assert code == 2, output
    assert "no-such-file" in output["detail"]


def test_the_traceability_matrix_traces_requirements_to_tests_and_anomalies(story: Story) -> None:
    url = f"{story.url}/v1/releases/{PRODUCT}/{VERSION}/traceability"
    matrix = httpx.get(url, headers=bearer(story.auditor), timeout=30).json()
    assert matrix["candidates"] == [CANDIDATE]
    assert matrix["baseline"]["document_id"] == "SRS-ANALYZER"
    rows = {row["id"]: row for row in matrix["rows"]}
    status = {rid: (row["status"], row["dispositioned"]) for rid, row in rows.items()}
    assert status == {
        "REQ-1": ("verified", True),
        "REQ-2": ("failed", True),  # ANOM-7 names it, after the test run
        "RC-1": ("failed", True),
        "REQ-3": ("incomplete", False),  # its skipped case is dispositioned by nobody
        "REQ-4": ("not-verified", True),
        "RC-2": ("not-verified", True),
        "SYS-1": ("not-verified", True),
    }
    assert rows["REQ-2"]["title"] == "Flag a result outside the reference range, high or low"
    assert rows["REQ-2"]["implements"] == ["RC-1", "RC-2"]
    assert rows["RC-1"]["implemented_by"] == ["REQ-2"]
    anomaly_entry = story.outputs["anomaly"]["receipts"][0]["index"]
    assert rows["REQ-2"]["anomalies"] == [anomaly_entry]
    junit_entry = story.outputs["junit"]["receipts"][0]["index"]
    assert [t["entry"] for t in rows["REQ-3"]["tests"]] == [junit_entry]
    assert matrix["summary"]["requirements"] == 7
    missing = httpx.get(
        f"{story.url}/v1/releases/{PRODUCT}/9.9.9/traceability", headers=bearer(story.auditor), timeout=30
    )
    assert missing.status_code == 404, missing.text
    assert httpx.get(url, headers=bearer("not-a-token"), timeout=30).status_code == 401


def test_the_soup_list_is_served_for_the_release(story: Story) -> None:
    url = f"{story.url}/v1/releases/{PRODUCT}/{VERSION}/soup"
    soup = httpx.get(url, headers=bearer(story.auditor), timeout=30)
    assert soup.status_code == 200, soup.text
    view = soup.json()
    parsed = parse_sbom((FIXTURES / "sbom" / "cyclonedx-py-1.6.json").read_bytes())
    assert view["entry"] == story.outputs["sbom"]["receipts"][0]["index"]
    assert view["subjects"] == [CANDIDATE]
    assert [c["name"] for c in view["components"]] == [c.name for c in parsed.components]
    requests_item = next(c for c in view["components"] if c["name"] == "requests")
    assert requests_item["version"] == "2.32.3"
    assert requests_item["purl"] == "pkg:pypi/requests@2.32.3"
    assert httpx.get(url, headers=bearer("not-a-token"), timeout=30).status_code == 401


def test_the_release_record_shows_the_matrix_and_the_soup_list_from_a_package(story: Story) -> None:
    source = story.directory / "release.zip"
    if not source.exists():
        package(story, "release.zip")
    out = story.directory / "record.pdf"
    key = ["--key", str(story.ledger.pub_path)]
    ok(
        story.env,
        "report",
        PRODUCT,
        VERSION,
        "-o",
        str(out.with_suffix(".html")),
        "--dossier",
        str(source),
        *key,
    )
    ok(story.env, "report", PRODUCT, VERSION, "-o", str(out), "--dossier", str(source), *key)
    out = out.with_suffix(".html")
    html = out.read_text(encoding="utf-8")
    assert "Traceability (IEC 62304" in html
    assert "Flag a result outside the reference range, high or low" in html  # a title, from the package
    assert '<td class="bad">incomplete, not dispositioned</td>' in html  # REQ-3's skipped case: a gap
    assert '<td class="warn">failed</td>' in html  # REQ-2: failed, dispositioned by ANOM-7
    assert '<td class="ok">verified</td>' in html  # REQ-1
    assert "<td>requests</td><td>2.32.3</td>" in html
    plain = story.directory / "release.dossier.json"
    ok(story.env, "dossier", PRODUCT, VERSION, "-o", str(plain))
    bare = story.directory / "record-from-dossier.html"
    ok(story.env, "report", PRODUCT, VERSION, "-o", str(bare), "--dossier", str(plain), *key)
    html = bare.read_text(encoding="utf-8")
    assert "The baseline file is not in this dossier" in html
    assert "The SOUP list file" in html
    assert "Flag a result outside" not in html


def test_a_policy_requiring_traceability_finds_what_the_release_lacks(story: Story) -> None:
    # Published last: from here on this policy is in force for the module's ledger.
    strict = POLICY_FILE.read_text(encoding="utf-8")
    strict = strict.replace("# require_sbom = true", "require_sbom = true")
    strict = strict.replace("# require_anomaly_disposition = true", "require_anomaly_disposition = true")
    strict = strict.replace("# [tiers.high.coverage]", "[tiers.high.coverage]")
    strict = strict.replace('# types = ["software", "risk-control"]', 'types = ["software", "risk-control"]')
    strict = strict.replace("# risk_classes = [", "risk_classes = [")
    strict = strict.replace("# [classification.components]", "[classification.components]")
    strict = strict.replace('# "result-calculator" = "high"', '"result-calculator" = "high"')
    strict = strict.replace('# "report-renderer" = "medium"', '"report-renderer" = "medium"')
    strict = strict.replace('version = "', 'version = "9', 1)
    policy = story.directory / "strict.toml"
    policy.write_text(strict, encoding="utf-8")
    admin = [
        "--key",
        str(story.ledger.key_path),
        "--server",
        story.url,
        "--token",
        token(story.ledger.dsn, "admin"),
    ]
    ok({}, "policy", "publish", str(policy), *admin)
    low = story.directory / "low-change.json"
    change = json.loads((story.directory / "change.json").read_text())
    change["predicate"].update(
        release={"product": PRODUCT, "version": "3.2.0"}, change_id="CHG-10", risk_class="low"
    )
    low.write_text(json.dumps(change))
    ok(story.env, "submit", str(low))

    def findings(version: str) -> dict[str, list[dict[str, Any]]]:
        url = f"{story.url}/v1/releases/{PRODUCT}/{version}/compliance"
        answer = httpx.get(url, headers=bearer(story.auditor), timeout=30)
        assert answer.status_code == 200, answer.text
        found: dict[str, list[dict[str, Any]]] = {}
        for finding in answer.json()["findings"]:
            found.setdefault(finding["rule"], []).append(finding)
        return found

    high = findings(VERSION)
    assert "sbom.required" not in high  # the SBOM of the candidate is recorded
    coverage = high["requirements.coverage"]
    assert [f["status"] for f in coverage] == ["missing"]
    assert coverage[0]["message"].endswith("): RC-2")  # the one selected requirement without a pass
    assert "REQ-4" not in coverage[0]["message"]  # low: not selected
    assert "REQ-3" not in coverage[0]["message"]  # its skipped case is no gap in coverage: two passed
    anomalies = high["anomalies.dispositioned"]
    assert [f["status"] for f in anomalies] == ["fail"]
    assert "REQ-3" in anomalies[0]["message"]
    assert "REQ-2" not in anomalies[0]["message"]
    assert anomalies[0]["entries"] == [story.outputs["junit"]["receipts"][0]["index"]]
    assert "change.component-risk" not in high  # the change is high, as result-calculator requires
    classified = findings("3.2.0")["change.component-risk"]
    assert [f["status"] for f in classified] == ["fail"]
    assert "result-calculator" in classified[0]["message"]


def test_bad_input_and_wrong_tokens_are_refused_before_anything_is_stored(story: Story) -> None:
    junit = REQUIREMENTS / "junit-pytest-requirements.xml"
    sbom = FIXTURES / "sbom" / "sbom4python-spdx-2.3.json"
    before = tree_size(story)
    refusals = [
        (["attest", "sbom", str(junit), *RELEASE], "SBOM"),  # XML is no SBOM
        (["attest", "vex", str(sbom), *RELEASE], "VEX"),  # an SBOM is no VEX document
        (["record", "requirements", PRODUCT, VERSION, str(REQUIREMENTS / "baseline.csv")], "document"),
        (
            ["record", "anomaly", PRODUCT, VERSION, "--anomaly-id", "A", "--description", "d",
             "--requirement", "REQ-1", "--evaluation", " ", "--justification", "j", *SUBJECT],
            "--evaluation",
        ),
        (["attest", "sbom", str(sbom), "--product", "other-product", "--version", "1", *SUBJECT], "403"),
    ]  # fmt: skip
    for args, message in refusals:
        code, output = evledger(story.env, *args)
        assert code == 2, (args, output)
        assert message in output["detail"], (args, output)
    assert tree_size(story) == before  # nothing appended
    stored = httpx.get(
        f"{story.url}/v1/blobs/sha256:{hashlib.sha256(sbom.read_bytes()).hexdigest()}",
        headers=bearer(story.auditor),
        timeout=30,
    )
    assert stored.status_code == 404  # the refused SBOM was not stored for another product
    code, output = evledger(
        {**story.env, "EVLEDGER_TOKEN": "not-a-token"}, "attest", "sbom", str(sbom), *RELEASE
    )
    assert code == 2, output
    assert output["error"] == "unauthenticated"


def tree_size(story: Story) -> int:
    checkpoint = httpx.get(f"{story.url}/v1/checkpoint", headers=bearer(story.auditor), timeout=30)
    assert checkpoint.status_code == 200, checkpoint.text
    return int(checkpoint.text.split("\n")[1])
