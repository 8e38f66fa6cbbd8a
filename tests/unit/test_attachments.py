"""Evidence files a predicate binds by digest (ledger.records.attachments); the predicates of issue #14."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.errors import EncodingError, InputError
from ledger.records import predicates as p
from ledger.records.attachments import attachment_of, referenced_files, with_attachments

EXAMPLES: dict[str, dict[str, Any]] = json.loads(
    (Path(__file__).parent / "fixtures" / "predicate-examples.json").read_text(encoding="utf-8")
)["examples"]
PDF = attachment_of("validation-report.pdf", b"%PDF-1.7 ...")
GOOD = PDF.digest
NO_TESTS = {"passed": 1, "failed": 0, "skipped": 0}


def example(predicate_type: str, **changes: Any) -> dict[str, Any]:
    value = copy.deepcopy(EXAMPLES[predicate_type])
    value.update(changes)
    return value


def test_an_attachment_is_named_by_the_sha256_of_its_bytes_with_a_guessed_media_type() -> None:
    assert PDF.digest == f"sha256:{hashlib.sha256(b'%PDF-1.7 ...').hexdigest()}"
    assert (PDF.size, PDF.media_type) == (12, "application/pdf")
    assert attachment_of("run.log", b"", "text/x-log").media_type == "text/x-log"
    assert attachment_of("data.unknownext", b"x").media_type is None


@pytest.mark.parametrize("name", ["", "n" * 257])
def test_an_attachment_needs_a_name_of_1_to_256_characters(name: str) -> None:
    with pytest.raises(InputError, match="1 to 256"):
        attachment_of(name, b"x")


def test_every_file_a_predicate_names_is_listed_once_with_what_it_is() -> None:
    sbom = p.decode_predicate(p.SBOM, example(p.SBOM, attachments=[p.msgspec.to_builtins(PDF)]))
    assert [(f.digest, f.what) for f in referenced_files(sbom)] == [
        (EXAMPLES[p.SBOM]["sbom_digest"], "SBOM"),
        (EXAMPLES[p.SBOM]["soup_list_digest"], "SOUP list"),
        (PDF.digest, "attachment validation-report.pdf"),
    ]
    run = p.decode_predicate(p.TEST_RUN, example(p.TEST_RUN))
    assert [f.what for f in referenced_files(run)] == ["report"]
    baseline = p.decode_predicate(p.REQUIREMENTS, example(p.REQUIREMENTS))
    assert [f.what for f in referenced_files(baseline)] == ["requirements baseline", "requirements file"]
    report = EXAMPLES[p.TEST_RUN]["report_digest"]
    twice = [{"name": "again.xml", "digest": report, "size": 1}]
    same = example(p.TEST_RUN, attachments=twice)
    assert len(referenced_files(p.decode_predicate(p.TEST_RUN, same))) == 1  # one digest, listed once
    assert referenced_files(None) == []
    assert referenced_files(p.decode_predicate(p.RELEASE_SEAL, example(p.RELEASE_SEAL))) == []


def test_attachments_are_added_after_those_listed_each_digest_once() -> None:
    listed = example(p.VALIDATION)
    first = listed["attachments"][0]
    log = attachment_of("run.txt", b"log")
    again = p.Attachment(first["name"], first["digest"], first["size"], first["media_type"])
    added = with_attachments(listed, [again, log])
    assert added["attachments"] == [
        first,
        {"name": "run.txt", "digest": log.digest, "size": 3, "media_type": "text/plain"},
    ]
    assert with_attachments(listed, []) is listed
    with pytest.raises(InputError, match="must be a list"):
        with_attachments({"attachments": "x"}, [log])


@pytest.mark.parametrize(
    ("predicate_type", "changes", "message"),
    [
        (p.VALIDATION, {"attachments": [{"name": "a", "digest": "sha256:AB", "size": 1}]}, "not sha256"),
        (
            p.VALIDATION,
            {"attachments": [{"name": "", "digest": PDF.digest, "size": 1}]},
            "a name of 1 to 256",
        ),
        (p.VALIDATION, {"attachments": [{"name": "a", "digest": PDF.digest, "size": -1}]}, "size >= 0"),
        (p.VALIDATION, {"attachments": [{"name": "a", "digest": PDF.digest}]}, "invalid"),
        (p.SBOM, {"soup_list_digest": "md5:00"}, "not sha256"),
        (p.SBOM, {"components": -1}, "counts must be >= 0"),
        (p.SBOM, {"format": "SWID"}, "invalid"),
        (
            p.VEX,
            {"statements": [{"vulnerability": "CVE-1", "products": ["p"], "status": "maybe"}]},
            "invalid",
        ),
        (p.REQUIREMENTS, {"groups": []}, "at least one"),
        (p.REQUIREMENTS, {"groups": [{"type": "software", "risk_class": None, "ids": ["A", "A"]}]}, "once"),
        (p.REQUIREMENTS, {"groups": [{"type": "hardware", "risk_class": None, "ids": ["A"]}]}, "invalid"),
        (p.REQUIREMENTS, {"groups": [{"type": "software", "risk_class": "severe", "ids": ["A"]}]}, "invalid"),
        (p.ANOMALY, {"requirements": []}, "an anomaly needs"),
        (p.ANOMALY, {"justification": "  "}, "an anomaly needs"),
        (
            p.TEST_RUN,
            {"requirements": [{"requirement": "R", "passed": -1, "failed": 0, "skipped": 0}]},
            ">= 0",
        ),
        (
            p.TEST_RUN,
            {"requirements": [{"requirement": " ", "passed": 1, "failed": 0, "skipped": 0}]},
            "its id",
        ),
        (p.SEAL, {"attachments": []}, "invalid")
        if hasattr(p, "SEAL")
        else (p.RELEASE_SEAL, {"attachments": []}, "invalid"),
    ],
)
def test_malformed_predicates_of_issue_14_are_refused(
    predicate_type: str, changes: dict[str, Any], message: str
) -> None:
    with pytest.raises(EncodingError, match=message):
        p.decode_predicate(predicate_type, example(predicate_type, **changes))
