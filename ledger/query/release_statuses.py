"""The compliance status of each release of a list, under the policy in force (issue #15's releases list).

Each status is what `GET /v1/releases/{product}/{version}/compliance` answers without an
environment: the release's record read below one checkpoint and evaluated
(`ledger.compliance.evaluate`) against the newest policy published below it, at one time.
The policy is read once for the whole list. An evaluation reads the release's whole record,
so a caller bounds how many releases it asks about at once (the console: one page).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import get_args

from ledger.compliance.evaluate import Status
from ledger.errors import InputError, LedgerError, NotFoundError
from ledger.query.release_record import evaluate_release, policy_in_force
from ledger.query.timeline import RegistryHolder
from ledger.storage.protocol import EvidenceIndex, LogStore

COMPLIANCE_STATUSES: tuple[str, ...] = get_args(Status)
"""What an evaluation can find a release: compliant, non-compliant, incomplete (schemas/POLICY.md)."""


@dataclass(frozen=True, slots=True)
class ReleaseStatus:
    """A release's compliance status, or (status None) why it could not be evaluated."""

    status: Status | None
    problem: str = ""


def check_compliance_filter(value: str) -> Status:
    """`value` as a compliance status to filter by; InputError naming the statuses otherwise."""
    for status in get_args(Status):
        if value == status:
            return status  # type: ignore[no-any-return]
    raise InputError(f"compliance must be one of {', '.join(COMPLIANCE_STATUSES)}, got {value[:40]!r}")


async def release_statuses(  # noqa: PLR0913 - one argument per input of the evaluation
    store: LogStore,
    index: EvidenceIndex,
    holder: RegistryHolder,
    releases: Sequence[tuple[str, str]],
    *,
    now: str,
    before: int,
) -> dict[tuple[str, str], ReleaseStatus]:
    """Each (product, version)'s compliance as of index `before` (a checkpoint's size), evaluated at `now`.

    Without a policy published below `before`, every release says so; a release with no entry
    below `before` (recorded after the checkpoint) says that. One evaluation per release: the
    caller bounds `releases`. Precondition: `index` reads the entries of `store`.
    """
    try:
        policy = await policy_in_force(index, before)
    except NotFoundError as exc:
        return {release: ReleaseStatus(None, str(exc)) for release in releases}
    found: dict[tuple[str, str], ReleaseStatus] = {}
    for product, version in releases:
        try:
            result, _ = await evaluate_release(
                store,
                index,
                holder,
                product,
                version,
                environment=None,
                now=now,
                before=before,
                policy=policy,
            )
        except NotFoundError:
            found[product, version] = ReleaseStatus(None, "recorded after the latest checkpoint")
        except LedgerError as exc:  # a record the rules cannot read is shown, not a failed page
            found[product, version] = ReleaseStatus(None, str(exc))
        else:
            found[product, version] = ReleaseStatus(result.status)
    return found
