"""Shared by the `evledger attest` converter tests: fixtures, arguments, and the admission decode path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ledger.records.attest import statement_from_junit, statement_from_sarif
from ledger.records.predicates import SCAN, TEST_RUN, Scan, decode_predicate
from ledger.records.predicates import TestRun as RunPredicate  # a "Test*" name would be collected
from ledger.records.statement import decode_statement, release_of

FIXTURES = Path(__file__).parent / "fixtures"
DIGEST = "sha256:" + "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"
RUN = {
    "product": "ivd-analyzer",
    "version": "2.4.0",
    "subject_name": "analyzer.tar",
    "subject_digest": DIGEST,
}
JUNIT_RUN = {**RUN, "suite": "regression", "command": "pytest", "commit": "4f1c2a9", "environment": "ci"}


def admitted(payload: bytes, predicate_type: str) -> Any:
    """What admission decodes: the statement, its release, and the predicate of our type."""
    statement = decode_statement(payload)
    assert statement.predicate_type == predicate_type
    assert release_of(statement) == ("ivd-analyzer", "2.4.0")
    assert [(s.name, s.digest) for s in statement.subject] == [("analyzer.tar", {"sha256": DIGEST[7:]})]
    return decode_predicate(predicate_type, statement.predicate)


def junit(xml: bytes, **overrides: Any) -> RunPredicate:
    run = admitted(statement_from_junit(xml, **{**JUNIT_RUN, **overrides}), TEST_RUN)
    assert isinstance(run, RunPredicate)
    return run


def scan(data: bytes) -> Scan:
    value = admitted(statement_from_sarif(data, **RUN), SCAN)
    assert isinstance(value, Scan)
    return value


def cases(*children: str, root: str = "testsuite") -> bytes:
    body = "".join(
        f'<testcase classname="t" name="c{n}">{child}</testcase>' for n, child in enumerate(children)
    )
    return f'<?xml version="1.0" encoding="UTF-8"?><{root}>{body}</{root}>'.encode()


def sarif(results: list[dict[str, Any]], rules: list[dict[str, Any]] | None = None, **driver: Any) -> bytes:
    tool = {"driver": {"name": "scanner", **driver, "rules": rules or []}}
    return json.dumps({"version": "2.1.0", "runs": [{"tool": tool, "results": results}]}).encode()


def findings(data: bytes) -> tuple[int, int, int, int, int]:
    f = scan(data).findings
    return f.critical, f.high, f.medium, f.low, f.info
