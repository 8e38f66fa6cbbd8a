"""Signing in to the console over HTTP, for the console's tests (docs/console.md "Signing in")."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


@contextmanager
def console_client(
    url: str, secret: str, start: str = "/ui/releases", timeout: float = 30
) -> Iterator[httpx.Client]:
    """A client of the console at `url` holding a session signed in with the API token `secret`.

    It follows no redirect, so a test sees each one. Signing in must succeed (303 to `start`).
    """
    with httpx.Client(base_url=url, timeout=timeout, follow_redirects=False) as client:
        answer = client.post("/ui/login", data={"token": secret, "next": start})
        assert answer.status_code == 303, answer.text
        yield client


def csrf_of(page: str) -> str:
    """The session's CSRF secret, as a signed-in page carries it in its sign-out form."""
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page
    return found.group(1)
