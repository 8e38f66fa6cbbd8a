"""UploadSlots: at most N evidence-file uploads at once per worker, the next refused at once (503)."""

from __future__ import annotations

import pytest

from ledger.errors import UnavailableError
from ledger.service.availability import UPLOAD_RETRY_AFTER, UploadSlots


def test_the_slot_past_the_limit_is_refused_with_retry_after_and_freed_slots_are_reused() -> None:
    slots = UploadSlots(2)
    with slots.slot(), slots.slot():
        assert slots.in_use == 2
        with pytest.raises(UnavailableError, match="2 evidence-file uploads are in progress") as refused:
            slots.slot().__enter__()
        assert refused.value.retry_after == UPLOAD_RETRY_AFTER
        assert slots.in_use == 2  # the refusal took nothing
    assert slots.in_use == 0
    with slots.slot():
        assert slots.in_use == 1


def test_a_failed_upload_gives_its_slot_back() -> None:
    slots = UploadSlots(1)
    with pytest.raises(ValueError, match="bytes hash otherwise"), slots.slot():
        raise ValueError("bytes hash otherwise")
    with slots.slot():
        assert slots.in_use == 1
