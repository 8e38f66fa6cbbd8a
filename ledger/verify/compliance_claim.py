"""A dossier's compliance claim, re-evaluated: the ledger's result must follow from the evidence. Pure.

A dossier carries the compliance result the ledger computed for a release at
`evaluated_at` (schemas/POLICY.md). The offline verifier does not trust it: it
re-evaluates the release's verified events against the verified policy entry
with the same deterministic function the service uses
(`ledger.compliance.evaluate`), and a claim that differs fails verification,
naming the first field that differs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from ledger.compliance.evaluate import evaluate_record, result_data
from ledger.errors import VerificationError
from ledger.records.admin import PolicyPublished
from ledger.rules.events import Event

_ABSENT = object()
_SHOWN = 240  # characters of a differing compliance field shown on each side


def recompute(
    events: Sequence[Event],
    record: PolicyPublished | None,
    index: int | None,
    evaluated_at: str,
    environment: str | None,
) -> dict[str, Any]:
    """Re-evaluate compliance exactly as the ledger did (the `Recompute` of `verify_dossier`).

    Preconditions: `events` are the release's verified events in log order, and
    `record` the verified policy entry at `index`; without one, VerificationError
    (the dossier carries no policy to evaluate against). Returns the result as the
    JSON data a dossier carries.
    """
    if record is None or index is None:
        raise VerificationError("the dossier carries no policy entry to evaluate against")
    return result_data(evaluate_record(events, record, index, now=evaluated_at, environment=environment))


def first_difference(claimed: dict[str, Any], computed: dict[str, Any]) -> tuple[str, str, str]:
    """The first field where a compliance claim and its re-evaluation differ: (field, claimed, computed).

    Precondition: the two differ. `status` first, then the other fields by name.
    Values are compact JSON, cut short when long; a field one side lacks is shown
    as `(absent)`.
    """
    names = ["status", *sorted((claimed.keys() | computed.keys()) - {"status"})]
    name = next(n for n in names if claimed.get(n, _ABSENT) != computed.get(n, _ABSENT))
    return name, _shown(claimed.get(name, _ABSENT)), _shown(computed.get(name, _ABSENT))


def _shown(value: object) -> str:
    if value is _ABSENT:
        return "(absent)"
    if isinstance(value, str):
        text = value
    else:
        try:
            text = msgspec.json.encode(value, order="sorted").decode()
        except (TypeError, ValueError):
            text = repr(value)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"
