"""What anchors a checkpoint outside the operator, as an inspector checks it offline. Pure.

Two anchors (docs/trust-model.md): a quorum of independent witnesses cosigned the
checkpoint (c2sp.org/tlog-witness, `ledger.verify.witness_policy`), and time-stamping
authorities the inspector trusts stated, in RFC 3161 tokens over the SHA-256 of the
checkpoint's note text, that it existed by a time (`ledger.verify.trusted_time`). Every
verifier (`verify`, `verify-log`, `verify-proof`, `verify-consistency`, `report`,
`monitor`) takes the same `Trust` and refuses a checkpoint without what it requires.

Trusted time then bounds the ledger's own clock: every entry under a timestamped
checkpoint existed by the token's time, so an entry time later than that (beyond
`CLOCK_TOLERANCE`) is a clock the ledger misstated; and a compliance evaluation that
carries the token cannot have been made before it, so an exception's expiry cannot be
dodged by backdating the evaluation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import msgspec

from ledger.core.checkpoint import Checkpoint
from ledger.core.encoding import JSON_ERRORS, b64decode_strict, format_time
from ledger.core.note import parse_note
from ledger.errors import EncodingError, LedgerError, VerificationError
from ledger.records.formats import parse_offset_time
from ledger.rules.replay import latest_plausible_time
from ledger.verify.trusted_time import TrustedTime, TsaCertificate, verify_timestamp
from ledger.verify.witness_policy import Quorum, WitnessPolicy, check_quorum

CLOCK_TOLERANCE = timedelta(seconds=60)
"""How far the ledger's clock may run ahead of an authority's before an entry time is refused.

The sequencer refuses to append when the database's clock and its own differ by more than
10 s; an authority's clock is within a second of UTC; a minute leaves room for both.
"""


class ServedAnchors(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A checkpoint with its anchors, as `GET /v1/anchors` serves it (docs/http-api.md).

    `checkpoint` is the ledger's signed note with each witness cosignature as one more
    signature line (c2sp.org/tlog-cosignature); `timestamps` are RFC 3161 TimeStampResp
    messages (base64 of DER) over the SHA-256 of the note's text (docs/trusted-time.md).
    """

    tree_size: int
    checkpoint: str
    timestamps: list[str]


_served_anchors = msgspec.json.Decoder(ServedAnchors)


def decode_served_anchors(body: bytes, where: str) -> ServedAnchors:
    """Decode what a server answered; VerificationError when it is not that document (it is not trusted)."""
    try:
        return _served_anchors.decode(body)
    except JSON_ERRORS as exc:
        raise VerificationError(f"the anchors {where} served are malformed: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Trust:
    """What an inspector trusts beyond the ledger key: a witness policy and TSA certificates."""

    policy: WitnessPolicy | None = None
    tsa_certificates: tuple[TsaCertificate, ...] = ()

    @property
    def requires_anchors(self) -> bool:
        """Whether a checkpoint signed by the ledger alone is refused."""
        return self.policy is not None or bool(self.tsa_certificates)


@dataclass(frozen=True, slots=True)
class Anchoring:
    """What the anchors of one checkpoint established."""

    quorum: Quorum | None
    times: tuple[TrustedTime, ...]

    @property
    def existed_by(self) -> datetime | None:
        """The earliest trusted time by which the checkpoint existed (None without tokens)."""
        return min((t.time for t in self.times), default=None)

    def statements(self) -> list[str]:
        """One line per anchor checked, for a verifier's output."""
        lines = [] if self.quorum is None else [f"checkpoint {self.quorum.statement()}"]
        lines += [
            f"checkpoint existed by {t.time.isoformat()} (RFC 3161 token by {t.tsa})" for t in self.times
        ]
        return lines


LEDGER_KEY_ONLY = Trust()
"""Trust in the ledger key alone: no witness quorum or trusted time is required."""
NO_ANCHORS = Anchoring(None, ())
"""What a check under LEDGER_KEY_ONLY establishes beyond the ledger's signature: nothing."""


def check_anchoring(note: str | bytes, timestamps: Sequence[bytes], trust: Trust) -> Anchoring:
    """Check the anchors `trust` requires of a checkpoint the caller opened with the ledger key.

    With a policy: its quorum of cosignatures (VerificationError when short). With TSA
    certificates: at least one token, and every token given must verify against them for
    this checkpoint's note text (VerificationError naming the failure: another checkpoint,
    an untrusted authority, an edited token). Tokens are not examined when no certificate
    is trusted: an unchecked token proves nothing.
    """
    quorum = None if trust.policy is None else check_quorum(note, trust.policy)
    if not trust.tsa_certificates:
        return Anchoring(quorum, ())
    if not timestamps:
        raise VerificationError(
            "the checkpoint carries no RFC 3161 timestamp token, and --tsa-cert requires one"
        )
    text = parse_note(note).text
    times = []
    for number, token in enumerate(timestamps, 1):
        try:
            times.append(verify_timestamp(token, text, trust.tsa_certificates))
        except LedgerError as exc:
            raise VerificationError(f"timestamp token #{number} of the checkpoint: {exc}") from exc
    return Anchoring(quorum, tuple(times))


def decode_timestamps(values: Iterable[str], where: str) -> list[bytes]:
    """Base64 tokens as a dossier or `/v1/anchors` carries them; VerificationError for a malformed one."""
    try:
        return [b64decode_strict(value, f"{where} timestamp token") for value in values]
    except EncodingError as exc:
        raise VerificationError(str(exc)) from exc


AnchorCheck = Callable[[bytes, Checkpoint], Anchoring]
"""Checks the anchors of a served checkpoint (its note bytes, and the checkpoint they opened to)."""


def entry_time_limit(anchoring: Anchoring) -> str:
    """The latest entry time these anchors allow: the trusted time, else the verifier's clock.

    Each with its tolerance, as `format_time` text (what `LogReplayer`'s `not_after` takes).
    """
    clock = latest_plausible_time()
    bound = anchoring.existed_by
    return clock if bound is None else min(clock, format_time(bound + CLOCK_TOLERANCE))


def check_entry_times(anchoring: Anchoring, times: Iterable[tuple[int, str]]) -> None:
    """Every (index, RFC 3339 time) of an entry under the checkpoint is no later than its trusted time.

    VerificationError names the first entry whose time is after the earliest token's time by
    more than CLOCK_TOLERANCE: the ledger's clock stated a time the checkpoint had not reached.
    """
    bound = anchoring.existed_by
    if bound is None:
        return
    for index, text in times:
        moment = _moment(text, f"entry {index} time")
        if moment > bound + CLOCK_TOLERANCE:
            raise VerificationError(
                f"entry {index} claims a time after its checkpoint's trusted time: the ledger clock is wrong",
                expected=f"<= {bound.isoformat()}",
                calculated=text,
                labels=("trusted time", "entry time"),
            )


def check_evaluation_time(anchoring: Anchoring, evaluated_at: str) -> None:
    """A compliance evaluation carrying the checkpoint's tokens was made no earlier than them.

    VerificationError when `evaluated_at` precedes the earliest token's time by more than
    CLOCK_TOLERANCE: the evaluation was backdated (say, to before an exception expired).
    """
    bound = anchoring.existed_by
    if bound is None:
        return
    moment = _moment(evaluated_at, "evaluation time")
    if moment < bound - CLOCK_TOLERANCE:
        raise VerificationError(
            "the compliance evaluation is dated before its checkpoint's trusted time: it was backdated",
            expected=f">= {bound.isoformat()}",
            calculated=evaluated_at,
            labels=("trusted time", "evaluated at"),
        )


def _moment(text: str, what: str) -> datetime:
    moment = parse_offset_time(text)
    if moment is None:
        raise VerificationError(f"{what} {text!r} is not an RFC 3339 time")
    return moment
