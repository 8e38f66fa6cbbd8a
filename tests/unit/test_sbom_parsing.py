"""SBOM parsing (ledger/records/sbom.py): real-tool SBOMs into SOUP items, and the SOUP list format.

Fixtures (tests/unit/fixtures/sbom, README.md there) are what cyclonedx-py 7.5.0
wrote as CycloneDX 1.4, 1.5 and 1.6 and sbom4python 0.12.6 as SPDX 2.3 JSON, all of
one venv holding requests 2.32.3 and its dependencies. Hand-written documents check
each rule (supplier and licence fallbacks, nesting, described package) and each
refusal.
"""

from __future__ import annotations

import contextlib
import json
import re
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.errors import EncodingError, TooLargeError
from ledger.records import sbom
from ledger.records.sbom import (
    MAX_FIELD_CHARS,
    MAX_SBOM_BYTES,
    ParsedSbom,
    SoupComponent,
    decode_soup_list,
    encode_soup_list,
    parse_sbom,
    soup_gaps,
)

FIXTURES = Path(__file__).parent / "fixtures" / "sbom"
CYCLONEDX_FIXTURES = ["cyclonedx-py-1.4.json", "cyclonedx-py-1.5.json", "cyclonedx-py-1.6.json"]
SPDX_FIXTURE = "sbom4python-spdx-2.3.json"

# What cyclonedx-py wrote for the venv: name, version, licence (cyclonedx-py lists the licence of the
# package metadata and that of its trove classifier, so some have two), purl; no supplier anywhere.
CDX_EXPECTED = [
    SoupComponent(
        "certifi",
        "2026.10.19.post1",
        None,
        "MPL-2.0 AND License :: OSI Approved :: Mozilla Public License 2.0 (MPL 2.0)",
        "pkg:pypi/certifi@2026.10.19.post1",
    ),
    SoupComponent("charset-normalizer", "3.5.3", None, "MIT", "pkg:pypi/charset-normalizer@3.5.3"),
    SoupComponent("idna", "3.20", None, "BSD-3-Clause", "pkg:pypi/idna@3.20"),
    SoupComponent("pip", "23.2.1", None, "MIT", "pkg:pypi/pip@23.2.1"),
    SoupComponent(
        "requests",
        "2.32.3",
        None,
        "Apache-2.0 AND License :: OSI Approved :: Apache Software License",
        "pkg:pypi/requests@2.32.3",
    ),
    SoupComponent("setuptools", "65.5.0", None, "MIT", "pkg:pypi/setuptools@65.5.0"),
    SoupComponent("urllib3", "2.8.0", None, "MIT", "pkg:pypi/urllib3@2.8.0"),
]


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def cdx(components: list[Any], spec: str = "1.6", **extra: Any) -> bytes:
    """A minimal CycloneDX JSON BOM."""
    return json.dumps(
        {"bomFormat": "CycloneDX", "specVersion": spec, "components": components, **extra}
    ).encode()


def spdx(packages: list[Any], /, **extra: Any) -> bytes:
    """A minimal SPDX 2.3 JSON document."""
    document = {
        "spdxVersion": "SPDX-2.3",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "test",
        "dataLicense": "CC0-1.0",
        "creationInfo": {"creators": ["Tool: test-tool-1.0"], "created": "2026-12-05T00:00:00Z"},
        "packages": packages,
    }
    document.update(extra)
    return json.dumps(document).encode()


def only(data: bytes) -> SoupComponent:
    """The one component of an SBOM."""
    parsed = parse_sbom(data)
    assert len(parsed.components) == 1, parsed.components
    return parsed.components[0]


# --- real tool output -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", CYCLONEDX_FIXTURES)
def test_cyclonedx_py_fixtures(name):
    parsed = parse_sbom(fixture(name))
    assert parsed.format == "CycloneDX"
    assert parsed.spec_version == name.removeprefix("cyclonedx-py-").removesuffix(".json")
    # 1.4 writes metadata.tools as an array of tools, 1.5 and 1.6 as {components: [...]}.
    assert parsed.tools == ("cyclonedx-py 7.5.0", "cyclonedx-python-lib 11.12.0")
    assert parsed.described == SoupComponent("pump-ui", "1.4.0", None, "Apache-2.0", None)
    assert list(parsed.components) == CDX_EXPECTED
    assert len(parsed.components) == 7
    assert soup_gaps(parsed.components) == {"version": 0, "supplier": 7, "licence": 0}


def test_cyclonedx_versions_give_the_same_soup_list_bytes():
    encoded = {encode_soup_list(parse_sbom(fixture(name)).components) for name in CYCLONEDX_FIXTURES}
    assert len(encoded) == 1
    data = encoded.pop()
    assert data.startswith(b'{"components":[{"licence":"MPL-2.0 AND License')
    assert b'{"licence":"MIT","name":"idna"' not in data  # idna is BSD-3-Clause
    assert b'{"licence":"BSD-3-Clause","name":"idna","purl":"pkg:pypi/idna@3.20","version":"3.20"}' in data
    assert b"supplier" not in data  # absent fields are omitted, not null
    assert decode_soup_list(data) == tuple(CDX_EXPECTED)


def test_sbom4python_spdx_fixture():
    parsed = parse_sbom(fixture(SPDX_FIXTURE))
    assert parsed.format == "SPDX"
    assert parsed.spec_version == "2.3"
    assert parsed.tools == ("sbom4python-0.12.6",)
    # described by the relationship SPDXRef-DOCUMENT DESCRIBES SPDXRef-1-requests; "Person: " removed
    assert parsed.described == SoupComponent(
        "requests", "2.32.3", "Kenneth Reitz (me@kennethreitz.org)", "Apache-2.0", "pkg:pypi/requests@2.32.3"
    )
    assert parsed.components == (
        SoupComponent(
            "certifi",
            "2026.10.19.post1",
            "Kenneth Reitz (me@kennethreitz.com)",
            "MPL-2.0",
            "pkg:pypi/certifi@2026.10.19.post1",
        ),
        # "Organization: Ahmed R. (...)": the organisation prefix goes too
        SoupComponent(
            "charset-normalizer",
            "3.5.3",
            "Ahmed R. (tahri.ahmed@proton.me)",
            "MIT",
            "pkg:pypi/charset-normalizer@3.5.3",
        ),
        # licenseConcluded and licenseDeclared are both NOASSERTION
        SoupComponent("idna", "3.20", "Kim Davies (kim+pypi@gumleaf.org)", None, "pkg:pypi/idna@3.20"),
        SoupComponent(
            "urllib3", "2.8.0", "Andrey Petrov (andrey.petrov@shazow.net)", None, "pkg:pypi/urllib3@2.8.0"
        ),
    )
    assert soup_gaps(parsed.components) == {"version": 0, "supplier": 0, "licence": 2}


@pytest.mark.parametrize("name", [*CYCLONEDX_FIXTURES, SPDX_FIXTURE])
def test_a_utf8_byte_order_mark_is_ignored(name):
    data = fixture(name)
    assert parse_sbom(b"\xef\xbb\xbf" + data) == parse_sbom(data)


def test_the_same_sbom_always_gives_the_same_bytes():
    data = fixture(SPDX_FIXTURE)
    reordered = json.loads(data)
    reordered["packages"].reverse()
    first = encode_soup_list(parse_sbom(data).components)
    assert encode_soup_list(parse_sbom(json.dumps(reordered, indent=4).encode()).components) == first


# --- CycloneDX rules ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "supplier"),
    [
        (
            {
                "supplier": {"name": "S"},
                "publisher": "P",
                "manufacturer": {"name": "M"},
                "author": "A",
                "authors": [{"name": "B"}],
            },
            "S",
        ),
        ({"supplier": {"url": ["https://s.example"]}, "publisher": "P", "author": "A"}, "P"),
        ({"publisher": " ", "manufacturer": {"name": "M"}, "author": "A"}, "M"),
        ({"manufacturer": {}, "author": "A", "authors": [{"name": "B"}]}, "A"),
        ({"authors": [{"name": "B"}, {"email": "x@example.com"}, {"name": "C"}]}, "B, C"),
        ({}, None),
    ],
)
def test_cyclonedx_supplier_falls_back_in_order(fields, supplier):
    assert only(cdx([{"type": "library", "name": "x", **fields}])).supplier == supplier


@pytest.mark.parametrize(
    ("licenses", "licence"),
    [
        ([{"license": {"id": "MIT"}}], "MIT"),
        ([{"license": {"name": "Proprietary EULA"}}], "Proprietary EULA"),
        ([{"license": {"id": "MIT", "name": "ignored when there is an id"}}], "MIT"),
        ([{"expression": "MIT OR Apache-2.0"}], "MIT OR Apache-2.0"),
        ([{"license": {"id": "MIT"}}, {"license": {"id": "BSD-3-Clause"}}], "MIT AND BSD-3-Clause"),
        (
            [{"license": {"id": "MIT"}}, {"expression": "GPL-2.0-only OR BSD-2-Clause"}],
            "MIT AND (GPL-2.0-only OR BSD-2-Clause)",
        ),
        ([{"license": {"id": "MIT"}}, {"license": {"id": "MIT"}}], "MIT"),
        ([], None),
    ],
)
def test_cyclonedx_licences(licenses, licence):
    assert only(cdx([{"name": "x", "licenses": licenses}])).licence == licence


def test_cyclonedx_nested_components_are_flattened_deduplicated_and_sorted():
    data = cdx(
        [
            {
                "name": "zeta",
                "version": "2",
                "components": [
                    {"name": "alpha", "version": "1", "components": [{"name": "beta", "purl": "pkg:x/beta"}]},
                    {"name": "zeta", "version": "1"},
                ],
            },
            {"name": "alpha", "version": "1"},  # the same as the nested one: kept once
            {"name": "alpha", "version": "1", "purl": "pkg:x/alpha@1"},  # differs by purl: kept
        ],
        metadata={
            "component": {"name": "app", "version": "9", "components": [{"name": "module", "version": "9"}]}
        },
    )
    parsed = parse_sbom(data)
    assert parsed.described == SoupComponent("app", "9")
    assert [(c.name, c.version, c.purl) for c in parsed.components] == [
        ("alpha", "1", None),
        ("alpha", "1", "pkg:x/alpha@1"),
        ("beta", None, "pkg:x/beta"),
        ("module", "9", None),
        ("zeta", "1", None),
        ("zeta", "2", None),
    ]


def test_cyclonedx_described_component_is_not_listed_again():
    data = cdx(
        [
            {"bom-ref": "root", "name": "app", "version": "2.0"},  # the described one by bom-ref
            {"bom-ref": "copy", "name": "app", "version": "2.0", "supplier": {"name": "Us"}},  # by value
            {"name": "app", "version": "1.0"},
            {"name": "lib"},
        ],
        metadata={
            "component": {"bom-ref": "root", "name": "app", "version": "2.0", "supplier": {"name": "Us"}}
        },
    )
    parsed = parse_sbom(data)
    assert parsed.described == SoupComponent("app", "2.0", "Us")
    assert parsed.components == (SoupComponent("app", "1.0"), SoupComponent("lib"))


def test_cyclonedx_without_metadata_or_tools():
    parsed = parse_sbom(cdx([], spec="1.4"))
    assert parsed == ParsedSbom("CycloneDX", "1.4", (), None, ())


def test_cyclonedx_tools_of_both_forms():
    legacy = {
        "tools": [{"vendor": "V", "name": "t1", "version": "1"}, {"vendor": "nameless"}, {"name": "t2"}]
    }
    assert parse_sbom(cdx([], spec="1.4", metadata=legacy)).tools == ("t1 1", "t2")
    current = {
        "tools": {
            "components": [{"type": "application", "name": "syft", "version": "1.18.1"}],
            "services": [{"name": "scan-service", "version": "3"}],
        }
    }
    assert parse_sbom(cdx([], spec="1.6", metadata=current)).tools == ("syft 1.18.1", "scan-service 3")
    assert parse_sbom(cdx([], spec="1.5", metadata=legacy)).tools == ("t1 1", "t2")  # deprecated, still valid


def test_blank_optional_fields_are_absent_and_text_is_trimmed():
    component = only(
        cdx([{"name": " x ", "version": "", "purl": "  ", "licenses": [{"license": {"id": " MIT "}}]}])
    )
    assert component == SoupComponent("x", None, None, "MIT", None)


def test_unknown_fields_of_foreign_formats_are_ignored():
    data = cdx(
        [
            {
                "name": "x",
                "version": "1",
                "hashes": [{"alg": "SHA-256", "content": "00"}],
                "x-vendor": {"a": [1]},
            }
        ],
        spec="1.5",
        dependencies=[{"ref": "x"}],
        compositions=[],
    )
    assert only(data) == SoupComponent("x", "1")


# --- SPDX rules ---------------------------------------------------------------------------------------


def package(spdx_id: str, name: str, **fields: Any) -> dict[str, Any]:
    return {"SPDXID": spdx_id, "name": name, "downloadLocation": "NOASSERTION", **fields}


@pytest.mark.parametrize(
    ("fields", "supplier"),
    [
        ({"supplier": "Organization: Acme Corp (sbom@acme.example)"}, "Acme Corp (sbom@acme.example)"),
        ({"supplier": "Person: Jane Doe"}, "Jane Doe"),
        ({"supplier": "Organization: Acme ()"}, "Acme"),
        ({"supplier": "NOASSERTION", "originator": "Person: Upstream Author"}, "Upstream Author"),
        ({"supplier": "NONE", "originator": "NOASSERTION"}, None),
        ({"originator": "Organization: Origin Inc"}, "Origin Inc"),
        ({"supplier": "Acme without prefix"}, "Acme without prefix"),
        ({}, None),
    ],
)
def test_spdx_supplier(fields, supplier):
    assert only(spdx([package("SPDXRef-a", "a", **fields)])).supplier == supplier


@pytest.mark.parametrize(
    ("fields", "licence"),
    [
        ({"licenseConcluded": "MIT", "licenseDeclared": "Apache-2.0"}, "MIT"),
        ({"licenseConcluded": "NOASSERTION", "licenseDeclared": "Apache-2.0"}, "Apache-2.0"),
        ({"licenseConcluded": "NONE", "licenseDeclared": "(MIT OR GPL-2.0-only)"}, "(MIT OR GPL-2.0-only)"),
        ({"licenseConcluded": "NOASSERTION", "licenseDeclared": "NONE"}, None),
        ({"licenseDeclared": "LicenseRef-acme"}, "LicenseRef-acme"),
        ({}, None),
    ],
)
def test_spdx_licence(fields, licence):
    assert only(spdx([package("SPDXRef-a", "a", **fields)])).licence == licence


def test_spdx_version_and_purl():
    refs = [
        {
            "referenceCategory": "SECURITY",
            "referenceType": "cpe23Type",
            "referenceLocator": "cpe:2.3:a:x:a:1",
        },
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:npm/a@1.0.0",
        },
        {
            "referenceCategory": "PACKAGE-MANAGER",
            "referenceType": "purl",
            "referenceLocator": "pkg:npm/second@1",
        },
    ]
    component = only(spdx([package("SPDXRef-a", "a", versionInfo="1.0.0", externalRefs=refs)]))
    assert (component.version, component.purl) == ("1.0.0", "pkg:npm/a@1.0.0")


def test_spdx_described_by_document_describes_first():
    packages = [package("SPDXRef-a", "a"), package("SPDXRef-b", "b"), package("SPDXRef-c", "c")]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-c",
        }
    ]
    parsed = parse_sbom(spdx(packages, documentDescribes=["SPDXRef-b"], relationships=relationships))
    assert parsed.described == SoupComponent("b")
    # only the first described package is `described`; the other stays a component
    assert [c.name for c in parsed.components] == ["a", "c"]


def test_spdx_described_by_relationships():
    packages = [package("SPDXRef-a", "a"), package("SPDXRef-b", "b")]
    described_by = [
        {"spdxElementId": "SPDXRef-a", "relationshipType": "DEPENDS_ON", "relatedSpdxElement": "SPDXRef-b"},
        {
            "spdxElementId": "SPDXRef-b",
            "relationshipType": "DESCRIBED_BY",
            "relatedSpdxElement": "SPDXRef-DOCUMENT",
        },
    ]
    assert parse_sbom(spdx(packages, relationships=described_by)).described == SoupComponent("b")
    # a described file, or an id of another document, is no package: the first described package counts
    describes = ["DocumentRef-other:SPDXRef-x", "SPDXRef-File-1", "SPDXRef-a"]
    parsed = parse_sbom(spdx(packages, documentDescribes=describes))
    assert (parsed.described, parsed.components) == (SoupComponent("a"), (SoupComponent("b"),))


def test_spdx_without_a_described_package_lists_every_package():
    parsed = parse_sbom(spdx([package("SPDXRef-b", "b"), package("SPDXRef-a", "a")]))
    assert parsed.described is None
    assert parsed.components == (SoupComponent("a"), SoupComponent("b"))


def test_spdx_tools_are_the_tool_creators():
    info = {
        "creators": ["Organization: Acme", "Tool: syft-1.18.1", "Person: Jane", "Tool:  trivy "],
        "created": "x",
    }
    assert parse_sbom(spdx([], creationInfo=info)).tools == ("syft-1.18.1", "trivy")


# --- refusals -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "SBOM is not a JSON object"),
        (b"{", "SBOM is not a JSON object"),
        (b'{"bomFormat": "CycloneDX",}', "SBOM is not a JSON object"),
        (b"[]", "SBOM is not a JSON object"),
        (b'"CycloneDX"', "SBOM is not a JSON object"),
        (b"<bom xmlns='http://cyclonedx.org/schema/bom/1.6'/>", "SBOM is not a JSON object"),
        (b"SPDXVersion: SPDX-2.3\nDataLicense: CC0-1.0\n", "SBOM is not a JSON object"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.6"}\xff', "SBOM is not a JSON object"),
        (b'{"name": "x"}', "neither bomFormat nor spdxVersion"),
        (
            b'{"@context": "https://spdx.org/rdf/3.0.1/spdx-context.jsonld", "@graph": []}',
            "neither bomFormat",
        ),
        (b'{"bomFormat": "SPDX", "specVersion": "1.6"}', "bomFormat 'SPDX' is not CycloneDX"),
        (b'{"bomFormat": 5, "specVersion": "1.6"}', "bomFormat 5 is not CycloneDX"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.2"}', "specVersion '1.2' is not supported"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.3"}', "specVersion '1.3' is not supported"),
        (b'{"bomFormat": "CycloneDX", "specVersion": "1.7"}', "specVersion '1.7' is not supported"),
        (b'{"bomFormat": "CycloneDX", "specVersion": 1.5}', "specVersion 1.5 is not supported"),
        (b'{"bomFormat": "CycloneDX"}', "specVersion None is not supported"),
        (b'{"spdxVersion": "SPDX-2.2"}', "spdxVersion 'SPDX-2.2' is not supported"),
        (b'{"spdxVersion": "SPDX-3.0"}', "spdxVersion 'SPDX-3.0' is not supported"),
        (b'{"spdxVersion": 2.3}', "spdxVersion 2.3 is not supported"),
    ],
)
def test_unsupported_documents_are_refused_naming_the_supported_formats(data, message):
    with pytest.raises(EncodingError, match=re.escape("CycloneDX JSON 1.4, 1.5 or 1.6")) as caught:
        parse_sbom(data)
    assert message in str(caught.value)
    assert "SPDX JSON 2.3" in str(caught.value)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            cdx([{"name": "a"}, {"name": "b"}, {"name": "c"}, {"version": "1"}]),
            "CycloneDX SBOM: components[3].name is missing",
        ),
        (
            cdx([{"name": "a", "components": [{"name": "b"}, {"type": "library"}]}]),
            "components[0].components[1].name is missing",
        ),
        (
            cdx([], metadata={"component": {"version": "1"}}),
            "CycloneDX SBOM: metadata.component.name is missing",
        ),
        (cdx([{"name": "   "}]), "CycloneDX SBOM: components[0].name is empty"),
        (
            spdx([package("SPDXRef-a", "a"), {"SPDXID": "SPDXRef-b"}]),
            "SPDX SBOM: packages[1].name is missing",
        ),
        (spdx([package("SPDXRef-a", "")]), "SPDX SBOM: packages[0].name is empty"),
        (
            cdx([{"name": "x", "licenses": [{"license": {"url": "https://x"}}]}]),
            "components[0].licenses[0].license has neither id nor name",
        ),
        (
            cdx([{"name": "x", "licenses": [{}]}]),
            "components[0].licenses[0] has neither license nor expression",
        ),
        (
            cdx([{"name": "x", "licenses": [{"license": {"id": "MIT"}}, {"expression": " "}]}]),
            "licenses[1] has neither",
        ),
    ],
)
def test_components_without_names_and_empty_licences_are_refused(data, message):
    with pytest.raises(EncodingError) as caught:
        parse_sbom(data)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (cdx("not a list"), "$.components"),
        (cdx([["x"]]), "$.components[0]"),
        (cdx([{"name": 7}]), "$.components[0].name"),
        (cdx([{"name": "x", "version": 1.0}]), "$.components[0].version"),
        (cdx([{"name": "x", "supplier": "Acme"}]), "$.components[0].supplier"),
        (cdx([{"name": "x", "licenses": {"license": {"id": "MIT"}}}]), "$.components[0].licenses"),
        (cdx([{"name": "x", "licenses": [{"license": "MIT"}]}]), "$.components[0].licenses[0].license"),
        (cdx([{"name": "x", "purl": ["pkg:x/y"]}]), "$.components[0].purl"),
        (cdx([{"name": "x", "components": {}}]), "$.components[0].components"),
        (cdx([], metadata={"tools": "cyclonedx-py"}), "$.metadata.tools"),
        (cdx([], metadata={"tools": [{"name": 1}]}), "$.metadata.tools[0].name"),
        (cdx([], metadata=[]), "$.metadata"),
        (spdx({"name": "x"}), "$.packages"),
        (spdx([package("SPDXRef-a", "a", versionInfo=2)]), "$.packages[0].versionInfo"),
        (spdx([package("SPDXRef-a", "a", externalRefs="pkg:npm/a")]), "$.packages[0].externalRefs"),
        (spdx([], creationInfo={"creators": "Tool: x"}), "$.creationInfo.creators"),
        (spdx([], documentDescribes="SPDXRef-a"), "$.documentDescribes"),
        (spdx([], relationships=[{"spdxElementId": 1}]), "$.relationships[0].spdxElementId"),
    ],
)
def test_wrong_types_are_refused_with_their_path(data, where):
    with pytest.raises(EncodingError) as caught:
        parse_sbom(data)
    text = str(caught.value)
    assert text.startswith(("CycloneDX SBOM: ", "SPDX SBOM: "))
    assert f"at `{where}`" in text


LONG = "x" * (MAX_FIELD_CHARS + 1)
LIMIT = "x" * MAX_FIELD_CHARS


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (cdx([{"name": LONG}]), "components[0].name"),
        (cdx([{"name": "x", "version": LONG}]), "components[0].version"),
        (cdx([{"name": "x", "purl": LONG}]), "components[0].purl"),
        (cdx([{"name": "x", "supplier": {"name": LONG}}]), "components[0].supplier.name"),
        (cdx([{"name": "x", "author": LONG}]), "components[0].author"),
        (cdx([{"name": "x", "licenses": [{"license": {"name": LONG}}]}]), "components[0].licenses"),
        (
            cdx([{"name": "x", "licenses": [{"license": {"id": LIMIT}}, {"license": {"id": "MIT"}}]}]),
            "components[0].licenses",
        ),
        (cdx([], metadata={"tools": [{"name": "t", "version": LONG}]}), "metadata.tools[0].version"),
        (spdx([package("SPDXRef-a", "a", supplier=f"Person: {LONG}")]), "packages[0].supplier"),
        (spdx([package("SPDXRef-a", "a", licenseConcluded=LONG)]), "packages[0].licenseConcluded"),
        (spdx([], creationInfo={"creators": [f"Tool: {LONG}"]}), "creationInfo.creators[0]"),
    ],
)
def test_texts_over_1024_characters_are_refused(data, where):
    with pytest.raises(EncodingError, match=re.escape(where) + r" is \d+ characters, over the 1024 allowed"):
        parse_sbom(data)


def test_texts_of_1024_characters_are_kept():
    component = only(cdx([{"name": LIMIT, "version": LIMIT, "purl": LIMIT, "publisher": LIMIT}]))
    assert component == SoupComponent(LIMIT, LIMIT, LIMIT, None, LIMIT)
    assert decode_soup_list(encode_soup_list([component])) == (component,)


def test_oversized_sbom_is_refused_before_it_is_read():
    with pytest.raises(TooLargeError, match=f"over the {MAX_SBOM_BYTES}-byte limit"):
        parse_sbom(b" " * (MAX_SBOM_BYTES + 1))


def test_the_size_limit_is_64_mib(monkeypatch):
    assert MAX_SBOM_BYTES == 64 * 1024 * 1024
    data = cdx([])
    monkeypatch.setattr(sbom, "MAX_SBOM_BYTES", len(data))
    assert parse_sbom(data).format == "CycloneDX"  # at the limit: read
    monkeypatch.setattr(sbom, "MAX_SBOM_BYTES", len(data) - 1)
    with pytest.raises(TooLargeError):
        parse_sbom(data)


def test_deep_nesting_is_an_encoding_error():
    depth = 100_000
    nested = b'{"name":"a","components":[' * depth + b"]}" * depth
    with pytest.raises(EncodingError):
        parse_sbom(b'{"bomFormat":"CycloneDX","specVersion":"1.6","components":[' + nested + b"]}")


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
CDX_KEYS = [
    "name",
    "version",
    "supplier",
    "publisher",
    "manufacturer",
    "author",
    "authors",
    "licenses",
    "purl",
    "components",
]
SPDX_KEYS = [
    "SPDXID",
    "name",
    "versionInfo",
    "supplier",
    "originator",
    "licenseConcluded",
    "licenseDeclared",
    "externalRefs",
]


@settings(max_examples=200, deadline=None)
@given(key=st.sampled_from(CDX_KEYS), value=JSON_VALUES, spec=st.sampled_from(["1.4", "1.5", "1.6"]))
def test_any_value_in_a_cyclonedx_component_parses_or_is_an_encoding_error(key, value, spec):
    data = cdx([{"name": "x", key: value}], spec=spec, metadata={"component": {"name": "app", key: value}})
    try:
        parsed = parse_sbom(data)
    except EncodingError:
        return
    assert decode_soup_list(encode_soup_list(parsed.components)) == parsed.components


@settings(max_examples=200, deadline=None)
@given(
    key=st.sampled_from(SPDX_KEYS),
    value=JSON_VALUES,
    top=st.sampled_from(["packages", "creationInfo", "relationships", "documentDescribes", "SPDXID"]),
    top_value=JSON_VALUES,
)
def test_any_value_in_an_spdx_document_parses_or_is_an_encoding_error(key, value, top, top_value):
    for data in (spdx([{"SPDXID": "SPDXRef-a", "name": "a", key: value}]), spdx([], **{top: top_value})):
        try:
            parsed = parse_sbom(data)
        except EncodingError:
            continue
        assert decode_soup_list(encode_soup_list(parsed.components)) == parsed.components


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=200))
def test_any_bytes_parse_or_give_an_encoding_error(data):
    for candidate in (
        data,
        b'{"bomFormat":"CycloneDX","specVersion":"1.6",' + data,
        b'{"spdxVersion":"SPDX-2.3",' + data,
    ):
        with contextlib.suppress(EncodingError):
            parse_sbom(candidate)


# --- the SOUP list format ------------------------------------------------------------------------------


def test_soup_list_encoding_is_canonical():
    components = [
        SoupComponent("b", "1", licence="MIT"),
        SoupComponent("a", "2", "Acme", "Apache-2.0", "pkg:pypi/a@2"),
        SoupComponent("a", "10"),
        SoupComponent("a", None),
        SoupComponent("b", "1", licence="MIT"),  # a duplicate
    ]
    data = encode_soup_list(components)
    assert data == (
        b'{"components":[{"name":"a"},{"name":"a","version":"10"},'
        b'{"licence":"Apache-2.0","name":"a","purl":"pkg:pypi/a@2","supplier":"Acme","version":"2"},'
        b'{"licence":"MIT","name":"b","version":"1"}]}'
    )
    assert encode_soup_list(list(reversed(components))) == data
    assert decode_soup_list(data) == (
        SoupComponent("a"),
        SoupComponent("a", "10"),
        SoupComponent("a", "2", "Acme", "Apache-2.0", "pkg:pypi/a@2"),
        SoupComponent("b", "1", licence="MIT"),
    )
    assert encode_soup_list([]) == b'{"components":[]}'
    assert decode_soup_list(b'{"components":[]}') == ()


def test_soup_list_orders_by_name_version_then_purl():
    data = encode_soup_list(
        [
            SoupComponent("a", "1", purl="pkg:z"),
            SoupComponent("a", "1", purl="pkg:b"),
            SoupComponent("a", "1"),
        ]
    )
    assert [c.purl for c in decode_soup_list(data)] == [None, "pkg:b", "pkg:z"]


def test_soup_list_decoding_tolerates_whitespace_in_canonical_order():
    assert decode_soup_list(b'{ "components" : [ { "name" : "a" , "version" : "1" } ] }\n') == (
        SoupComponent("a", "1"),
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "SOUP list: "),
        (b"[]", "Expected `object`, got `array`"),
        (b"{}", "missing required field `components`"),
        (b'{"components":[{"name":"a"}],"extra":1}', "unknown field `extra`"),
        (b'{"components":[{"name":"a","manufacturer":"x"}]}', "unknown field `manufacturer`"),
        (b'{"components":[{"version":"1"}]}', "missing required field `name`"),
        (b'{"components":[{"name":""}]}', "length >= 1"),
        (b'{"components":[{"name":"a","licence":""}]}', "length >= 1"),
        (b'{"components":[{"name":"' + LONG.encode() + b'"}]}', "length <= 1024"),
        (b'{"components":[{"name":1}]}', "Expected `str`, got `int`"),
        (b'{"components":{"name":"a"}}', "Expected `array`, got `object`"),
        (b'{"components":[{"name":"b"},{"name":"a"}]}', "components[1] sorts before components[0]"),
        (b'{"components":[{"name":"a"},{"name":"b"},{"name":"b"}]}', "components[2] repeats components[1]"),
        (b'{"components":[{"name":"a","version":"2"},{"name":"a","version":"10"}]}', "sorts before"),
        (b'{"components":[{"name":"a","version":"1"},{"name":"a"}]}', "sorts before"),
    ],
)
def test_soup_list_decoding_is_strict(data, message):
    with pytest.raises(EncodingError, match="SOUP list: ") as caught:
        decode_soup_list(data)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    "component",
    [SoupComponent(""), SoupComponent("a", ""), SoupComponent(LONG), SoupComponent("a", purl=LONG)],
)
def test_soup_list_encoding_refuses_what_decoding_would(component):
    with pytest.raises(EncodingError):
        encode_soup_list([component])


def test_soup_component_is_strict_and_frozen():
    with pytest.raises(msgspec.ValidationError):
        msgspec.json.decode(b'{"name":"a","title":"b"}', type=SoupComponent)
    component = SoupComponent("a")
    with pytest.raises(AttributeError):
        component.name = "b"  # type: ignore[misc]


def test_soup_gaps_counts_each_missing_field():
    components = [
        SoupComponent("a"),
        SoupComponent("b", "1"),
        SoupComponent("c", "1", "Acme"),
        SoupComponent("d", None, None, "MIT"),
    ]
    assert soup_gaps(components) == {"version": 2, "supplier": 3, "licence": 3}
    assert soup_gaps([]) == {"version": 0, "supplier": 0, "licence": 0}
