"""Approving in the console (issue #15, docs/console.md "Approving a release"), against a live server.

The statement is prepared by the console, signed by the person's key, and appended only after the
person re-authenticates with the token they signed in with. These tests sign in Python with a
registered key, as the browser would (test_console_approval_browser.py signs in a real browser),
and try everything that must be refused: no session, the wrong role or product, a forged form,
a stale or foreign statement, a tampered or borrowed signature, the wrong credential. A refusal
never writes to the log.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest
from console_support import console_client, csrf_of
from ledger_harness import Ledger, live_server, token
from release_support import ARTIFACT, PRODUCT, People, set_up
from service_support import nothing_written, scratch_ledger

from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, Signature, sign_envelope
from ledger.core.encoding import format_time
from ledger.records.approval import approval_statement

VERSION = "3.1.0"
APPROVE = f"/ui/releases/{PRODUCT}/{VERSION}/approve"
OWNER = "owner of people.test/qa"  # as release_support registers the qa key


@dataclass(frozen=True)
class Site:
    url: str
    ledger: Ledger
    people: People
    appender: str
    auditor: str
    other_product: str
    admin: str

    @contextmanager
    def signed_in(self, secret: str) -> Iterator[tuple[httpx.Client, str]]:
        """A console session for `secret`, and its CSRF secret."""
        with console_client(self.url, secret) as client:
            yield client, csrf_of(client.get("/ui/signing-key").text)


@pytest.fixture(scope="module")
def site(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with (
        scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("console-approval")) as ledger,
        live_server(ledger) as url,
    ):
        admin, appender = token(ledger.dsn, "admin"), token(ledger.dsn, "appender", [PRODUCT])
        people = set_up(url, ledger, admin, appender, VERSION)
        yield Site(
            url, ledger, people, appender, token(ledger.dsn, "auditor"),
            token(ledger.dsn, "appender", ["another-product"]), admin,
        )  # fmt: skip


def draft(site: Site, session_csrf: str, **changes: Any) -> dict[str, Any]:
    """The approval form as the page sends it: the qa approves the candidate, having read every entry."""
    with httpx.Client(base_url=site.url, timeout=30) as client:
        timeline = client.get(
            f"/v1/releases/{PRODUCT}/{VERSION}/timeline", headers={"Authorization": f"Bearer {site.auditor}"}
        ).json()
    form = {
        "keyid": site.people.qa.keyid, "role": "qa", "meaning": "approval", "decision": "approved",
        "artifact_digest": ARTIFACT, "entries": [e["index"] for e in timeline["events"]],
        "comment": "read the evidence", "csrf": session_csrf,
    }  # fmt: skip
    return form | changes


def envelope_json(envelope: Envelope) -> dict[str, Any]:
    body: dict[str, Any] = msgspec.to_builtins(envelope)
    return body


def signed_form(
    site: Site, csrf: str, prepared: dict[str, Any], credential: str | None = None
) -> dict[str, Any]:
    payload = base64.b64decode(prepared["payload"])
    envelope = sign_envelope(prepared["payload_type"], payload, [site.people.qa])
    return {"envelope": envelope_json(envelope), "credential": credential or site.appender, "csrf": csrf}


def test_a_prepared_approval_signed_and_sent_with_the_credential_is_appended(site: Site) -> None:
    with site.signed_in(site.appender) as (client, csrf):
        answer = client.post(f"{APPROVE}/statement", json=draft(site, csrf))
        assert answer.status_code == 200, answer.text
        prepared = answer.json()
        assert prepared["signer"] == {"keyid": site.people.qa.keyid, "owner": OWNER, "roles": ["qa"]}
        statement = msgspec.json.decode(base64.b64decode(prepared["payload"]))
        approval = statement["predicate"]
        assert approval["release"] == {"product": PRODUCT, "version": VERSION}
        assert (approval["role"], approval["decision"], approval["artifact_digest"]) == (
            "qa",
            "approved",
            ARTIFACT,
        )
        assert approval["comment"] == "read the evidence"
        assert approval["signed_at"] == prepared["signed_at"]
        appended = client.post(APPROVE, json=signed_form(site, csrf, prepared))
        assert appended.status_code == 201, appended.text
        index = appended.json()["index"]
    timeline = httpx.get(
        f"{site.url}/v1/releases/{PRODUCT}/{VERSION}/timeline",
        headers={"Authorization": f"Bearer {site.auditor}"},
    ).json()
    event = next(e for e in timeline["events"] if e["index"] == index)
    assert event["kind"] == "approval"
    assert event["summary"]["comment"] == "read the evidence"


def test_the_pages_need_a_session_and_a_token_that_may_append_for_the_product(site: Site) -> None:
    with httpx.Client(base_url=site.url, timeout=30, follow_redirects=False) as anonymous:
        for path in (APPROVE, "/ui/signing-key"):  # pages: to sign-in, and back
            answer = anonymous.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/ui/login?next=")
        calls = [  # the pages' scripts: a JSON 401 they can show
            anonymous.get("/ui/signing-key/status", params={"keyid": site.people.qa.keyid}),
            anonymous.post(f"{APPROVE}/statement", json={}),
            anonymous.post(APPROVE, json={}),
        ]
        for answer in calls:
            assert answer.status_code == 401, answer.text
            assert "session has ended" in answer.json()["detail"]
    with site.signed_in(site.auditor) as (client, csrf):
        page = client.get(APPROVE)
        assert page.status_code == 403
        assert "role &#39;auditor&#39;" in page.text  # escaped, as every value on a page
        with nothing_written(site.ledger.dsn):
            answer = client.post(f"{APPROVE}/statement", json=draft(site, csrf))
            assert answer.status_code == 403
            assert answer.json()["error"] == "forbidden"
    with site.signed_in(site.other_product) as (client, csrf):
        assert client.get(APPROVE).status_code == 403
        assert client.post(f"{APPROVE}/statement", json=draft(site, csrf)).status_code == 403


@pytest.mark.parametrize(
    ("changes", "status", "says"),
    [
        ({"csrf": "forged"}, 403, "did not come from this console session"),
        ({"keyid": "people.test/nobody+01234567"}, 403, "not registered"),
        ({"role": "release-manager"}, 403, "not 'release-manager'"),
        ({"entries": [9999]}, 400, "not events of"),
        ({"entries": []}, 400, "at least one entry"),
        ({"artifact_digest": "sha256:" + "ab" * 32}, 400, "not an artifact built for"),
        ({"meaning": "liking"}, 400, "meaning"),
        ({"decision": "maybe"}, 400, "decision"),
        ({"surprise": 1}, 400, "surprise"),
        ({"entries": "all"}, 400, "expected shape"),
    ],
)
def test_a_form_the_ledger_would_refuse_is_refused_before_anything_is_signed(
    site: Site, changes: dict[str, Any], status: int, says: str
) -> None:
    with site.signed_in(site.appender) as (client, csrf), nothing_written(site.ledger.dsn):
        answer = client.post(f"{APPROVE}/statement", json=draft(site, csrf, **changes))
        assert answer.status_code == status, answer.text
        assert says in answer.json()["detail"]
        assert "Traceback" not in answer.text


def test_malformed_oversized_and_cross_site_forms_are_refused(site: Site) -> None:
    with site.signed_in(site.appender) as (client, csrf), nothing_written(site.ledger.dsn):
        broken = client.post(
            f"{APPROVE}/statement", content=b"{not json", headers={"content-type": "application/json"}
        )
        assert broken.status_code == 400
        huge = client.post(f"{APPROVE}/statement", json=draft(site, csrf, comment="x" * 70_000))
        assert huge.status_code == 413
        elsewhere = client.post(
            f"{APPROVE}/statement", json=draft(site, csrf), headers={"origin": "https://evil.example"}
        )
        assert elsewhere.status_code == 403
        assert (
            client.post(APPROVE, content=b"[]", headers={"content-type": "application/json"}).status_code
            == 400
        )
        oversized = client.post(APPROVE, content=b"x" * 80_000)
        assert (oversized.status_code, oversized.headers["connection"]) == (413, "close")
        assert client.get("/ui/releases/gatekeeper/9.9.9/approve").status_code == 404


def _prepared(client: httpx.Client, site: Site, csrf: str) -> dict[str, Any]:
    answer = client.post(f"{APPROVE}/statement", json=draft(site, csrf))
    assert answer.status_code == 200, answer.text
    prepared: dict[str, Any] = answer.json()
    return prepared


def test_signing_needs_the_sessions_own_credential_entered_again(site: Site) -> None:
    other_appender = token(site.ledger.dsn, "appender", [PRODUCT])
    with site.signed_in(site.appender) as (client, csrf), nothing_written(site.ledger.dsn):
        prepared = _prepared(client, site, csrf)
        wrong = client.post(APPROVE, json=signed_form(site, csrf, prepared, credential="not-a-token"))
        assert wrong.status_code == 401
        someone_else = client.post(APPROVE, json=signed_form(site, csrf, prepared, credential=other_appender))
        assert someone_else.status_code == 403
        assert "token you signed in with" in someone_else.json()["detail"]
        forged = client.post(APPROVE, json=signed_form(site, "forged", prepared))
        assert forged.status_code == 403


def _statement_signed_by(site: Site, csrf: str, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "product": PRODUCT, "version": VERSION, "role": "qa", "meaning": "approval", "decision": "approved",
        "artifact_digest": ARTIFACT, "entries": [0], "signed_at": format_time(datetime.now(UTC)),
    }  # fmt: skip
    payload = approval_statement(**(fields | changes))
    envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [site.people.qa])
    return {"envelope": envelope_json(envelope), "credential": site.appender, "csrf": csrf}


def test_a_stale_foreign_or_tampered_statement_is_not_appended(site: Site) -> None:
    stale = format_time(datetime.now(UTC) - timedelta(minutes=20))
    future = format_time(datetime.now(UTC) + timedelta(minutes=5))
    with site.signed_in(site.appender) as (client, csrf), nothing_written(site.ledger.dsn):
        for changes, says in [
            ({"signed_at": stale}, "review it again"),
            ({"signed_at": future}, "review it again"),
            ({"version": "3.0.0"}, "not gatekeeper 3.1.0"),
        ]:
            answer = client.post(APPROVE, json=_statement_signed_by(site, csrf, **changes))
            assert answer.status_code == 400, (changes, answer.text)
            assert says in answer.json()["detail"]

        prepared = _prepared(client, site, csrf)
        form = signed_form(site, csrf, prepared)
        signature = base64.b64decode(form["envelope"]["signatures"][0]["sig"])
        flipped = bytes([signature[0] ^ 1]) + signature[1:]
        form["envelope"]["signatures"][0]["sig"] = base64.b64encode(flipped).decode()
        assert client.post(APPROVE, json=form).status_code == 422  # a tampered signature

        borrowed = signed_form(site, csrf, _prepared(client, site, csrf))
        other = _statement_signed_by(site, csrf, comment="another statement")
        borrowed["envelope"]["payload"] = other["envelope"]["payload"]  # a signature over other bytes
        assert client.post(APPROVE, json=borrowed).status_code == 422

        by_manager = sign_envelope(
            INTOTO_PAYLOAD_TYPE,
            base64.b64decode(_prepared(client, site, csrf)["payload"]),
            [site.people.manager],
        )
        envelope = envelope_json(by_manager)
        answer = client.post(APPROVE, json={"envelope": envelope, "credential": site.appender, "csrf": csrf})
        assert answer.status_code in {403, 422}, answer.text  # the manager's key has no qa role

        unsigned = envelope_json(Envelope(prepared["payload"], INTOTO_PAYLOAD_TYPE, [Signature("", "")]))
        answer = client.post(APPROVE, json={"envelope": unsigned, "credential": site.appender, "csrf": csrf})
        assert answer.status_code in {400, 422}, answer.text


def test_the_key_status_says_who_the_ledger_registered(site: Site) -> None:
    with site.signed_in(site.auditor) as (client, _):
        known = client.get("/ui/signing-key/status", params={"keyid": site.people.qa.keyid}).json()
        assert (known["registered"], known["owner"], known["roles"]) == (True, OWNER, ["qa"])
        unknown = client.get("/ui/signing-key/status", params={"keyid": "people.test/x+00000000"}).json()
        assert unknown == {"keyid": "people.test/x+00000000", "registered": False, **EMPTY_STATUS}
        assert client.get("/ui/signing-key/status", params={"keyid": "x" * 400}).status_code == 400
        assert client.get("/ui/signing-key/status").status_code == 400


EMPTY_STATUS: dict[str, object] = {
    "owner": None, "roles": [], "products": [], "registered_at": None, "revoked_at": None,
    "revoke_reason": None, "expires": None,
}  # fmt: skip


def test_the_release_page_offers_approval_to_those_who_may_append(site: Site) -> None:
    link = f'href="/ui/releases/{PRODUCT}/{VERSION}/approve"'
    with site.signed_in(site.appender) as (client, _):
        assert link in client.get(f"/ui/releases/{PRODUCT}/{VERSION}").text
    with site.signed_in(site.auditor) as (client, _):
        page = client.get(f"/ui/releases/{PRODUCT}/{VERSION}")
        assert page.status_code == 200
        assert link not in page.text
