"""Witness policies: which witnesses a verifier trusts, and how many must cosign a checkpoint. Pure.

A checkpoint signed by the ledger alone proves only what the ledger's key holder says;
a checkpoint cosigned by a quorum of independent witnesses (C2SP tlog-witness) proves
that at least that many parties saw this tree, and no other of its size or smaller, as
the latest of this log. The policy file has one directive a line (docs/trust-model.md)::

    # comment
    witness qa.example/w1 qa.example/w1+1a2b3c4d+BAx... https://w1.qa.example
    witness body.example/w2 body.example/w2+5e6f7a8b+BAy... https://w2.body.example
    quorum 2

The verifier key is a `cosignature/v1` key (signature type 0x04, c2sp.org/tlog-cosignature);
the URL is where the ledger submits checkpoints (verifiers ignore it). The same file
configures the ledger (`serve --witness-policy`) and every verifier.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger.core.cosignature import Cosignature, cosignatures_of
from ledger.core.keys import ALG_COSIGNATURE_V1, VerifierKey, parse_verifier_key
from ledger.errors import InputError, KeyFormatError, VerificationError

MAX_POLICY_BYTES = 64 * 1024
MAX_WITNESSES = 64


@dataclass(frozen=True, slots=True)
class Witness:
    """One witness of a policy: its local name, its cosignature/v1 verifier key, its submission URL."""

    name: str
    key: VerifierKey
    url: str


@dataclass(frozen=True, slots=True)
class WitnessPolicy:
    """The witnesses a verifier trusts and how many of them must cosign (1 <= quorum <= witnesses)."""

    witnesses: tuple[Witness, ...]
    quorum: int

    @property
    def keys(self) -> tuple[VerifierKey, ...]:
        """The witnesses' verifier keys, in policy order."""
        return tuple(w.key for w in self.witnesses)

    def describe(self) -> str:
        """`2 of 3 witnesses (a, b, c)`: what the policy requires, for output and errors."""
        names = ", ".join(w.name for w in self.witnesses)
        return f"{self.quorum} of {len(self.witnesses)} witnesses ({names})"


@dataclass(frozen=True, slots=True)
class Quorum:
    """The policy's witnesses that cosigned one checkpoint, each with the time its cosignature states."""

    policy: WitnessPolicy
    cosigned: tuple[tuple[Witness, int], ...]  # (witness, cosignature timestamp, Unix seconds)

    def statement(self) -> str:
        """`cosigned by 2 of 2 required witnesses: w1, w2`."""
        names = ", ".join(w.name for w, _ in self.cosigned) or "none"
        return f"cosigned by {len(self.cosigned)} of {self.policy.quorum} required witnesses: {names}"


def parse_witness_policy(text: str, source: str = "witness policy") -> WitnessPolicy:
    """Parse a policy file: `witness <name> <verifier key> <url>` lines and one `quorum <n>` line.

    Blank lines and lines starting with `#` are ignored. Refused with an InputError naming
    the line: an unknown directive, a key that is not a cosignature/v1 key, a repeated
    witness name or key, a URL that is not http(s), a missing or repeated quorum, or a
    quorum outside 1..number of witnesses.
    """
    if len(text.encode()) > MAX_POLICY_BYTES:
        raise InputError(f"{source} is larger than {MAX_POLICY_BYTES} bytes")
    witnesses: list[Witness] = []
    quorums: list[int] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = f"{source} line {number}"
        directive, *args = line.split()
        if directive == "witness":
            witnesses.append(_witness(args, where, witnesses))
        elif directive == "quorum":
            quorums.append(_quorum(args, where, quorums))
        else:
            raise InputError(f"{where}: unknown directive {directive!r} (expected `witness` or `quorum`)")
    if not witnesses:
        raise InputError(f"{source} names no witness")
    if len(witnesses) > MAX_WITNESSES:
        raise InputError(f"{source} names {len(witnesses)} witnesses, more than {MAX_WITNESSES}")
    if not quorums:
        raise InputError(f"{source} has no `quorum <n>` line")
    if not 1 <= quorums[0] <= len(witnesses):
        raise InputError(f"{source}: quorum {quorums[0]} is not between 1 and its {len(witnesses)} witnesses")
    return WitnessPolicy(tuple(witnesses), quorums[0])


def _quorum(args: list[str], where: str, earlier: list[int]) -> int:
    if earlier:
        raise InputError(f"{where}: a second quorum line")
    if len(args) != 1 or not args[0].isdigit():
        raise InputError(f"{where}: expected `quorum <n>`, n a whole number")
    return int(args[0])


def _witness(args: list[str], where: str, earlier: list[Witness]) -> Witness:
    if len(args) != 3:
        raise InputError(f"{where}: expected `witness <name> <verifier key> <url>`")
    name, key_text, url = args
    try:
        key = parse_verifier_key(key_text, ALG_COSIGNATURE_V1)
    except KeyFormatError as exc:
        raise InputError(
            f"{where}: {exc} (a witness key is a cosignature/v1 key, as `evledger keygen NAME --witness` "
            "makes and `evledger witness serve` prints)"
        ) from exc
    if not url.startswith(("http://", "https://")):
        raise InputError(f"{where}: witness URL {url!r} is not an http:// or https:// URL")
    for other in earlier:
        if other.name == name:
            raise InputError(f"{where}: witness {name!r} is named twice")
        if other.key == key:
            raise InputError(f"{where}: witness key {key.keyid} is listed twice (as {other.name!r})")
    return Witness(name, key, url.rstrip("/"))


def cosigners(note: str | bytes, policy: WitnessPolicy) -> tuple[tuple[Witness, int], ...]:
    """The policy's witnesses whose cosignature on `note` verifies, with their timestamps, in policy order.

    Lines by keys outside the policy are ignored (c2sp.org/signed-note); a line by a policy
    witness that does not verify fails the whole note (SignatureError, from `cosignatures_of`).
    Precondition: the ledger's own signature on `note` was checked by the caller.
    """
    found: dict[VerifierKey, Cosignature] = {c.verifier: c for c in cosignatures_of(note, policy.keys)}
    return tuple((w, found[w.key].timestamp) for w in policy.witnesses if w.key in found)


def check_quorum(note: str | bytes, policy: WitnessPolicy) -> Quorum:
    """The quorum of `note` under `policy`; VerificationError when fewer witnesses cosigned than it needs.

    Precondition: the ledger's own signature on `note` was checked by the caller
    (`open_checkpoint`); this checks only the cosignatures (c2sp.org/tlog-cosignature).
    """
    quorum = Quorum(policy, cosigners(note, policy))
    if len(quorum.cosigned) < policy.quorum:
        raise VerificationError(
            f"checkpoint lacks its witness quorum: {quorum.statement()}",
            expected=str(policy.quorum),
            calculated=str(len(quorum.cosigned)),
            labels=("witnesses required", "witnesses that cosigned"),
        )
    return quorum
