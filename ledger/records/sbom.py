"""Software Bills of Materials as real tools write them, into the ledger's SOUP list. Pure.

`parse_sbom` reads CycloneDX JSON 1.4 to 1.6 (field names of the CycloneDX 1.6
JSON schema, bom-1.6.schema.json) and SPDX JSON 2.3 (clause numbers of the SPDX
2.3 specification) and keeps what IEC 62304 §8.1.2 asks of a SOUP item (title,
manufacturer, version) plus its licence and Package URL: a `SoupComponent`.
Only the properties read here are typed; everything else in a document is
ignored, so the output of cyclonedx-py, Syft, Trivy, sbom4python and friends
decodes as it is. A UTF-8 byte order mark before the document is allowed.

`encode_soup_list` writes the components in one canonical form (sorted keys,
sorted and deduplicated components, absent fields omitted) so that the same
SBOM always gives the same bytes, which the ledger stores and references by
SHA-256; `decode_soup_list` is its strict inverse.

SBOMs are untrusted input: at most `MAX_SBOM_BYTES`, every kept text at most
`MAX_FIELD_CHARS` characters; anything malformed is an EncodingError that says
which document and what is wrong.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Annotated, Literal

import msgspec

from ledger.core.encoding import JSON_ERRORS
from ledger.errors import EncodingError, TooLargeError
from ledger.records.formats import bounded_text, strip_bom

# Larger than test_reports.MAX_REPORT_BYTES (20 MiB): the SBOM of a container image or a monorepo lists
# thousands of components, each with hashes, external references and sometimes licence texts, and
# real ones reach tens of megabytes. 64 MiB still bounds the memory one decode may take.
MAX_SBOM_BYTES = 64 * 1024 * 1024
MAX_FIELD_CHARS = 1024  # a name, version, supplier, licence, purl or tool text; longer is refused
CYCLONEDX_VERSIONS = ("1.4", "1.5", "1.6")
SPDX_VERSION = "SPDX-2.3"
SUPPORTED = "CycloneDX JSON 1.4, 1.5 or 1.6 (bomFormat, specVersion) or SPDX JSON 2.3 (spdxVersion)"
CYCLONEDX = "CycloneDX SBOM"
SPDX = "SPDX SBOM"
SOUP_LIST = "SOUP list"
SPDX_NO_VALUE = frozenset({"NOASSERTION", "NONE"})  # SPDX 2.3 §7.5, §7.13, §7.15: none / not asserted
SPDX_AGENT_PREFIXES = ("Organization:", "Person:")  # SPDX 2.3 §7.5, §7.6
SPDX_TOOL_PREFIX = "Tool:"  # SPDX 2.3 §6.8 Creator

SoupText = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_FIELD_CHARS)]


class SoupComponent(msgspec.Struct, frozen=True, forbid_unknown_fields=True, omit_defaults=True):
    """One SOUP item (IEC 62304 §8.1.2: title, manufacturer, version), with its licence and purl.

    `supplier` is the manufacturer or whoever distributes the item; `licence` an SPDX
    licence expression or licence name as the SBOM gave it; `purl` its Package URL.
    A field the SBOM does not give is None, and absent from the encoded list. Every
    text is 1 to MAX_FIELD_CHARS characters (checked when decoded, and by
    `encode_soup_list`).
    """

    name: SoupText
    version: SoupText | None = None
    supplier: SoupText | None = None
    licence: SoupText | None = None
    purl: SoupText | None = None


class SoupList(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The stored SOUP list: `{"components": [...]}` in canonical order (`soup_order`)."""

    components: list[SoupComponent]


SbomFormat = Literal["CycloneDX", "SPDX"]


@dataclass(frozen=True, slots=True)
class ParsedSbom:
    """What `parse_sbom` read from one SBOM.

    `spec_version` is "1.4", "1.5" or "1.6" for CycloneDX and "2.3" for SPDX.
    `tools` are the generating tools as the document names them ("name version").
    `described` is the thing the SBOM describes, when it says; `components` every
    other component, deduplicated and in canonical order (`soup_order`).
    """

    format: SbomFormat
    spec_version: str
    tools: tuple[str, ...]
    described: SoupComponent | None
    components: tuple[SoupComponent, ...]


# --- CycloneDX 1.4 to 1.6 (bom-1.6.schema.json), only the fields read here ---------------------------


class _CdxOrganization(msgspec.Struct, frozen=True):
    """organizationalEntity: `supplier`, `manufacturer` (1.6)."""

    name: str | None = None


class _CdxContact(msgspec.Struct, frozen=True):
    """organizationalContact: an entry of `authors` (1.6)."""

    name: str | None = None


class _CdxLicence(msgspec.Struct, frozen=True):
    """license: an SPDX licence `id` or a licence `name`."""

    id: str | None = None
    name: str | None = None


class _CdxLicenceChoice(msgspec.Struct, frozen=True):
    """An entry of licenseChoice (`licenses`): `{license: {...}}` or `{expression: "..."}`."""

    license: _CdxLicence | None = None
    expression: str | None = None


class _CdxComponent(msgspec.Struct, frozen=True, rename={"bom_ref": "bom-ref"}):
    """component: `name` is required by the schema, checked here to name the component missing it."""

    name: str | None = None
    version: str | None = None
    supplier: _CdxOrganization | None = None
    manufacturer: _CdxOrganization | None = None
    publisher: str | None = None
    author: str | None = None
    authors: list[_CdxContact] = msgspec.field(default_factory=list)
    licenses: list[_CdxLicenceChoice] = msgspec.field(default_factory=list)
    purl: str | None = None
    bom_ref: str | None = None
    components: list[_CdxComponent] = msgspec.field(default_factory=list)


class _CdxLegacyTool(msgspec.Struct, frozen=True):
    """tool (the 1.4 form of `metadata.tools`, deprecated from 1.5): every field optional."""

    name: str | None = None
    version: str | None = None


class _CdxTools(msgspec.Struct, frozen=True):
    """`metadata.tools` from 1.5 on: the tools as components and services."""

    components: list[_CdxLegacyTool] = msgspec.field(default_factory=list)
    services: list[_CdxLegacyTool] = msgspec.field(default_factory=list)


class _CdxMetadata(msgspec.Struct, frozen=True):
    """metadata: the tools that made the BOM and the component it describes."""

    tools: list[_CdxLegacyTool] | _CdxTools | None = None
    component: _CdxComponent | None = None


class _CdxBom(msgspec.Struct, frozen=True, rename="camel"):
    """A CycloneDX BOM (JSON)."""

    bom_format: str
    spec_version: str
    metadata: _CdxMetadata | None = None
    components: list[_CdxComponent] = msgspec.field(default_factory=list)


# --- SPDX 2.3 (JSON), only the fields read here --------------------------------------------------------


class _SpdxExternalRef(msgspec.Struct, frozen=True, rename="camel"):
    """External reference (§7.21): `referenceType` purl gives the Package URL in `referenceLocator`."""

    reference_type: str | None = None
    reference_locator: str | None = None


class _SpdxPackage(msgspec.Struct, frozen=True, rename="camel"):
    """Package information (§7); `name` (§7.1) is mandatory, checked here to name the package missing it."""

    spdx_id: str | None = msgspec.field(default=None, name="SPDXID")
    name: str | None = None
    version_info: str | None = None
    supplier: str | None = None
    originator: str | None = None
    license_concluded: str | None = None
    license_declared: str | None = None
    external_refs: list[_SpdxExternalRef] = msgspec.field(default_factory=list)


class _SpdxRelationship(msgspec.Struct, frozen=True, rename="camel"):
    """Relationship (§11.1): `spdxElementId relationshipType relatedSpdxElement`."""

    spdx_element_id: str | None = None
    relationship_type: str | None = None
    related_spdx_element: str | None = None


class _SpdxCreationInfo(msgspec.Struct, frozen=True):
    """Creation information (§6.8 Creator, §6.9 Created)."""

    creators: list[str] = msgspec.field(default_factory=list)


class _SpdxDocument(msgspec.Struct, frozen=True, rename="camel"):
    """An SPDX 2.3 document (JSON)."""

    spdx_version: str
    spdx_id: str = msgspec.field(default="SPDXRef-DOCUMENT", name="SPDXID")
    creation_info: _SpdxCreationInfo = msgspec.field(default_factory=_SpdxCreationInfo)
    document_describes: list[str] = msgspec.field(default_factory=list)
    packages: list[_SpdxPackage] = msgspec.field(default_factory=list)
    relationships: list[_SpdxRelationship] = msgspec.field(default_factory=list)


class _Probe(msgspec.Struct, frozen=True, rename="camel"):
    """The fields that tell the formats apart, of any type (checked by `parse_sbom`)."""

    bom_format: object = None
    spec_version: object = None
    spdx_version: object = None


_probe_decoder = msgspec.json.Decoder(_Probe)
_cdx_decoder = msgspec.json.Decoder(_CdxBom)
_spdx_decoder = msgspec.json.Decoder(_SpdxDocument)
_soup_decoder = msgspec.json.Decoder(SoupList)
_soup_encoder = msgspec.json.Encoder(order="sorted")


def check_sbom_size(data: bytes, what: str) -> None:
    """Refuse (TooLargeError) a document over MAX_SBOM_BYTES; `what` names it in the message."""
    if len(data) > MAX_SBOM_BYTES:
        raise TooLargeError(f"{what} is {len(data)} bytes, over the {MAX_SBOM_BYTES}-byte limit")


def _text(value: str | None, what: str, where: str) -> str | None:
    """`value` stripped, None when empty; EncodingError over MAX_FIELD_CHARS (`bounded_text`)."""
    return bounded_text(value, what, where, MAX_FIELD_CHARS)


def _name(value: str | None, what: str, where: str) -> str:
    """A component's name (`where` is its path, e.g. components[3]); EncodingError when missing or empty."""
    if value is None:
        raise EncodingError(f"{what}: {where}.name is missing")
    name = _text(value, what, f"{where}.name")
    if name is None:
        raise EncodingError(f"{what}: {where}.name is empty")
    return name


def _first(*values: str | None) -> str | None:
    """The first of `values` that is not None."""
    return next((value for value in values if value is not None), None)


def soup_key(component: SoupComponent) -> tuple[tuple[bool, str], ...]:
    """The canonical sort key: name, version, purl, then supplier and licence; an absent field first."""
    fields = (component.name, component.version, component.purl, component.supplier, component.licence)
    return tuple((value is not None, value or "") for value in fields)


def soup_order(components: Iterable[SoupComponent]) -> tuple[SoupComponent, ...]:
    """`components` deduplicated (equal in every field) and sorted by `soup_key`: (name, version, purl)."""
    return tuple(sorted(set(components), key=soup_key))


def _licence_choice(entry: _CdxLicenceChoice, where: str) -> tuple[str, bool]:
    """One licenseChoice entry: (licence id, name or expression; whether it is an expression)."""
    if entry.license is not None:
        value = _first(entry.license.id, entry.license.name)
        if value is None or not value.strip():
            raise EncodingError(f"{CYCLONEDX}: {where}.license has neither id nor name")
        return value.strip(), False
    if entry.expression is None or not entry.expression.strip():
        raise EncodingError(f"{CYCLONEDX}: {where} has neither license nor expression")
    return entry.expression.strip(), True


def _cdx_licence(licences: Sequence[_CdxLicenceChoice], where: str) -> str | None:
    """CycloneDX `licenses` as one text: each `license.id`, `license.name` or `expression`, joined by AND.

    When there are several, a compound expression is put in parentheses, so that the
    result still reads as one SPDX licence expression where every part is one.
    """
    parts: list[tuple[str, bool]] = []
    for number, entry in enumerate(licences):
        part = _licence_choice(entry, f"{where}.licenses[{number}]")
        if part[0] not in [text for text, _ in parts]:
            parts.append(part)
    if len(parts) == 1:
        return _text(parts[0][0], CYCLONEDX, f"{where}.licenses")
    joined = " AND ".join(f"({text})" if expression and " " in text else text for text, expression in parts)
    return _text(joined, CYCLONEDX, f"{where}.licenses")


def _cdx_supplier(component: _CdxComponent, where: str) -> str | None:
    """`supplier.name`, else `publisher`, else `manufacturer.name` (1.6), else `author`, else `authors`."""
    authors = ", ".join(name for contact in component.authors if (name := (contact.name or "").strip()))
    candidates = (
        ("supplier.name", component.supplier.name if component.supplier else None),
        ("publisher", component.publisher),
        ("manufacturer.name", component.manufacturer.name if component.manufacturer else None),
        ("author", component.author),
        ("authors", authors),
    )
    for field, value in candidates:
        text = _text(value, CYCLONEDX, f"{where}.{field}")
        if text is not None:
            return text
    return None


def _cdx_component(component: _CdxComponent, where: str) -> SoupComponent:
    """A CycloneDX component (bom-1.6.schema.json `component`) as a SOUP item; `where` is its path."""
    return SoupComponent(
        name=_name(component.name, CYCLONEDX, where),
        version=_text(component.version, CYCLONEDX, f"{where}.version"),
        supplier=_cdx_supplier(component, where),
        licence=_cdx_licence(component.licenses, where),
        purl=_text(component.purl, CYCLONEDX, f"{where}.purl"),
    )


def _cdx_flatten(components: Sequence[_CdxComponent], where: str) -> list[tuple[_CdxComponent, str]]:
    """Every component of `components` and of their nested `components`, with its path, depth first."""
    found: list[tuple[_CdxComponent, str]] = []
    stack = [(component, f"{where}[{n}]") for n, component in reversed(list(enumerate(components)))]
    while stack:
        component, path = stack.pop()
        found.append((component, path))
        nested = enumerate(component.components)
        stack.extend((child, f"{path}.components[{n}]") for n, child in reversed(list(nested)))
    return found


def _cdx_tools(tools: list[_CdxLegacyTool] | _CdxTools | None) -> tuple[str, ...]:
    """`metadata.tools` as "name version": the 1.4 array of tools, or 1.5+ `{components, services}`.

    A tool without a name is left out (every field of the 1.4 tool is optional).
    """
    if tools is None:
        return ()
    listed = tools if isinstance(tools, list) else [*tools.components, *tools.services]
    found = []
    for number, tool in enumerate(listed):
        name = _text(tool.name, CYCLONEDX, f"metadata.tools[{number}].name")
        version = _text(tool.version, CYCLONEDX, f"metadata.tools[{number}].version")
        if name is not None:
            found.append(f"{name} {version}" if version else name)
    return tuple(found)


def _parse_cyclonedx(data: bytes) -> ParsedSbom:
    """A CycloneDX JSON BOM, 1.4 to 1.6 (precondition: `parse_sbom` checked bomFormat and specVersion).

    described: `metadata.component`; components: `components` and every nested
    `components` (also those of `metadata.component`), the described one excluded.
    """
    try:
        bom = _cdx_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{CYCLONEDX}: {exc}") from None
    metadata = bom.metadata or _CdxMetadata()
    described = None
    nested: list[tuple[_CdxComponent, str]] = []
    if metadata.component is not None:
        described = _cdx_component(metadata.component, "metadata.component")
        nested = _cdx_flatten(metadata.component.components, "metadata.component.components")
    every = [*_cdx_flatten(bom.components, "components"), *nested]
    described_ref = metadata.component.bom_ref if metadata.component is not None else None
    components = [
        soup
        for component, path in every
        if (soup := _cdx_component(component, path)) != described
        and (described_ref is None or component.bom_ref != described_ref)
    ]
    return ParsedSbom(
        format="CycloneDX",
        spec_version=bom.spec_version,
        tools=_cdx_tools(metadata.tools),
        described=described,
        components=soup_order(components),
    )


def _spdx_agent(value: str | None, where: str) -> str | None:
    """An SPDX supplier or originator (§7.5, §7.6) without its "Organization: "/"Person: " prefix.

    NOASSERTION and NONE give None, and so does an empty e-mail "()" after the name.
    """
    text = _text(value, SPDX, where)
    if text is None or text in SPDX_NO_VALUE:
        return None
    for prefix in SPDX_AGENT_PREFIXES:
        if text.startswith(prefix):
            text = text.removeprefix(prefix).strip()
            break
    return text.removesuffix("()").strip() or None


def _spdx_licence(value: str | None, where: str) -> str | None:
    """An SPDX licence expression (§7.13, §7.15); NOASSERTION and NONE give None."""
    text = _text(value, SPDX, where)
    return None if text is None or text in SPDX_NO_VALUE else text


def _spdx_purl(package: _SpdxPackage, where: str) -> str | None:
    """The first external reference (§7.21) of type `purl`: its `referenceLocator`."""
    for number, ref in enumerate(package.external_refs):
        if ref.reference_type == "purl":
            return _text(ref.reference_locator, SPDX, f"{where}.externalRefs[{number}].referenceLocator")
    return None


def _spdx_package(package: _SpdxPackage, where: str) -> SoupComponent:
    """An SPDX package (SPDX 2.3 §7) as a SOUP item.

    name §7.1, versionInfo §7.3, supplier §7.5 else originator §7.6, licenseConcluded
    §7.13 else licenseDeclared §7.15, purl from externalRefs §7.21.
    """
    return SoupComponent(
        name=_name(package.name, SPDX, where),
        version=_text(package.version_info, SPDX, f"{where}.versionInfo"),
        supplier=_first(
            _spdx_agent(package.supplier, f"{where}.supplier"),
            _spdx_agent(package.originator, f"{where}.originator"),
        ),
        licence=_first(
            _spdx_licence(package.license_concluded, f"{where}.licenseConcluded"),
            _spdx_licence(package.license_declared, f"{where}.licenseDeclared"),
        ),
        purl=_spdx_purl(package, where),
    )


def _spdx_described(document: _SpdxDocument) -> list[str]:
    """The SPDX ids the document describes, in document order (§6: documentDescribes; §11.1 relationships).

    `documentDescribes` first, then the relationships "SPDXRef-DOCUMENT DESCRIBES x" and
    "x DESCRIBED_BY SPDXRef-DOCUMENT".
    """
    described = list(document.document_describes)
    for relation in document.relationships:
        if relation.relationship_type == "DESCRIBES" and relation.spdx_element_id == document.spdx_id:
            described.append(relation.related_spdx_element or "")
        elif (
            relation.relationship_type == "DESCRIBED_BY" and relation.related_spdx_element == document.spdx_id
        ):
            described.append(relation.spdx_element_id or "")
    return described


def _parse_spdx(data: bytes) -> ParsedSbom:
    """An SPDX 2.3 JSON document (precondition: `parse_sbom` checked spdxVersion, §6.1).

    tools: creationInfo.creators (§6.8) entries "Tool: x", as x; described: the first
    described id (`_spdx_described`) that names a package of the document; components:
    every other package.
    """
    try:
        document = _spdx_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{SPDX}: {exc}") from None
    tools = []
    for number, creator in enumerate(document.creation_info.creators):
        if creator.startswith(SPDX_TOOL_PREFIX):
            tool = _text(creator.removeprefix(SPDX_TOOL_PREFIX), SPDX, f"creationInfo.creators[{number}]")
            if tool is not None:
                tools.append(tool)
    packages = [_spdx_package(package, f"packages[{n}]") for n, package in enumerate(document.packages)]
    by_id = {package.spdx_id: n for n, package in enumerate(document.packages) if package.spdx_id}
    described_index = next((by_id[ref] for ref in _spdx_described(document) if ref in by_id), None)
    described = packages[described_index] if described_index is not None else None
    return ParsedSbom(
        format="SPDX",
        spec_version=document.spdx_version.removeprefix("SPDX-"),
        tools=tuple(tools),
        described=described,
        components=soup_order(p for n, p in enumerate(packages) if n != described_index),
    )


def parse_sbom(data: bytes) -> ParsedSbom:
    """The SOUP items of a CycloneDX JSON (1.4 to 1.6) or SPDX JSON (2.3) SBOM, format auto-detected.

    Precondition: none; `data` is untrusted. CycloneDX is recognised by `bomFormat`
    "CycloneDX" with `specVersion` "1.4", "1.5" or "1.6" (bom-1.6.schema.json), SPDX by
    `spdxVersion` "SPDX-2.3" (SPDX 2.3 §6.1); anything else (XML, tag-value, CycloneDX 1.2,
    SPDX-2.2, SPDX 3) is an EncodingError naming the supported formats. A UTF-8 byte
    order mark before the JSON is ignored (RFC 8259 §8.1).

    Per component: CycloneDX `name`, `version`, supplier from `supplier.name`, else
    `publisher`, else `manufacturer.name` (1.6), else `author`, else the `authors`
    names (1.6); licence from `licenses` (`license.id`, `license.name`, `expression`,
    several joined with " AND "); `purl`. SPDX: `name` (§7.1), `versionInfo` (§7.3),
    `supplier` (§7.5) else `originator` (§7.6) without "Organization: "/"Person: ",
    `licenseConcluded` (§7.13) else `licenseDeclared` (§7.15), NOASSERTION and NONE
    counting as absent, and the `purl` external reference (§7.21).

    Refused with an EncodingError: malformed JSON, a known field of the wrong type, a
    component without a name, and any kept text (name, version, supplier, licence,
    purl, tool) over MAX_FIELD_CHARS (1,024) characters, rather than truncated: a
    SOUP list must not silently differ from its SBOM. TooLargeError over MAX_SBOM_BYTES.
    """
    check_sbom_size(data, "SBOM")
    data = strip_bom(data)
    try:
        probe = _probe_decoder.decode(data)
    except JSON_ERRORS as exc:
        raise EncodingError(f"SBOM is not a JSON object ({exc}); expected {SUPPORTED}") from None
    if probe.bom_format is not None:
        if probe.bom_format != "CycloneDX":
            raise EncodingError(
                f"SBOM: bomFormat {probe.bom_format!r} is not CycloneDX; expected {SUPPORTED}"
            )
        if probe.spec_version not in CYCLONEDX_VERSIONS:
            raise EncodingError(
                f"{CYCLONEDX}: specVersion {probe.spec_version!r} is not supported; expected {SUPPORTED}"
            )
        return _parse_cyclonedx(data)
    if probe.spdx_version is not None:
        if probe.spdx_version != SPDX_VERSION:
            raise EncodingError(
                f"{SPDX}: spdxVersion {probe.spdx_version!r} is not supported; expected {SUPPORTED}"
            )
        return _parse_spdx(data)
    raise EncodingError(f"SBOM has neither bomFormat nor spdxVersion; expected {SUPPORTED}")


def encode_soup_list(components: Sequence[SoupComponent]) -> bytes:
    """The canonical JSON of a SOUP list: `{"components": [...]}`, keys sorted, absent fields omitted.

    Components are deduplicated and sorted (`soup_order`), so equal sets of components
    give equal bytes whatever their order. Precondition: every text of every component
    is 1 to MAX_FIELD_CHARS characters, else EncodingError (what `decode_soup_list`
    would refuse is never written).
    """
    data = _soup_encoder.encode(SoupList(components=list(soup_order(components))))
    decode_soup_list(data)
    return data


def decode_soup_list(data: bytes) -> tuple[SoupComponent, ...]:
    """The components of a SOUP list written by `encode_soup_list`; EncodingError for anything else.

    Precondition: none. Refused: malformed JSON, unknown fields, wrong types, a text
    empty or over MAX_FIELD_CHARS characters, and components not in canonical order
    (sorted by `soup_key`, no duplicates).
    """
    try:
        components = tuple(_soup_decoder.decode(data).components)
    except JSON_ERRORS as exc:
        raise EncodingError(f"{SOUP_LIST}: {exc}") from None
    for number in range(1, len(components)):
        before, here = soup_key(components[number - 1]), soup_key(components[number])
        if here == before:
            raise EncodingError(f"{SOUP_LIST}: components[{number}] repeats components[{number - 1}]")
        if here < before:
            raise EncodingError(
                f"{SOUP_LIST}: components[{number}] sorts before components[{number - 1}]; "
                "components must be sorted by name, version and purl"
            )
    return components


def soup_gaps(components: Iterable[SoupComponent]) -> dict[str, int]:
    """How many components lack a version, a supplier, a licence (keys "version", "supplier", "licence").

    IEC 62304 §8.1.2 asks for each SOUP item's title, manufacturer and version; the
    reviewer sees at a glance how many the SBOM leaves open.
    """
    gaps = {"version": 0, "supplier": 0, "licence": 0}
    for component in components:
        gaps["version"] += component.version is None
        gaps["supplier"] += component.supplier is None
        gaps["licence"] += component.licence is None
    return gaps
