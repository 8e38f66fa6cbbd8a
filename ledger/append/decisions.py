"""Gate decisions appended to the log: evaluate a release, sign the decision, append it if nothing moved.

`POST /v1/gates/evaluate` asks for one; the HTTP route only parses, authorizes and
answers. The pure parts are elsewhere: `ledger.compliance.evaluate` judges a release's
events under the policy in force, `ledger.compliance.gate` turns the result into a
decision and its in-toto VSA statement. This module reads their inputs from the store
(`ledger.query.release_record.evaluate_release`) at a fresh checkpoint, signs the
statement with the ledger key and appends it through the `Appender`, conditional on the
release chain it evaluated: an entry that joined the release meanwhile (a rejection, say)
makes it evaluate again, so a decision never lands after evidence it did not see.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from ledger.append.appender import Appender, Client
from ledger.append.receipts import Receipt
from ledger.compliance.evaluate import ComplianceResult
from ledger.compliance.gate import Decision, decision_of, gate_statement
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, sign_envelope
from ledger.core.encoding import format_time
from ledger.core.keys import SignerKey
from ledger.errors import EncodingError, StaleEvaluationError, UnavailableError
from ledger.query.release_record import evaluate_release, policy_in_force
from ledger.records import predicates as p
from ledger.storage.protocol import EntryRow, EvidenceIndex

GATE_ATTEMPTS = 5  # evaluations of a release that keeps gaining entries, before asking for a retry


@dataclass(frozen=True, slots=True)
class GateDecision:
    """A decision appended to the log: what it says, the evaluation it follows from, and its receipt."""

    decision: Decision
    result: ComplianceResult
    receipt: Receipt


def _chain_state(rows: Sequence[EntryRow]) -> tuple[int, str]:
    """(count, head leaf hash) of the release chain among `rows`: what a decision on them saw."""
    head = max((r for r in rows if r.release_seq is not None), key=lambda r: r.release_seq or 0)
    return (head.release_seq or 0) + 1, head.leaf_hash.hex()


def _now() -> str:
    return format_time(datetime.now(UTC))


async def decide_gate(  # noqa: PLR0913 - the release, and each thing the decision is read, signed and appended with
    appender: Appender,
    index: EvidenceIndex,
    ledger_key: SignerKey,
    release: p.Release,
    environment: str,
    *,
    tree_size: Callable[[], Awaitable[int]],
    client: Client | None = None,
) -> GateDecision:
    """Evaluate `release` for `environment`, append the decision signed by `ledger_key`, and return it.

    Each attempt evaluates the release as of `tree_size()`, the newest tree size read
    afresh (so the decision covers everything acknowledged before it was asked for), at
    the current time, and appends the decision for `client` only if the release's chain
    is still what it evaluated; after GATE_ATTEMPTS evaluations overtaken by new entries
    it raises UnavailableError (retry later). NotFoundError when the release or a policy
    is missing; EncodingError (422) for an environment the policy in force does not name.
    Preconditions: `index` reads the entries of `appender.store`, and `ledger_key` is the
    key of the ledger the appender's sequencer signs for.
    """
    record, _ = await policy_in_force(index, await tree_size())
    if not record.policy.names_environment(environment):
        named = ", ".join(record.policy.continuity.environments)
        raise EncodingError(
            f"the policy in force ({record.policy.name} {record.policy.version}) names the environments "
            f"{named}; {environment!r} is none of them"
        )
    for _ in range(GATE_ATTEMPTS):
        now = _now()
        result, rows = await evaluate_release(
            appender.store, index, appender.sequencer, release.product, release.version,
            environment=environment, now=now, before=await tree_size(),
        )  # fmt: skip
        leaves = {r.index: r.leaf_hash.hex() for r in rows}
        statement = gate_statement(
            result,
            release,
            environment=environment,
            policy_ref=(result.policy.entry, result.policy.digest),
            input_entries=[(i, leaves[i]) for i in result.entries if i in leaves],
            verifier_id=ledger_key.name,
            time=now,
        )
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, statement, [ledger_key])
        try:
            receipts, _ = await appender.append([envelope], client, expected_chain=_chain_state(rows))
        except StaleEvaluationError:
            continue  # the release gained an entry since the evaluation read it: evaluate again
        return GateDecision(decision_of(result), result, receipts[0])
    raise UnavailableError(
        f"release {release.product} {release.version} kept changing while it was evaluated"
    )
