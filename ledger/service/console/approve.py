"""Approving in the browser (docs/console.md "Approving a release"; 21 CFR 11.50, 11.100, 11.200).

The person's Ed25519 key is made by WebCrypto in their browser, non-extractable, and stays there
(static/approve/). An admin registers its public key like any other (`evledger key register`),
with the roles the person signs in. Then:

1. `GET /ui/signing-key` lets the person make the key and shows its public key and whether the
   ledger has registered it (`GET /ui/signing-key/status`).
2. `GET /ui/releases/{p}/{v}/approve` shows the release's candidates and events to review.
3. `POST …/approve/statement` makes the exact statement (ledger.records.approval), dated now,
   for the page to show in full before anything is signed. It checks first what admission
   would refuse later: the key is registered, live, allowed for the product and the role.
4. The person re-authenticates (their sign-in token, entered again: 11.200(a)(1)) and the page
   signs the statement in the browser. `POST …/approve` appends the signed envelope as a normal
   approval, through the same Appender as `POST /v1/entries`, only when the credential is the
   session's own, the statement is an approval of this release and it was dated at most
   `SIGNING_WINDOW` ago.

These routes answer JSON (they are called by the page's script) with the API's error body; they
need the session, the console's origin and its CSRF secret, and a token that may append for
the product.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import msgspec
from litestar import Request, get, post
from litestar.params import FromQuery
from litestar.response import Template
from litestar.response.base import ASGIResponse

from ledger.compliance.facts import collect
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope
from ledger.core.encoding import format_time, parse_time
from ledger.core.tiles import MAX_ENTRY_SIZE
from ledger.errors import InputError, LedgerError, PermissionDeniedError
from ledger.query import timeline
from ledger.records.approval import approval_in, approval_statement
from ledger.records.attest import idempotency_key
from ledger.records.predicates import Approval
from ledger.rules.events import Event
from ledger.rules.registry import RegisteredKey
from ledger.service.auth import APPEND_ROLES, Token, admit
from ledger.service.console.pages import (
    JSON_CALL_ERRORS,
    SESSION,
    ConsoleSvc,
    SignedIn,
    frame,
    page,
    same_origin,
)
from ledger.service.console.sessions import Session
from ledger.service.params import Product, Version
from ledger.service.state import ServiceState
from ledger.service.wire import decode_body, json_response

SIGNING_WINDOW_MINUTES = 15  # from the statement shown to the signature sent
SIGNING_WINDOW = timedelta(minutes=SIGNING_WINDOW_MINUTES)
CLOCK_SKEW = timedelta(minutes=1)
DRAFT_BODY_LIMIT = 64 * 1024  # the choices of a form; a release's entries fit many times over
SIGNED_BODY_LIMIT = MAX_ENTRY_SIZE + 4096  # an envelope, a credential and the CSRF secret
MEANINGS = ("review", "approval", "responsibility", "authorship")
DECISIONS = ("approved", "rejected")


class KeyStatus(msgspec.Struct, frozen=True):
    """What the ledger knows of a signing key: registered or not, to whom, for what."""

    keyid: str
    registered: bool
    owner: str | None = None
    roles: list[str] = msgspec.field(default_factory=list)
    products: list[str] = msgspec.field(default_factory=list)
    registered_at: int | None = None
    revoked_at: int | None = None
    revoke_reason: str | None = None
    expires: str | None = None


class ApprovalDraft(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The approval form: what the person chose, the key that will sign, the CSRF secret."""

    keyid: str
    role: str
    meaning: str
    decision: str
    artifact_digest: str
    entries: list[int]
    csrf: str
    comment: str | None = None


class SignerView(msgspec.Struct, frozen=True):
    """Who signs: the key and its registered owner and roles."""

    keyid: str
    owner: str
    roles: list[str]


class PreparedApproval(msgspec.Struct, frozen=True):
    """The exact statement to sign (base64 of its bytes: the page shows what they say) and its signer."""

    payload_type: str
    payload: str
    signer: SignerView
    signed_at: str


class SignedApproval(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """The signed envelope, the credential entered again at signing, and the CSRF secret."""

    envelope: Envelope
    credential: str
    csrf: str


class AppendedApproval(msgspec.Struct, frozen=True):
    """Where the approval went: its entry, and the page that shows it."""

    index: int
    leaf_hash: str
    time: str
    replayed: bool
    release_page: str


Form = TypeVar("Form", ApprovalDraft, SignedApproval)
_draft_decoder = msgspec.json.Decoder(ApprovalDraft)
_signed_decoder = msgspec.json.Decoder(SignedApproval)


def _may_approve(session_token: Token, product: str) -> Token:
    """The session's token, when it may append for `product`; PermissionDeniedError otherwise."""
    try:
        token = admit(session_token, APPEND_ROLES)
    except PermissionDeniedError:
        raise PermissionDeniedError(
            "approving needs a session started with an appender's (or an admin's) token; "
            f"this one has role {session_token.row.role!r}"
        ) from None
    token.require_product(product)
    return token


async def _approver_form(
    request: Request[Any, Any, Any], session: Session, decoder: msgspec.json.Decoder[Form], product: str
) -> tuple[Form, Token]:
    """The posted JSON form and the session's token; 400 or 403 unless it may be acted on.

    The form must come from this console, carry the session's CSRF secret, and the session's
    token must be one that may approve for `product`.
    """
    same_origin(request)
    form = cast("Form", decode_body(decoder, await request.body(), "the form"))
    session.require_csrf(form.csrf)
    return form, _may_approve(session.token, product)


async def _registered(svc: ServiceState, keyid: str) -> RegisteredKey | None:
    registry = await timeline.current_registry(svc.store, svc.sequencer, [keyid])
    return registry.keys.get(keyid)


def _status(keyid: str, key: RegisteredKey | None) -> KeyStatus:
    if key is None:
        return KeyStatus(keyid, registered=False)
    return KeyStatus(
        keyid, registered=True, owner=key.owner, roles=sorted(key.roles), products=sorted(key.products),
        registered_at=key.registered_at, revoked_at=key.revoked_at, revoke_reason=key.revoke_reason or None,
        expires=format_time(key.expires) if key.expires is not None else None,
    )  # fmt: skip


def _signer(key: RegisteredKey | None, keyid: str, product: str, role: str) -> RegisteredKey:
    """The registered key that will sign; the reason admission would refuse it, before anything is signed."""
    if key is None:
        raise PermissionDeniedError(
            f"the key {keyid} is not registered in the ledger; ask an admin to register it "
            "(the signing key page shows its public key)"
        )
    if key.revoked_at is not None:
        raise PermissionDeniedError(f"the key {keyid} was revoked at entry {key.revoked_at}")
    if key.expired_at(datetime.now(UTC)):
        raise PermissionDeniedError(f"the key {keyid} has expired")
    if not key.allows_product(product):
        raise PermissionDeniedError(f"{key.owner}'s key {keyid} is not registered for product {product!r}")
    if role not in key.roles:
        raise PermissionDeniedError(
            f"{key.owner}'s key {keyid} is registered with roles {', '.join(sorted(key.roles)) or 'none'}, "
            f"not {role!r}"
        )
    return key


def _candidates(events: list[Event]) -> list[str]:
    """The digests of what the release's builds produced (as the policy's rules read builds), oldest first."""
    facts = collect(events)
    built = [a.digest for build in facts.builds for a in facts.build_artifacts(build)]
    return list(dict.fromkeys(built))


async def _open_release(svc: ServiceState, product: str, version: str) -> timeline.ReleaseTimeline:
    found = await timeline.release_timeline(svc.store, svc.index, svc.sequencer, product, version)
    if found.sealed:
        raise PermissionDeniedError(f"release {product} {version} is sealed: nothing can be appended to it")
    return found


@get("/signing-key", dependencies=SESSION)
async def signing_key_page(session: SignedIn) -> Template:
    """The person's signing key in this browser: make it, read its public key, see if it is registered."""
    return page("signing_key.html", **frame(session))


@get("/signing-key/status", dependencies=SESSION, exception_handlers=JSON_CALL_ERRORS)
async def signing_key_status(
    svc: ConsoleSvc, session: SignedIn, keyid: FromQuery[str | None] = None
) -> ASGIResponse:
    """JSON: whether the ledger has registered the key `keyid`, to whom and for what."""
    del session  # any signed-in person may ask about a public key
    if not keyid or len(keyid) > 300:
        raise InputError("keyid must be a key's `<name>+<8 hex>`")
    return json_response(_status(keyid, await _registered(svc, keyid)))


@get("/releases/{product:str}/{version:str}/approve", dependencies=SESSION)
async def approve_page(svc: ConsoleSvc, session: SignedIn, product: Product, version: Version) -> Template:
    """The approval form: the candidates, the events to review, the role, meaning and decision."""
    _may_approve(session.token, product)
    found = await _open_release(svc, product, version)
    return page(
        "approve.html",
        **frame(
            session, product=product, version=version, events=found.events,
            candidates=_candidates(found.events), meanings=MEANINGS, decisions=DECISIONS,
        ),
    )  # fmt: skip


@post(
    "/releases/{product:str}/{version:str}/approve/statement",
    dependencies=SESSION,
    exception_handlers=JSON_CALL_ERRORS,
    request_max_body_size=DRAFT_BODY_LIMIT,
    status_code=200,
)
async def prepare_approval(
    request: Request[Any, Any, Any], svc: ConsoleSvc, session: SignedIn, product: Product, version: Version
) -> ASGIResponse:
    """JSON: the exact statement the person will sign, dated now, after checking it can be appended."""
    draft, _ = await _approver_form(request, session, _draft_decoder, product)
    found = await _open_release(svc, product, version)
    if not draft.entries:
        raise InputError("name at least one entry you reviewed")
    strangers = sorted(set(draft.entries) - {event.index for event in found.events})
    if strangers:
        raise InputError(f"entries {', '.join(map(str, strangers))} are not events of {product} {version}")
    if draft.artifact_digest not in _candidates(found.events):
        raise InputError(f"{draft.artifact_digest} is not an artifact built for {product} {version}")
    key = _signer(await _registered(svc, draft.keyid), draft.keyid, product, draft.role)
    signed_at = format_time(datetime.now(UTC))
    payload = approval_statement(
        product=product, version=version, role=draft.role, meaning=draft.meaning, decision=draft.decision,
        artifact_digest=draft.artifact_digest, entries=draft.entries, signed_at=signed_at,
        comment=(draft.comment or "").strip() or None,
    )  # fmt: skip
    prepared = PreparedApproval(
        payload_type=INTOTO_PAYLOAD_TYPE,
        payload=base64.b64encode(payload).decode(),
        signer=SignerView(key.keyid, key.owner, sorted(key.roles)),
        signed_at=signed_at,
    )
    return json_response(prepared)


def _check_signed(approval: Approval, product: str, version: str, now: datetime) -> None:
    """InputError unless the approval is of this release and was dated within the signing window."""
    if (approval.release.product, approval.release.version) != (product, version):
        raise InputError(
            f"the statement approves {approval.release.product} {approval.release.version}, "
            f"not {product} {version}"
        )
    if approval.signed_at is None:
        raise InputError("the statement does not say when it was signed")
    dated = parse_time(approval.signed_at)
    if dated > now + CLOCK_SKEW or now - dated > SIGNING_WINDOW:
        raise InputError(
            f"the statement was dated {approval.signed_at}; sign within {SIGNING_WINDOW_MINUTES} minutes "
            "of reviewing it: review it again"
        )


@post(
    "/releases/{product:str}/{version:str}/approve",
    dependencies=SESSION,
    exception_handlers=JSON_CALL_ERRORS,
    request_max_body_size=SIGNED_BODY_LIMIT,
    status_code=201,
)
async def append_approval(
    request: Request[Any, Any, Any], svc: ConsoleSvc, session: SignedIn, product: Product, version: Version
) -> ASGIResponse:
    """JSON: append the approval signed in the browser, after re-authentication; 201 with its entry."""
    signed, token = await _approver_form(request, session, _signed_decoder, product)
    again = await svc.tokens.authenticate(f"Bearer {signed.credential.strip()}", APPEND_ROLES)
    if again.row.token_id != token.row.token_id:
        raise PermissionDeniedError("re-authenticate with the token you signed in with; nothing was appended")
    envelope = signed.envelope
    try:
        payload = base64.b64decode(envelope.payload, validate=True)
    except ValueError:
        raise InputError("the envelope's payload is not base64") from None
    try:
        approval = approval_in(payload)
    except LedgerError as exc:
        raise InputError(str(exc)) from None
    _check_signed(approval, product, version, datetime.now(UTC))
    await _open_release(svc, product, version)
    receipts, replayed = await svc.appender.append([envelope], token, idempotency_key(payload, payload))
    receipt = receipts[0]
    return json_response(
        AppendedApproval(
            receipt.index, receipt.leaf_hash, receipt.time, replayed,
            f"/ui/releases/{product}/{version}",
        ),
        200 if replayed else 201,
    )  # fmt: skip


APPROVAL_ROUTES = [signing_key_page, signing_key_status, approve_page, prepare_approval, append_approval]
"""The approval pages and calls, for the console's router."""
