"""VEX documents as suppliers and tools write them, into the ledger's VEX statements. Pure.

`parse_vex` reads OpenVEX v0.2.0 JSON (openvex/spec OPENVEX-SPEC.md v0.2.0) and
the VEX of a CycloneDX 1.4 to 1.6 JSON BOM (`vulnerabilities[]`, each with its
`analysis` and `affects`, field names of bom-1.6.schema.json), and states each as
a `VexStatement` with the OpenVEX status labels. Only the properties read here
are typed; everything else in a document is ignored. A UTF-8 byte order mark
before the document is allowed.

VEX documents are untrusted input: at most `MAX_SBOM_BYTES` (a CycloneDX VEX may
be a whole BOM), identifiers at most `MAX_FIELD_CHARS` characters, details at
most `MAX_DETAIL_CHARS`; anything malformed is an EncodingError that says which
document and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import unquote

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError
from ledger.records.formats import bounded_text, strip_bom
from ledger.records.sbom import CYCLONEDX_VERSIONS, MAX_FIELD_CHARS, check_sbom_size

MAX_DETAIL_CHARS = 16 * 1024  # an impact or action statement, or analysis.detail: prose, not a file
OPENVEX_CONTEXT = "https://openvex.dev/ns"  # OpenVEX v0.2.0 "Document Struct Fields": @context
OPENVEX_VERSION = "0.2.0"
OPENVEX_CONTEXTS = frozenset({OPENVEX_CONTEXT, f"{OPENVEX_CONTEXT}/v{OPENVEX_VERSION}"})
SUPPORTED = f"OpenVEX v{OPENVEX_VERSION} JSON (@context) or CycloneDX JSON 1.4, 1.5 or 1.6 (bomFormat)"
OPENVEX = "OpenVEX document"
CYCLONEDX = "CycloneDX VEX"

VexStatus = Literal[
    "not_affected", "affected", "fixed", "under_investigation"
]  # OpenVEX v0.2.0 Status Labels
VEX_STATUSES: tuple[VexStatus, ...] = get_args(VexStatus)
# OpenVEX v0.2.0 "Status Justifications" (the VEX Working Group's labels of July 2022).
OpenVexJustification = Literal[
    "component_not_present",
    "vulnerable_code_not_present",
    "vulnerable_code_not_in_execute_path",
    "vulnerable_code_cannot_be_controlled_by_adversary",
    "inline_mitigations_already_exist",
]
# CycloneDX 1.6 `vulnerabilities[].analysis.state` and `.justification` (impactAnalysis...).
CdxState = Literal[
    "resolved", "resolved_with_pedigree", "exploitable", "in_triage", "false_positive", "not_affected"
]
CdxJustification = Literal[
    "code_not_present",
    "code_not_reachable",
    "requires_configuration",
    "requires_dependency",
    "requires_environment",
    "protected_by_compiler",
    "protected_at_runtime",
    "protected_at_perimeter",
    "protected_by_mitigating_control",
]
CDX_STATUS: dict[CdxState, VexStatus] = {
    "resolved": "fixed",
    "resolved_with_pedigree": "fixed",
    "exploitable": "affected",
    "in_triage": "under_investigation",
    "false_positive": "not_affected",
    "not_affected": "not_affected",
}
BOM_LINK_PREFIX = "urn:cdx:"  # CycloneDX 1.5+ BOM-Link: urn:cdx:<serial>/<version>#<bom-ref, URL-encoded>


class VexStatement(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """One VEX statement: the status of a vulnerability in products, with why, as the ledger keeps it.

    `vulnerability` is its identifier (CVE-2024-1234, GHSA-...); `products` the purls or
    product ids the statement is about, sorted; `status` an OpenVEX v0.2.0 status label;
    `justification` the document's justification label (OpenVEX or CycloneDX, as written);
    `detail` the OpenVEX impact_statement or action_statement, or CycloneDX analysis.detail.
    """

    vulnerability: str
    products: list[str]
    status: VexStatus
    justification: str | None = None
    detail: str | None = None


VexFormat = Literal["OpenVEX", "CycloneDX"]


@dataclass(frozen=True, slots=True)
class ParsedVex:
    """What `parse_vex` read from one VEX document.

    `spec_version` is "0.2.0" for OpenVEX and "1.4", "1.5" or "1.6" for CycloneDX;
    `author` who states it (OpenVEX `author`; CycloneDX `metadata.authors` names, else
    the metadata's manufacturer or supplier); `statements` sorted by vulnerability, then
    products (`statement_key`).
    """

    format: VexFormat
    spec_version: str
    author: str | None
    statements: tuple[VexStatement, ...]


# --- OpenVEX v0.2.0, only the fields read here ----------------------------------------------------------


class _OvComponent(msgspec.Struct, frozen=True):
    """Component (OpenVEX v0.2.0 "Component Fields"): `@id` and `identifiers` (purl, cpe23, cpe22)."""

    id: str | None = msgspec.field(default=None, name="@id")
    identifiers: dict[str, str] = msgspec.field(default_factory=dict)


class _OvProduct(_OvComponent, frozen=True):
    """Product: a component with `subcomponents`."""

    subcomponents: list[_OvComponent] = msgspec.field(default_factory=list)


class _OvVulnerability(msgspec.Struct, frozen=True):
    """Vulnerability (OpenVEX v0.2.0 "Vulnerability Struct Fields"): `name` required, `@id` optional."""

    name: str | None = None
    id: str | None = msgspec.field(default=None, name="@id")


class _OvStatement(msgspec.Struct, frozen=True):
    """Statement (OpenVEX v0.2.0 "Statement Fields")."""

    vulnerability: _OvVulnerability
    status: VexStatus
    products: list[_OvProduct] = msgspec.field(default_factory=list)
    justification: OpenVexJustification | None = None
    impact_statement: str | None = None
    action_statement: str | None = None


class _OvDocument(msgspec.Struct, frozen=True):
    """Document (OpenVEX v0.2.0 "Document Struct Fields"): `author` and `statements` are required."""

    context: str = msgspec.field(name="@context")
    author: str
    statements: list[_OvStatement]


# --- CycloneDX 1.4 to 1.6 VEX, only the fields read here ------------------------------------------------


class _CdxOrganization(msgspec.Struct, frozen=True):
    """organizationalEntity / organizationalContact: only the name is read."""

    name: str | None = None


class _CdxComponent(msgspec.Struct, frozen=True, rename={"bom_ref": "bom-ref"}):
    """component: its `bom-ref` and `purl`, and nested `components`."""

    bom_ref: str | None = None
    purl: str | None = None
    components: list[_CdxComponent] = msgspec.field(default_factory=list)


class _CdxMetadata(msgspec.Struct, frozen=True):
    """metadata: the described component and who made the BOM (`manufacture` is the pre-1.6 name)."""

    component: _CdxComponent | None = None
    authors: list[_CdxOrganization] = msgspec.field(default_factory=list)
    manufacturer: _CdxOrganization | None = None
    manufacture: _CdxOrganization | None = None
    supplier: _CdxOrganization | None = None


class _CdxAffect(msgspec.Struct, frozen=True):
    """An entry of `affects`: `ref` (required) is a bom-ref, or a BOM-Link from 1.5 on."""

    ref: str


class _CdxAnalysis(msgspec.Struct, frozen=True):
    """vulnerability `analysis` (impact analysis): state, justification and detail."""

    state: CdxState | None = None
    justification: CdxJustification | None = None
    detail: str | None = None


class _CdxVulnerability(msgspec.Struct, frozen=True):
    """An entry of `vulnerabilities`."""

    id: str | None = None
    analysis: _CdxAnalysis | None = None
    affects: list[_CdxAffect] = msgspec.field(default_factory=list)


class _CdxBom(msgspec.Struct, frozen=True, rename="camel"):
    """A CycloneDX BOM (JSON) carrying VEX: `vulnerabilities` is required here."""

    bom_format: str
    spec_version: str
    vulnerabilities: list[_CdxVulnerability] | None = None
    metadata: _CdxMetadata = msgspec.field(default_factory=_CdxMetadata)
    components: list[_CdxComponent] = msgspec.field(default_factory=list)


class _Probe(msgspec.Struct, frozen=True, rename="camel"):
    """The fields that tell the formats apart, of any type (checked by `parse_vex`)."""

    context: object = msgspec.field(default=None, name="@context")
    bom_format: object = None
    spec_version: object = None


_probe_decoder = msgspec.json.Decoder(_Probe)
_openvex_decoder = msgspec.json.Decoder(_OvDocument)
_cdx_decoder = msgspec.json.Decoder(_CdxBom)


def _text(value: str | None, what: str, where: str, limit: int = MAX_FIELD_CHARS) -> str | None:
    """`value` stripped, None when empty; EncodingError over `limit` characters (`bounded_text`)."""
    return bounded_text(value, what, where, limit)


def statement_key(statement: VexStatement) -> tuple[str, list[str], str, str, str]:
    """The order of statements: vulnerability, products, then status, justification and detail."""
    return (
        statement.vulnerability,
        statement.products,
        statement.status,
        statement.justification or "",
        statement.detail or "",
    )


def _ov_component_id(component: _OvComponent, what: str, where: str) -> str:
    """A component's id: `@id`, else its purl, cpe23 or cpe22 identifier; EncodingError for none."""
    for field, value in (
        ("@id", component.id),
        ("identifiers.purl", component.identifiers.get("purl")),
        ("identifiers.cpe23", component.identifiers.get("cpe23")),
        ("identifiers.cpe22", component.identifiers.get("cpe22")),
    ):
        text = _text(value, OPENVEX, f"{where}.{field}")
        if text is not None:
            return text
    raise EncodingError(f"{what}: {where} has no @id and no purl or cpe identifier")


def _ov_statement(statement: _OvStatement, where: str) -> VexStatement:
    """One OpenVEX v0.2.0 statement; refuses what "Statement Fields" says a valid statement MUST have.

    A `not_affected` statement needs a justification or an impact_statement; an
    `affected` one an action_statement; every statement a vulnerability name (or
    `@id`) and at least one product. Products are the `@id` (else purl, cpe23, cpe22)
    of each product and of each of its subcomponents: a statement about product P
    with subcomponent S speaks of S as it is in P, so it answers for S in the SOUP
    list too. The detail is the action_statement of an `affected` statement, else
    the impact_statement, else the action_statement.
    """
    vulnerability = _first(
        _text(statement.vulnerability.name, OPENVEX, f"{where}.vulnerability.name"),
        _text(statement.vulnerability.id, OPENVEX, f"{where}.vulnerability.@id"),
    )
    if vulnerability is None:
        raise EncodingError(f"{OPENVEX}: {where}.vulnerability has no name")
    products: set[str] = set()
    for number, product in enumerate(statement.products):
        spot = f"{where}.products[{number}]"
        products.add(_ov_component_id(product, OPENVEX, spot))
        for sub_number, sub in enumerate(product.subcomponents):
            products.add(_ov_component_id(sub, OPENVEX, f"{spot}.subcomponents[{sub_number}]"))
    if not products:
        raise EncodingError(
            f"{OPENVEX}: {where} ({vulnerability}) names no product; a standalone OpenVEX document "
            "must name each statement's products"
        )
    impact = _text(statement.impact_statement, OPENVEX, f"{where}.impact_statement", MAX_DETAIL_CHARS)
    action = _text(statement.action_statement, OPENVEX, f"{where}.action_statement", MAX_DETAIL_CHARS)
    if statement.status == "not_affected" and statement.justification is None and impact is None:
        raise EncodingError(
            f"{OPENVEX}: {where} ({vulnerability}) is not_affected without a justification or an "
            "impact_statement, which OpenVEX v0.2.0 requires"
        )
    if statement.status == "affected" and action is None:
        raise EncodingError(
            f"{OPENVEX}: {where} ({vulnerability}) is affected without an action_statement, "
            "which OpenVEX v0.2.0 requires"
        )
    detail = action if statement.status == "affected" else _first(impact, action)
    return VexStatement(
        vulnerability=vulnerability,
        products=sorted(products),
        status=statement.status,
        justification=statement.justification,
        detail=detail,
    )


def _first(*values: str | None) -> str | None:
    """The first of `values` that is not None."""
    return next((value for value in values if value is not None), None)


def _parse_openvex(data: bytes, context: str) -> ParsedVex:
    """An OpenVEX v0.2.0 document (precondition: `parse_vex` saw its @context)."""
    if context not in OPENVEX_CONTEXTS:
        raise EncodingError(
            f"{OPENVEX}: @context {context!r} is not supported; "
            f"expected {' or '.join(sorted(OPENVEX_CONTEXTS))}"
        )
    try:
        document = _openvex_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{OPENVEX}: {exc}") from None
    author = _text(document.author, OPENVEX, "author")
    statements = [_ov_statement(s, f"statements[{n}]") for n, s in enumerate(document.statements)]
    return ParsedVex(
        format="OpenVEX",
        spec_version=OPENVEX_VERSION,
        author=author,
        statements=tuple(sorted(statements, key=statement_key)),
    )


def _cdx_purls(bom: _CdxBom) -> dict[str, str]:
    """bom-ref to purl of every component with both: metadata.component, components, nested ones."""
    stack = [*bom.components]
    if bom.metadata.component is not None:
        stack.append(bom.metadata.component)
    purls: dict[str, str] = {}
    while stack:
        component = stack.pop()
        if component.bom_ref and component.purl:
            purls.setdefault(component.bom_ref, component.purl)
        stack.extend(component.components)
    return purls


def _cdx_product(ref: str, purls: dict[str, str]) -> str:
    """What an `affects[].ref` names: the purl of the component with that bom-ref, else the ref itself.

    A BOM-Link (`urn:cdx:serial/version#bom-ref`, CycloneDX 1.5+) is looked up by its
    URL-decoded fragment.
    """
    if ref in purls:
        return purls[ref]
    if ref.startswith(BOM_LINK_PREFIX) and "#" in ref:
        fragment = unquote(ref.partition("#")[2])
        if fragment in purls:
            return purls[fragment]
    return ref


def _cdx_author(metadata: _CdxMetadata) -> str | None:
    """`metadata.authors` names, else `manufacturer.name` (1.6), `manufacture.name`, `supplier.name`."""
    names = [
        name for author in metadata.authors if (name := _text(author.name, CYCLONEDX, "metadata.authors"))
    ]
    if names:
        return _text(", ".join(names), CYCLONEDX, "metadata.authors")
    for field, entity in (
        ("manufacturer", metadata.manufacturer),
        ("manufacture", metadata.manufacture),
        ("supplier", metadata.supplier),
    ):
        name = _text(entity.name if entity else None, CYCLONEDX, f"metadata.{field}.name")
        if name is not None:
            return name
    return None


def _cdx_statement(vulnerability: _CdxVulnerability, purls: dict[str, str], where: str) -> VexStatement:
    """One CycloneDX `vulnerabilities[]` entry as a statement; EncodingError without an id or affects.

    `id`; `analysis.state` mapped by CDX_STATUS (no state: under_investigation);
    `affects[].ref` resolved to purls (`_cdx_product`).
    """
    name = _text(vulnerability.id, CYCLONEDX, f"{where}.id")
    if name is None:
        raise EncodingError(f"{CYCLONEDX}: {where}.id is missing")
    products = set()
    for number, affect in enumerate(vulnerability.affects):
        ref = _text(affect.ref, CYCLONEDX, f"{where}.affects[{number}].ref")
        if ref is None:
            raise EncodingError(f"{CYCLONEDX}: {where}.affects[{number}].ref is empty")
        products.add(_cdx_product(ref, purls))
    if not products:
        raise EncodingError(f"{CYCLONEDX}: {where} ({name}) has no affects: it names no component")
    analysis = vulnerability.analysis or _CdxAnalysis()
    return VexStatement(
        vulnerability=name,
        products=sorted(products),
        status=CDX_STATUS[analysis.state] if analysis.state is not None else "under_investigation",
        justification=analysis.justification,
        detail=_text(analysis.detail, CYCLONEDX, f"{where}.analysis.detail", MAX_DETAIL_CHARS),
    )


def _parse_cyclonedx(data: bytes, spec_version: object) -> ParsedVex:
    """A CycloneDX 1.4 to 1.6 BOM's VEX (precondition: `parse_vex` saw bomFormat "CycloneDX")."""
    if spec_version not in CYCLONEDX_VERSIONS:
        raise EncodingError(
            f"{CYCLONEDX}: specVersion {spec_version!r} is not supported; expected {SUPPORTED}"
        )
    try:
        bom = _cdx_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{CYCLONEDX}: {exc}") from None
    if bom.vulnerabilities is None:
        raise EncodingError(f"{CYCLONEDX}: the BOM has no vulnerabilities array, so it is no VEX")
    purls = _cdx_purls(bom)
    statements = [
        _cdx_statement(vulnerability, purls, f"vulnerabilities[{n}]")
        for n, vulnerability in enumerate(bom.vulnerabilities)
    ]
    return ParsedVex(
        format="CycloneDX",
        spec_version=bom.spec_version,
        author=_cdx_author(bom.metadata),
        statements=tuple(sorted(statements, key=statement_key)),
    )


def parse_vex(data: bytes) -> ParsedVex:
    """The statements of an OpenVEX v0.2.0 or CycloneDX 1.4 to 1.6 JSON VEX document, format auto-detected.

    Precondition: none; `data` is untrusted. OpenVEX is recognised by an `@context`
    starting with https://openvex.dev/ns (read when it is that or .../v0.2.0), CycloneDX
    by `bomFormat` "CycloneDX" with `specVersion` 1.4, 1.5 or 1.6 and a `vulnerabilities`
    array; anything else is an EncodingError naming the supported formats. A UTF-8 byte
    order mark before the JSON is ignored.

    OpenVEX (OPENVEX-SPEC.md v0.2.0): statements[].vulnerability.name (or `@id`),
    products[] and their subcomponents (`_ov_statement`), status, justification,
    impact_statement / action_statement; a not_affected statement without justification
    or impact_statement, or an affected one without action_statement, is refused.
    CycloneDX VEX (`vulnerabilities[].analysis`): id; analysis.state resolved and
    resolved_with_pedigree → fixed, exploitable → affected, in_triage or no state →
    under_investigation, false_positive and not_affected → not_affected;
    analysis.justification and analysis.detail; `affects[].ref` resolved to the purl of
    the component with that bom-ref, else kept. Identifiers over MAX_FIELD_CHARS and
    details over MAX_DETAIL_CHARS characters are refused; TooLargeError over MAX_SBOM_BYTES.
    """
    check_sbom_size(data, "VEX document")
    data = strip_bom(data)
    try:
        probe = _probe_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"VEX document is not a JSON object ({exc}); expected {SUPPORTED}") from None
    if isinstance(probe.context, str) and probe.context.startswith(OPENVEX_CONTEXT):
        return _parse_openvex(data, probe.context)
    if probe.bom_format is not None:
        if probe.bom_format != "CycloneDX":
            raise EncodingError(
                f"VEX document: bomFormat {probe.bom_format!r} is not CycloneDX; expected {SUPPORTED}"
            )
        return _parse_cyclonedx(data, probe.spec_version)
    raise EncodingError(f"VEX document has neither an OpenVEX @context nor bomFormat; expected {SUPPORTED}")


def vex_summary(statements: Iterable[VexStatement]) -> dict[str, int]:
    """How many statements have each status: every OpenVEX status label, in VEX_STATUSES order, zeros kept."""
    counts: dict[str, int] = dict.fromkeys(VEX_STATUSES, 0)
    for statement in statements:
        counts[statement.status] += 1
    return counts
