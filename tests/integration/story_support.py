"""The demo's release story (cli/story.py), replayed against a live server for the end-to-end tests.

`live_ledger` gives a module a scratch database, an initialised ledger, an admin
and an appender token (scoped to `cli.story.PRODUCT`) and a running
`evledger serve`. `play_story` then walks the story as cli/demo.py does, step by
step, asking the production gate through `evledger gate --json` before and after
the exception, and keeps what the tests assert on.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec
from click.testing import Result
from ledger_harness import Ledger, init_ledger, live_server, token
from service_support import scratch_database
from typer.testing import CliRunner

from cli import story as s
from cli.client import LedgerClient
from cli.demo import POLICY_FILE
from cli.main import app as cli_app
from ledger.core.dsse import INTOTO_PAYLOAD_TYPE, Envelope, sign_envelope
from ledger.core.keys import SignerKey

_runner = CliRunner()


def evledger(*args: str) -> Result:
    """Run one evledger command in-process, as a user would type it."""
    return _runner.invoke(cli_app, list(args))


@dataclass(frozen=True)
class LiveLedger:
    """A ledger served over HTTP, with its tokens."""

    ledger: Ledger
    url: str
    admin_token: str
    appender_token: str

    def admin(self) -> LedgerClient:
        """A client with the admin token."""
        return LedgerClient(self.url, self.admin_token)

    def appender(self) -> LedgerClient:
        """A client with the appender token (scoped to the story's product)."""
        return LedgerClient(self.url, self.appender_token)


@contextmanager
def live_ledger(server_dsn: str, directory: Path) -> Iterator[LiveLedger]:
    """A scratch database with entry 0, two tokens and `evledger serve` on it, for a whole module."""
    with scratch_database(server_dsn) as dsn:
        ledger = init_ledger(dsn, directory)
        admin_token, appender_token = token(dsn, "admin"), token(dsn, "appender", [s.PRODUCT])
        with live_server(ledger) as url:
            yield LiveLedger(ledger, url, admin_token, appender_token)


@dataclass(frozen=True)
class Gate:
    """What `evledger gate --json` answered, and its exit status."""

    exit_code: int
    answer: dict[str, Any]


@dataclass(frozen=True)
class Played:
    """The story as it was told: its receipts, the two gate answers, and the dossier before the exception."""

    story: s.Story
    registrations: list[dict[str, Any]]
    policy: dict[str, Any]
    deny: Gate
    early_dossier: bytes
    allow: Gate
    retried_build: dict[str, Any]

    @property
    def version(self) -> str:
        """The release's version."""
        return self.story.version


def _quiet(_: str) -> None:
    """The story's printer, silenced."""


def production_gate(live: LiveLedger, version: str) -> Gate:
    """Ask the production gate through the CLI, as the demo's pipeline does."""
    result = evledger(
        "gate", s.PRODUCT, version, "--environment", "production",
        "--server", live.url, "--token", live.appender_token, "--json",
    )  # fmt: skip
    return Gate(result.exit_code, json.loads(result.stdout))


def play_story(live: LiveLedger, version: str) -> Played:
    """Register, publish, build and test, approve, gate (deny), except, gate (allow), deploy, seal, retry."""
    story = s.cast(live.ledger.signer, version)
    release = f"/v1/releases/{s.PRODUCT}/{version}"
    with live.admin() as admin, live.appender() as client:
        registrations = s.register_people(admin, story)
        policy = s.publish_policy(admin, story, POLICY_FILE.read_text(encoding="utf-8"))
        s.build_and_test(client, story, _quiet)
        s.approve(client, story, _quiet)
        deny = production_gate(live, version)
        early_dossier = admin.get(f"{release}/dossier").content
        s.record_exception(client, story, _quiet)
        allow = production_gate(live, version)

        def timeline() -> dict[str, Any]:
            answer: dict[str, Any] = admin.get(f"{release}/timeline").json()
            return answer

        s.deploy_and_seal(client, story, timeline, _quiet)
        retried = s.retry(client, story, "build")
    return Played(story, registrations, policy, deny, early_dossier, allow, retried)


def statement(predicate_type: str, predicate: object, digest: str) -> bytes:
    """An in-toto Statement v1 about one artifact (`sha256:<hex>`) carrying one of our predicates."""
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": "artifact", "digest": {"sha256": digest.removeprefix("sha256:")}}],
            "predicateType": predicate_type,
            "predicate": msgspec.to_builtins(predicate),
        }
    )


def signed(key: SignerKey, predicate_type: str, predicate: object, digest: str) -> Envelope:
    """The statement of `statement`, signed by `key`."""
    return sign_envelope(INTOTO_PAYLOAD_TYPE, statement(predicate_type, predicate, digest), [key])
