"""A count of how often a service process copied other processes' batches in from their index deltas.

Shared by the unit tests (an in-memory store) and the PostgreSQL tests of 012_index_deltas.sql.
"""

from __future__ import annotations

import pytest

from ledger.query.index_follow import IndexFollower
from ledger.storage.protocol import IndexDelta


def count_takes(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What every IndexFollower.take_deltas call returns, from now on, in call order."""
    taken: list[bool] = []
    take = IndexFollower.take_deltas

    def counted(self: IndexFollower, deltas: list[IndexDelta], size: int) -> bool:
        taken.append(take(self, deltas, size))
        return taken[-1]

    monkeypatch.setattr(IndexFollower, "take_deltas", counted)
    return taken
