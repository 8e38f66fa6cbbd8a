"""The log itself in the console (`/ui/log`, issue #15; docs/console.md).

What an auditor checks before trusting anything else the ledger says: the tree's size and root,
the latest checkpoint with each signature on it named (the ledger's own; each witness's
cosignature, c2sp.org/tlog-cosignature, verified against the server's witness policy), the
RFC 3161 trusted time of the checkpoint (verified against the authorities' certificates the
server was given, `ledger.verify.trusted_time`), and, when the server has witnesses or
authorities, the newest anchored checkpoint (what `GET /checkpoint` serves). Then the people and
their keys with roles and history, replayed from the log's key records as `GET /v1/keys` and
`evledger key list` are, and every policy version published. Long lists come a page at a time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import get
from litestar.params import QueryParameter
from litestar.response import Template

from ledger.core.checkpoint import parse_checkpoint_text
from ledger.core.cosignature import add_cosignatures
from ledger.core.encoding import format_time
from ledger.core.keys import VerifierKey
from ledger.core.note import NoteSignature, parse_note
from ledger.errors import InputError, LedgerError
from ledger.query import audit_lists
from ledger.service.console.pages import SESSION, ConsoleSvc, SignedIn, frame, page
from ledger.service.witnessing_config import WitnessingConfig
from ledger.storage.protocol import Anchors, CheckpointRow
from ledger.verify.trusted_time import decode_token, verify_timestamp
from ledger.verify.witness_policy import Witness, cosigners

KEYS_PAGE = 100  # keys, people and policies each come this many to a page
MAX_START = 10**9


@dataclass(frozen=True, slots=True)
class SignatureView:
    """One signature line of a checkpoint: who made it, and what was checked of it."""

    name: str
    key_id: str  # 8 hex digits
    signer: str  # "ledger", "witness <name in the policy>", or "unknown key"
    time: str | None  # the time a witness's cosignature states (verified), RFC 3339
    verified: bool
    problem: str = ""


@dataclass(frozen=True, slots=True)
class TimeView:
    """One RFC 3161 token of a checkpoint: the authority asked, what it states, whether it verified."""

    authority: str  # the URL the ledger asked
    tsa: str  # the subject of the certificate that signed it ("" when not verified)
    time: str  # its genTime, RFC 3339
    serial: int
    verified: bool
    problem: str = ""


@dataclass(frozen=True, slots=True)
class CheckpointView:
    """A checkpoint as the page shows it: its note with every signature gathered, each named."""

    origin: str
    tree_size: int
    root_hex: str
    note: str
    signatures: list[SignatureView]
    times: list[TimeView]
    quorum: str  # what the witness policy required and got ("" without a policy)


Cosigners = dict[tuple[str, int], tuple[Witness, int]]  # (key name, key id) -> (witness, timestamp)


def _witness_signatures(note: str, config: WitnessingConfig) -> tuple[Cosigners, str]:
    """(name, key id) -> (witness, timestamp) of the policy's witnesses that verified, and the quorum line."""
    policy = config.policy
    if policy is None:
        return {}, ""
    try:
        found = cosigners(note, policy)
    except LedgerError as exc:
        return {}, f"a cosignature does not verify: {exc}"
    names = ", ".join(w.name for w, _ in found) or "none"
    line = f"cosigned by {len(found)} of the {policy.quorum} witnesses the policy requires: {names}"
    return {(w.key.name, w.key.key_id): (w, ts) for w, ts in found}, line


def _signature(sig: NoteSignature, ledger_key: VerifierKey, witnesses: Cosigners) -> SignatureView:
    key_id = f"{sig.key_id:08x}"
    if (sig.name, sig.key_id) == (ledger_key.name, ledger_key.key_id):
        return SignatureView(sig.name, key_id, "ledger", None, verified=True)
    known = witnesses.get((sig.name, sig.key_id))
    if known is not None:
        witness, stamp = known
        time = format_time(datetime.fromtimestamp(stamp, UTC))
        return SignatureView(sig.name, key_id, f"witness {witness.name}", time, verified=True)
    return SignatureView(
        sig.name, key_id, "unknown key", None, verified=False,
        problem="not a key of this server's witness policy: not checked",
    )  # fmt: skip


def _times(text: str, anchors: Anchors, config: WitnessingConfig) -> list[TimeView]:
    """Each token of the checkpoint, verified against the certificates the server trusts for its authority."""
    trusted = {a.url: a.certificates for a in config.authorities}
    views = []
    for url, token in anchors.timestamps:
        certificates = trusted.get(url) or tuple(c for a in config.authorities for c in a.certificates)
        try:
            if certificates:
                said = verify_timestamp(token, text, certificates)
                views.append(TimeView(url, said.tsa, format_time(said.time), said.serial, verified=True))
                continue
            info = decode_token(token).tst_info
            views.append(
                TimeView(
                    url, "", format_time(info.gen_time.astimezone(UTC)), info.serial_number,
                    verified=False, problem="this server trusts no certificate for it: not checked",
                )
            )  # fmt: skip
        except LedgerError as exc:
            views.append(TimeView(url, "", "", 0, verified=False, problem=str(exc)))
    return views


def checkpoint_view(
    row: CheckpointRow, anchors: Anchors, ledger_key: VerifierKey, config: WitnessingConfig
) -> CheckpointView:
    """`row` with the cosignatures and tokens kept for it, each signature and token named and checked.

    Precondition: `row`'s own signature was verified with `ledger_key` (`ServiceState` does).
    """
    note = add_cosignatures(row.note, anchors.cosignatures)
    parsed = parse_note(note)
    checkpoint = parse_checkpoint_text(parsed.text)
    witnesses, quorum = _witness_signatures(note, config)
    return CheckpointView(
        origin=checkpoint.origin,
        tree_size=checkpoint.size,
        root_hex=checkpoint.root_hash.hex(),
        note=note,
        signatures=[_signature(s, ledger_key, witnesses) for s in parsed.signatures],
        times=_times(parsed.text, anchors, config),
        quorum=quorum,
    )


@dataclass(frozen=True, slots=True)
class KeyView:
    """A key with its status and history, its signers named by owner."""

    history: audit_lists.KeyHistory
    status: str  # active, revoked or expired
    expires: str  # RFC 3339, "" when it never expires
    registered_by: str
    revoked_by: str


@dataclass(frozen=True, slots=True)
class Person:
    """An owner of keys: the roles and products of their active keys, and how many keys."""

    owner: str
    roles: list[str]
    products: list[str]
    active: int
    keys: int


def _start(value: str | None, what: str) -> int:
    """A list's first row from the query (none: 0); InputError for anything but a whole number."""
    if value is None or value == "":
        return 0
    if not value.isdecimal() or len(value) > len(str(MAX_START)) or int(value) > MAX_START:
        raise InputError(f"{what} must be a whole number from 0 to {MAX_START}, got {value[:40]!r}")
    return int(value)


def _named(keyid: str, owners: dict[str, str]) -> str:
    owner = owners.get(keyid)
    return f"{keyid} ({owner})" if owner else keyid


def _people(keys: list[KeyView]) -> list[Person]:
    owners: dict[str, list[KeyView]] = {}
    for view in keys:
        owners.setdefault(view.history.key.owner, []).append(view)
    people = []
    for owner, views in sorted(owners.items()):
        active = [v.history.key for v in views if v.status == "active"]
        roles = sorted({r for k in active for r in k.roles})
        products = sorted({p for k in active for p in k.products})
        people.append(Person(owner, roles, products, len(active), len(views)))
    return people


def _page_of(items: list[Any], name: str, starts: dict[str, int]) -> dict[str, Any]:
    """One page of list `name` from its start: its rows, and links to the pages before and after it."""
    start = starts[name]
    end = start + KEYS_PAGE

    def link(at: int) -> str:
        query = "&".join(f"{k}={at if k == name else v}" for k, v in starts.items())
        return f"/ui/log?{query}#{name}"

    return {
        "rows": items[start:end],
        "first": start + 1,
        "last": min(end, len(items)),
        "total": len(items),
        "previous": link(max(start - KEYS_PAGE, 0)) if start > 0 else None,
        "next": link(end) if end < len(items) else None,
    }


async def _anchored(svc: ConsoleSvc, latest: CheckpointRow) -> tuple[CheckpointView | None, str]:
    """The checkpoint `GET /checkpoint` serves when it is not the latest, or why there is none yet."""
    if not svc.witnessing.enabled:
        return None, ""
    try:
        served = await svc.served_checkpoint()
    except LedgerError as exc:  # none anchored yet (503), or one that does not verify
        return None, str(exc)
    if served.tree_size == latest.tree_size:
        return None, ""
    anchors = await svc.anchors.anchors(served.tree_size)
    return checkpoint_view(served, anchors, svc.sequencer.ledger_key, svc.witnessing), ""


@get("/log", dependencies=SESSION)
async def log_page(
    svc: ConsoleSvc,
    session: SignedIn,
    keys_from: Annotated[str | None, QueryParameter(name="keys")] = None,
    people_from: Annotated[str | None, QueryParameter(name="people")] = None,
    policies_from: Annotated[str | None, QueryParameter(name="policies")] = None,
) -> Template:
    """The log: tree, checkpoints with cosignatures and trusted time, people, keys and policies.

    A token scoped to products sees the keys that may sign for one of them (or for any product);
    the others are counted, not shown.
    """
    starts = {
        "keys": _start(keys_from, "keys"),
        "people": _start(people_from, "people"),
        "policies": _start(policies_from, "policies"),
    }
    latest = await svc.latest_checkpoint(fresh=True)
    ledger_key = svc.sequencer.ledger_key
    view = checkpoint_view(latest, await svc.anchors.anchors(latest.tree_size), ledger_key, svc.witnessing)
    anchored, anchored_problem = await _anchored(svc, latest)
    histories = await audit_lists.key_histories(svc.store)
    owners = {h.key.keyid: h.key.owner for h in histories}
    scope = set(session.token.row.products)
    shown = [h for h in histories if not scope or not h.key.products or scope & h.key.products]
    now = datetime.now(UTC)
    keys = [
        KeyView(
            h,
            "revoked" if h.key.revoked_at is not None else "expired" if h.key.expired_at(now) else "active",
            "" if h.key.expires is None else format_time(h.key.expires),
            _named(h.registered_by, owners),
            _named(h.revoked_by, owners) if h.revoked_by else "",
        )
        for h in shown
    ]
    policies = list(reversed(await audit_lists.published_policies(svc.store)))
    policy = svc.witnessing.policy
    return page(
        "log.html",
        **frame(
            session,
            ledger_key=ledger_key.format(),
            latest=view,
            anchored=anchored,
            anchored_problem=anchored_problem,
            witnessing=svc.witnessing.enabled,
            witnesses=[] if policy is None else [(w.name, f"{w.key.key_id:08x}") for w in policy.witnesses],
            quorum=None if policy is None else policy.quorum,
            authorities=[a.url for a in svc.witnessing.authorities],
            keys=_page_of(keys, "keys", starts),
            hidden_keys=len(histories) - len(shown),
            people=_page_of(_people(keys), "people", starts),
            policies=_page_of([(p, _named(p.signer, owners)) for p in policies], "policies", starts),
        ),
    )
