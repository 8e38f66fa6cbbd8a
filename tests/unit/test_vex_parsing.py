"""VEX parsing (ledger/records/vex.py): OpenVEX v0.2.0 and CycloneDX VEX into VEX statements.

The fixtures (tests/unit/fixtures/sbom/vex, README.md beside them) are written by
hand after the spec examples and speak of the purls and bom-refs of the SBOM
fixtures. Hand-written documents check each rule and each refusal.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import EncodingError, TooLargeError
from ledger.records.sbom import MAX_SBOM_BYTES, parse_sbom
from ledger.records.vex import (
    MAX_DETAIL_CHARS,
    ParsedVex,
    VexStatement,
    parse_vex,
    vex_summary,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sbom"
OPENVEX_FIXTURE = FIXTURES / "vex" / "openvex-0.2.0.json"
CYCLONEDX_FIXTURE = FIXTURES / "vex" / "cyclonedx-1.5-vex.json"
REQUESTS = "pkg:pypi/requests@2.32.3"
URLLIB3 = "pkg:pypi/urllib3@2.8.0"
SUPPORTED = re.escape("OpenVEX v0.2.0 JSON (@context) or CycloneDX JSON 1.4, 1.5 or 1.6 (bomFormat)")


def openvex(statements: list[Any], /, **extra: Any) -> bytes:
    """A minimal OpenVEX v0.2.0 document."""
    document = {
        "@context": "https://openvex.dev/ns/v0.2.0",
        "@id": "https://example.com/vex/1",
        "author": "Tester",
        "timestamp": "2026-12-05T00:00:00Z",
        "version": 1,
        "statements": statements,
    }
    document.update(extra)
    return json.dumps(document).encode()


def statement(status: str = "fixed", products: Any = None, **fields: Any) -> dict[str, Any]:
    """An OpenVEX statement about CVE-2024-0001 in requests."""
    chosen = [{"@id": REQUESTS}] if products is None else products
    return {"vulnerability": {"name": "CVE-2024-0001"}, "products": chosen, "status": status, **fields}


def cdx_vex(vulnerabilities: Any, /, spec: str = "1.5", **extra: Any) -> bytes:
    """A minimal CycloneDX BOM with VEX, its one component requests (bom-ref "req")."""
    document = {
        "bomFormat": "CycloneDX",
        "specVersion": spec,
        "version": 1,
        "components": [{"bom-ref": "req", "type": "library", "name": "requests", "purl": REQUESTS}],
        "vulnerabilities": vulnerabilities,
    }
    document.update(extra)
    return json.dumps(document).encode()


def vulnerability(**fields: Any) -> dict[str, Any]:
    """A CycloneDX vulnerability CVE-2024-0001 affecting requests."""
    return {"id": "CVE-2024-0001", "affects": [{"ref": "req"}], **fields}


def only(data: bytes) -> VexStatement:
    parsed = parse_vex(data)
    assert len(parsed.statements) == 1, parsed.statements
    return parsed.statements[0]


# --- the fixtures ---------------------------------------------------------------------------------------


def test_openvex_fixture():
    parsed = parse_vex(OPENVEX_FIXTURE.read_bytes())
    assert (parsed.format, parsed.spec_version) == ("OpenVEX", "0.2.0")
    assert parsed.author == "Example Medical GmbH Product Security <psirt@example.com>"
    assert parsed.statements == (
        VexStatement("CVE-2024-35195", [REQUESTS], "fixed"),
        VexStatement("CVE-2024-3651", ["pkg:pypi/idna@3.20"], "fixed"),  # from identifiers.purl
        VexStatement(
            "CVE-2024-47081",
            [REQUESTS],
            "affected",
            None,
            "Upgrade requests to 2.32.4 or later in pump-ui 1.4.1; until then no .netrc file is installed "
            "on the device.",
        ),
        VexStatement("CVE-2025-50181", [URLLIB3], "under_investigation"),
        # the product and its subcomponent, sorted
        VexStatement(
            "CVE-2025-50182",
            ["pkg:pypi/pump-ui@1.4.0", URLLIB3],
            "not_affected",
            "vulnerable_code_not_in_execute_path",
            "The flaw is in urllib3's Pyodide (browser) transport; pump-ui runs on CPython only.",
        ),
    )
    assert vex_summary(parsed.statements) == {
        "not_affected": 1,
        "affected": 1,
        "fixed": 2,
        "under_investigation": 1,
    }


def test_cyclonedx_vex_fixture():
    parsed = parse_vex(CYCLONEDX_FIXTURE.read_bytes())
    assert (parsed.format, parsed.spec_version) == ("CycloneDX", "1.5")
    assert parsed.author == "Example Medical GmbH Product Security"
    assert parsed.statements == (
        VexStatement(
            "CVE-2023-32681",
            [REQUESTS],
            "not_affected",  # false_positive
            None,
            "Fixed in requests 2.31.0; the scanner matched the version range wrongly.",
        ),
        VexStatement("CVE-2024-35195", [REQUESTS], "fixed"),  # resolved; affects by BOM-Link
        VexStatement(
            "CVE-2024-47081",
            [REQUESTS],
            "affected",  # exploitable
            None,
            "requests 2.32.3 may leak .netrc credentials to a third party; upgrade to 2.32.4.",
        ),
        # no analysis: under investigation; two components, sorted
        VexStatement("CVE-2025-50181", ["pkg:pypi/charset-normalizer@3.5.3", URLLIB3], "under_investigation"),
        VexStatement(
            "CVE-2025-50182",
            [URLLIB3],
            "not_affected",
            "code_not_reachable",
            "Only urllib3's Pyodide transport is affected; pump-ui runs on CPython.",
        ),
        # in_triage; the root component has no purl, so its bom-ref stays
        VexStatement("PUMP-2026-0001", ["root-component"], "under_investigation"),
    )
    assert vex_summary(parsed.statements) == {
        "not_affected": 2,
        "affected": 1,
        "fixed": 1,
        "under_investigation": 2,
    }


def test_vex_products_are_purls_of_the_sbom_fixtures():
    purls = {c.purl for c in parse_sbom((FIXTURES / "cyclonedx-py-1.5.json").read_bytes()).components}
    for path in (OPENVEX_FIXTURE, CYCLONEDX_FIXTURE):
        products = {p for s in parse_vex(path.read_bytes()).statements for p in s.products}
        assert products - purls <= {"pkg:pypi/pump-ui@1.4.0", "root-component"}
        assert REQUESTS in products


@pytest.mark.parametrize("path", [OPENVEX_FIXTURE, CYCLONEDX_FIXTURE])
def test_a_utf8_byte_order_mark_is_ignored(path):
    data = path.read_bytes()
    assert parse_vex(b"\xef\xbb\xbf" + data) == parse_vex(data)


# --- OpenVEX rules ---------------------------------------------------------------------------------------


def test_openvex_unversioned_context_is_read_as_v0_2_0():
    parsed = parse_vex(openvex([statement()], **{"@context": "https://openvex.dev/ns"}))
    assert parsed == ParsedVex(
        "OpenVEX", "0.2.0", "Tester", (VexStatement("CVE-2024-0001", [REQUESTS], "fixed"),)
    )


@pytest.mark.parametrize(
    ("product", "ids"),
    [
        ({"@id": "pkg:a", "identifiers": {"purl": "pkg:b"}}, ["pkg:a"]),
        ({"identifiers": {"purl": "pkg:b", "cpe23": "cpe:2.3:a:x:y:1"}}, ["pkg:b"]),
        ({"identifiers": {"cpe23": "cpe:2.3:a:x:y:1", "cpe22": "cpe:/a:x:y:1"}}, ["cpe:2.3:a:x:y:1"]),
        ({"identifiers": {"cpe22": "cpe:/a:x:y:1"}, "hashes": {"sha-256": "00"}}, ["cpe:/a:x:y:1"]),
        (
            {"@id": "pkg:p", "subcomponents": [{"@id": "pkg:s2"}, {"identifiers": {"purl": "pkg:s1"}}]},
            ["pkg:p", "pkg:s1", "pkg:s2"],
        ),
    ],
)
def test_openvex_product_ids(product, ids):
    assert only(openvex([statement(products=[product])])).products == ids


def test_openvex_products_are_deduplicated_and_sorted():
    products = [{"@id": "pkg:b"}, {"@id": "pkg:a", "subcomponents": [{"@id": "pkg:b"}]}, {"@id": "pkg:a"}]
    assert only(openvex([statement(products=products)])).products == ["pkg:a", "pkg:b"]


def test_openvex_vulnerability_by_name_else_id():
    by_id = statement()
    by_id["vulnerability"] = {"@id": "https://osv.dev/GHSA-xxxx"}
    both = statement()
    both["vulnerability"] = {"@id": "https://nvd.nist.gov/vuln/detail/CVE-2024-9", "name": "CVE-2024-9"}
    parsed = parse_vex(openvex([by_id, both]))
    assert [s.vulnerability for s in parsed.statements] == ["CVE-2024-9", "https://osv.dev/GHSA-xxxx"]


@pytest.mark.parametrize(
    ("fields", "justification", "detail"),
    [
        ({"status": "not_affected", "justification": "component_not_present"}, "component_not_present", None),
        ({"status": "not_affected", "impact_statement": "not called"}, None, "not called"),
        (
            {
                "status": "not_affected",
                "justification": "inline_mitigations_already_exist",
                "impact_statement": "i",
            },
            "inline_mitigations_already_exist",
            "i",
        ),
        ({"status": "affected", "action_statement": "upgrade", "impact_statement": "i"}, None, "upgrade"),
        ({"status": "fixed", "impact_statement": "i", "action_statement": "a"}, None, "i"),
        ({"status": "under_investigation", "action_statement": "wait"}, None, "wait"),
    ],
)
def test_openvex_justification_and_detail(fields, justification, detail):
    value = only(openvex([statement(**fields)]))
    assert (value.status, value.justification, value.detail) == (fields["status"], justification, detail)


def test_statements_are_sorted_by_vulnerability_then_products():
    statements = [
        {**statement(products=[{"@id": "pkg:b"}]), "vulnerability": {"name": "CVE-2"}},
        {**statement(products=[{"@id": "pkg:a"}]), "vulnerability": {"name": "CVE-2"}},
        {**statement(products=[{"@id": "pkg:z"}]), "vulnerability": {"name": "CVE-1"}},
    ]
    parsed = parse_vex(openvex(statements))
    assert [(s.vulnerability, s.products) for s in parsed.statements] == [
        ("CVE-1", ["pkg:z"]),
        ("CVE-2", ["pkg:a"]),
        ("CVE-2", ["pkg:b"]),
    ]


def test_an_empty_openvex_document_has_no_statements():
    parsed = parse_vex(openvex([]))
    assert parsed.statements == ()
    assert vex_summary(parsed.statements) == {
        "not_affected": 0,
        "affected": 0,
        "fixed": 0,
        "under_investigation": 0,
    }


# --- CycloneDX rules -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("analysis", "status"),
    [
        ({"state": "resolved"}, "fixed"),
        ({"state": "resolved_with_pedigree"}, "fixed"),
        ({"state": "exploitable"}, "affected"),
        ({"state": "in_triage"}, "under_investigation"),
        ({"state": "false_positive"}, "not_affected"),
        ({"state": "not_affected"}, "not_affected"),
        ({"detail": "no state yet"}, "under_investigation"),
        (None, "under_investigation"),
    ],
)
def test_cyclonedx_states_map_to_openvex_statuses(analysis, status):
    fields = {} if analysis is None else {"analysis": analysis}
    assert only(cdx_vex([vulnerability(**fields)])).status == status


@pytest.mark.parametrize("spec", ["1.4", "1.5", "1.6"])
def test_cyclonedx_versions(spec):
    analysis = {
        "state": "not_affected",
        "justification": "protected_at_runtime",
        "detail": " sandboxed ",
        "response": [],
    }
    parsed = parse_vex(cdx_vex([vulnerability(analysis=analysis)], spec=spec))
    assert parsed.spec_version == spec
    assert parsed.statements == (
        VexStatement("CVE-2024-0001", [REQUESTS], "not_affected", "protected_at_runtime", "sandboxed"),
    )


@pytest.mark.parametrize(
    ("ref", "product"),
    [
        ("req", REQUESTS),
        ("nested", "pkg:npm/nested@1"),
        ("app", "pkg:generic/app@2"),
        ("urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#req", REQUESTS),
        ("urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#a%20b", "pkg:npm/space@1"),
        (
            "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#unknown",
            "urn:cdx:3e671687-395b-41f5-a30f-a58921a69b79/1#unknown",
        ),
        ("nopurl", "nopurl"),
        ("elsewhere", "elsewhere"),
    ],
)
def test_cyclonedx_affects_refs_resolve_to_purls(ref, product):
    components = [
        {"bom-ref": "req", "name": "requests", "purl": REQUESTS},
        {"bom-ref": "nopurl", "name": "x"},
        {
            "bom-ref": "outer",
            "name": "o",
            "components": [{"bom-ref": "nested", "name": "n", "purl": "pkg:npm/nested@1"}],
        },
        {"bom-ref": "a b", "name": "s", "purl": "pkg:npm/space@1"},
    ]
    metadata = {"component": {"bom-ref": "app", "name": "app", "purl": "pkg:generic/app@2"}}
    data = cdx_vex([vulnerability(affects=[{"ref": ref}])], components=components, metadata=metadata)
    assert only(data).products == [product]


def test_cyclonedx_vex_without_components_keeps_the_refs():
    data = cdx_vex(
        [vulnerability(affects=[{"ref": "b"}, {"ref": "a"}, {"ref": "b", "versions": []}])], components=[]
    )
    assert only(data).products == ["a", "b"]


@pytest.mark.parametrize(
    ("metadata", "author"),
    [
        ({"authors": [{"name": "Alice"}, {"email": "x@example.com"}, {"name": "Bob"}]}, "Alice, Bob"),
        ({"authors": [], "manufacturer": {"name": "Maker"}, "supplier": {"name": "Supplier"}}, "Maker"),
        ({"manufacture": {"name": "Old Maker"}, "supplier": {"name": "Supplier"}}, "Old Maker"),
        ({"supplier": {"name": "Supplier"}}, "Supplier"),
        ({"supplier": {"url": ["https://example.com"]}}, None),
        ({}, None),
    ],
)
def test_cyclonedx_author(metadata, author):
    assert parse_vex(cdx_vex([], metadata=metadata)).author == author


def test_an_empty_cyclonedx_vulnerabilities_array_has_no_statements():
    assert parse_vex(cdx_vex([])) == ParsedVex("CycloneDX", "1.5", None, ())


# --- refusals --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "VEX document is not a JSON object"),
        (b"{", "VEX document is not a JSON object"),
        (b"[]", "VEX document is not a JSON object"),
        (b"null", "VEX document is not a JSON object"),
        (b'{"@context": "https://openvex.dev/ns/v0.2.0"}\x00', "VEX document is not a JSON object"),
        (b'{"statements": []}', "neither an OpenVEX @context nor bomFormat"),
        (b'{"@context": "https://example.com/ns", "statements": []}', "neither an OpenVEX @context"),
        (b'{"@context": ["https://openvex.dev/ns"], "statements": []}', "neither an OpenVEX @context"),
        (b'{"document": {"category": "csaf_vex"}}', "neither an OpenVEX @context"),
        (b'{"bomFormat": "SPDX", "specVersion": "1.5"}', "bomFormat 'SPDX' is not CycloneDX"),
        (
            b'{"bomFormat": "CycloneDX", "specVersion": "1.2", "vulnerabilities": []}',
            "specVersion '1.2' is not supported",
        ),
        (
            b'{"bomFormat": "CycloneDX", "specVersion": "1.3", "vulnerabilities": []}',
            "specVersion '1.3' is not supported",
        ),
        (
            b'{"bomFormat": "CycloneDX", "specVersion": "1.7", "vulnerabilities": []}',
            "specVersion '1.7' is not supported",
        ),
        (b'{"bomFormat": "CycloneDX", "vulnerabilities": []}', "specVersion None is not supported"),
    ],
)
def test_unsupported_documents_are_refused_naming_the_supported_formats(data, message):
    with pytest.raises(EncodingError, match=SUPPORTED) as caught:
        parse_vex(data)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "context", ["https://openvex.dev/ns/v0.0.1", "https://openvex.dev/ns/v0.1.0", "https://openvex.dev/nsx"]
)
def test_other_openvex_versions_are_refused(context):
    with pytest.raises(
        EncodingError, match=re.escape(f"OpenVEX document: @context {context!r} is not supported")
    ):
        parse_vex(openvex([statement()], **{"@context": context}))


@pytest.mark.parametrize(
    ("statements", "message"),
    [
        (
            [statement("not_affected")],
            "statements[0] (CVE-2024-0001) is not_affected without a justification or an impact_statement",
        ),
        (
            [statement(), statement("not_affected", impact_statement="  ")],
            "statements[1] (CVE-2024-0001) is not_affected without",
        ),
        ([statement("affected")], "statements[0] (CVE-2024-0001) is affected without an action_statement"),
        (
            [statement("affected", impact_statement="i", justification="component_not_present")],
            "is affected without an action_statement",
        ),
        ([statement(products=[])], "statements[0] (CVE-2024-0001) names no product"),
        ([{k: v for k, v in statement().items() if k != "products"}], "names no product"),
        (
            [statement(products=[{"hashes": {"sha-256": "00"}}])],
            "statements[0].products[0] has no @id and no purl or cpe identifier",
        ),
        (
            [statement(products=[{"@id": "p", "subcomponents": [{}]}])],
            "statements[0].products[0].subcomponents[0] has no @id",
        ),
        ([statement(products=[{"@id": " "}])], "products[0] has no @id"),
        (
            [{**statement(), "vulnerability": {"description": "no name"}}],
            "statements[0].vulnerability has no name",
        ),
        (
            [{**statement(), "vulnerability": "CVE-2024-0001"}],
            "Expected `object`, got `str` - at `$.statements[0].vulnerability`",
        ),
        (
            [{k: v for k, v in statement().items() if k != "vulnerability"}],
            "missing required field `vulnerability`",
        ),
        ([{k: v for k, v in statement().items() if k != "status"}], "missing required field `status`"),
        ([statement("exploitable")], "Invalid enum value 'exploitable' - at `$.statements[0].status`"),
        (
            [statement("not_affected", justification="code_not_reachable")],
            "Invalid enum value 'code_not_reachable'",
        ),
        ([statement(products=["pkg:pypi/requests@2.32.3"])], "at `$.statements[0].products[0]`"),
        ([statement(products={"@id": "x"})], "at `$.statements[0].products`"),
        (
            [statement(products=[{"@id": "x", "identifiers": {"purl": 1}}])],
            "at `$.statements[0].products[0].identifiers[...]`",
        ),
        ([statement(action_statement=5)], "at `$.statements[0].action_statement`"),
        (
            [statement(vulnerability={"name": "x" * 1025})],
            "statements[0].vulnerability.name is 1025 characters",
        ),
        ([statement(products=[{"@id": "p" * 1025}])], "statements[0].products[0].@id is 1025 characters"),
        (
            [statement("affected", action_statement="a" * (MAX_DETAIL_CHARS + 1))],
            "statements[0].action_statement is 16385",
        ),
        (
            [statement("not_affected", impact_statement="i" * (MAX_DETAIL_CHARS + 1))],
            "statements[0].impact_statement is 16385",
        ),
    ],
)
def test_invalid_openvex_statements_are_refused(statements, message):
    with pytest.raises(EncodingError, match=r"^OpenVEX document: ") as caught:
        parse_vex(openvex(statements))
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"author": None}, "at `$.author`"),
        ({"statements": None}, "at `$.statements`"),
        ({"statements": {}}, "at `$.statements`"),
    ],
)
def test_invalid_openvex_documents_are_refused(document, message):
    with pytest.raises(EncodingError, match=r"^OpenVEX document: ") as caught:
        parse_vex(openvex([statement()], **document))
    assert message in str(caught.value)


@pytest.mark.parametrize("field", ["author", "statements"])
def test_openvex_documents_need_an_author_and_statements(field):
    document = json.loads(openvex([statement()]))
    del document[field]
    with pytest.raises(EncodingError, match=f"missing required field `{field}`"):
        parse_vex(json.dumps(document).encode())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            json.dumps({"bomFormat": "CycloneDX", "specVersion": "1.5", "components": []}).encode(),
            "has no vulnerabilities array, so it is no VEX",
        ),
        (cdx_vex(None), "has no vulnerabilities array"),
        (cdx_vex({}), "at `$.vulnerabilities`"),
        (cdx_vex([{"affects": [{"ref": "req"}]}]), "vulnerabilities[0].id is missing"),
        (cdx_vex([vulnerability(), vulnerability(id=" ")]), "vulnerabilities[1].id is missing"),
        (cdx_vex([vulnerability(affects=[])]), "vulnerabilities[0] (CVE-2024-0001) has no affects"),
        (cdx_vex([{"id": "CVE-2024-0001"}]), "has no affects: it names no component"),
        (
            cdx_vex([vulnerability(affects=[{"versions": []}])]),
            "missing required field `ref` - at `$.vulnerabilities[0].affects[0]`",
        ),
        (cdx_vex([vulnerability(affects=[{"ref": ""}])]), "vulnerabilities[0].affects[0].ref is empty"),
        (cdx_vex([vulnerability(affects=[{"ref": 3}])]), "at `$.vulnerabilities[0].affects[0].ref`"),
        (cdx_vex([vulnerability(affects={"ref": "req"})]), "at `$.vulnerabilities[0].affects`"),
        (
            cdx_vex([vulnerability(analysis={"state": "fixed"})]),
            "Invalid enum value 'fixed' - at `$.vulnerabilities[0].analysis.state`",
        ),
        (
            cdx_vex(
                [vulnerability(analysis={"state": "not_affected", "justification": "component_not_present"})]
            ),
            "Invalid enum value 'component_not_present'",
        ),
        (cdx_vex([vulnerability(analysis="not_affected")]), "at `$.vulnerabilities[0].analysis`"),
        (cdx_vex([vulnerability(analysis={"detail": ["x"]})]), "at `$.vulnerabilities[0].analysis.detail`"),
        (cdx_vex([vulnerability(id=7)]), "at `$.vulnerabilities[0].id`"),
        (cdx_vex([vulnerability(id="C" * 1025)]), "vulnerabilities[0].id is 1025 characters"),
        (
            cdx_vex([vulnerability(affects=[{"ref": "r" * 1025}])]),
            "vulnerabilities[0].affects[0].ref is 1025 characters",
        ),
        (
            cdx_vex([vulnerability(analysis={"detail": "d" * (MAX_DETAIL_CHARS + 1)})]),
            "analysis.detail is 16385 characters",
        ),
        (cdx_vex([], components=[{"bom-ref": 1}]), "at `$.components[0].bom-ref`"),
        (cdx_vex([], metadata={"authors": "Alice"}), "at `$.metadata.authors`"),
        (cdx_vex([], metadata={"authors": [{"name": "a" * 1025}]}), "metadata.authors is 1025 characters"),
    ],
)
def test_invalid_cyclonedx_vex_is_refused(data, message):
    with pytest.raises(EncodingError, match=r"^CycloneDX VEX: ") as caught:
        parse_vex(data)
    assert message in str(caught.value)


def test_texts_at_their_limits_are_kept():
    long_id, long_detail = "C" * 1024, "d" * MAX_DETAIL_CHARS
    value = only(cdx_vex([vulnerability(id=long_id, analysis={"detail": long_detail})]))
    assert (value.vulnerability, value.detail) == (long_id, long_detail)


def test_oversized_vex_is_refused_before_it_is_read():
    with pytest.raises(TooLargeError, match=f"VEX document is {MAX_SBOM_BYTES + 1} bytes"):
        parse_vex(b" " * (MAX_SBOM_BYTES + 1))


def test_deep_nesting_is_an_encoding_error():
    depth = 100_000
    with pytest.raises(EncodingError):
        parse_vex(b'{"@context":"https://openvex.dev/ns/v0.2.0","x":' + b"[" * depth + b"]" * depth + b"}")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
STATUSES = st.sampled_from(["not_affected", "affected", "fixed", "under_investigation"])


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(
        ["vulnerability", "products", "status", "justification", "impact_statement", "action_statement"]
    ),
    value=JSON_VALUES,
    status=STATUSES,
)
def test_any_value_in_an_openvex_statement_parses_or_is_an_encoding_error(key, value, status):
    data = openvex(
        [{**statement(status, justification="component_not_present", action_statement="a"), key: value}]
    )
    with contextlib.suppress(EncodingError):
        parsed = parse_vex(data)
        assert all(s.products == sorted(s.products) for s in parsed.statements)


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(["id", "analysis", "affects"]),
    value=JSON_VALUES,
    top=st.sampled_from(["components", "metadata", "vulnerabilities", "specVersion"]),
    top_value=JSON_VALUES,
)
def test_any_value_in_a_cyclonedx_vex_parses_or_is_an_encoding_error(key, value, top, top_value):
    for data in (cdx_vex([vulnerability(**{key: value})]), cdx_vex([vulnerability()], **{top: top_value})):
        with contextlib.suppress(EncodingError):
            parse_vex(data)


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_parse_or_give_an_encoding_error(data):
    for prefix in (
        b"",
        b'{"@context":"https://openvex.dev/ns/v0.2.0",',
        b'{"bomFormat":"CycloneDX","specVersion":"1.6",',
    ):
        with contextlib.suppress(EncodingError):
            parse_vex(prefix + data)


def test_vex_summary_counts_every_status():
    statements = [
        VexStatement("A", ["p"], "fixed"),
        VexStatement("B", ["p"], "fixed"),
        VexStatement("C", ["p"], "affected"),
    ]
    assert vex_summary(statements) == {"not_affected": 0, "affected": 1, "fixed": 2, "under_investigation": 0}
    assert vex_summary(iter(statements)) == vex_summary(statements)
