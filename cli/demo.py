"""`evledger demo`: the whole story on an embedded PostgreSQL, start to finish (docs/cli.md).

It starts the database and the service, registers the people who sign,
publishes the release policy, and walks a high-risk change through build,
tests, scan, validation and approvals by distinct roles; the production gate
denies it, an exception is recorded, the gate allows it, it is deployed and
sealed. Then an auditor reads the timeline, exports the dossier, verifies it
offline and prints the release record, and the whole log is audited.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import msgspec
import typer

from cli import story as s
from cli.client import LedgerClient
from cli.errors import command_errors
from cli.files import create_exclusive
from cli.policy_cmd import EXAMPLE_POLICY
from cli.server import ledger_key
from cli.settings import database
from ledger.append.bootstrap import initialise
from ledger.core.checkpoint import open_checkpoint, parse_checkpoint_text
from ledger.core.encoding import hash_from_hex
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey, parse_signer_key
from ledger.core.note import parse_note
from ledger.core.proof import verify_inclusion
from ledger.errors import InputError, UnavailableError
from ledger.storage.migrate import create_token

DEMO_ORIGIN = "evledger.demo/ledger"
POLICY_FILE = EXAMPLE_POLICY  # package data: the demo runs from any directory, clone or not


def _say(step: str) -> None:
    typer.secho(f"\n== {step}", bold=True)


def _evledger(*args: str, allowed: tuple[int, ...] = (0,)) -> int:
    """Run an evledger command as a user would, showing its output; other exit codes stop the demo."""
    shown = " ".join("$TOKEN" if a.startswith("evl_") else a for a in args)
    typer.secho(f"$ evledger {shown}", dim=True)
    status = subprocess.call([sys.executable, "-m", "cli.main", *args])  # noqa: S603 - our own CLI
    if status not in allowed:
        raise UnavailableError(f"evledger {args[0]} exited with {status}")
    return status


@contextmanager
def _child(what: str, command: list[str], base: str) -> Iterator[str]:
    """Run an evledger command in a child process until the block ends, once `base`/healthz answers."""
    import httpx  # noqa: PLC0415 - only the demo's start-up wait needs it

    child = subprocess.Popen(  # noqa: S603 - our own CLI, arguments we built
        [sys.executable, "-m", "cli.main", *command], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            if child.poll() is not None:
                output = child.stderr.read().decode() if child.stderr else ""
                raise UnavailableError(f"the {what} did not start:\n{output[-2000:]}")
            try:
                httpx.get(base + "/healthz", timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline:
                    raise UnavailableError(f"the {what} did not answer on {base} within 30 s") from None
                time.sleep(0.2)
        yield base
    finally:
        child.terminate()
        child.wait(timeout=20)
        if child.stderr is not None:
            child.stderr.close()


def _witnesses(stack: ExitStack, data_dir: Path, ledger_pub: Path, port: int) -> Path:
    """Start the demo's two witnesses (keys made on first run) and write the policy naming them."""
    lines = []
    for number, owner in enumerate(("qa", "notified-body"), 1):
        key_path = data_dir / f"witness-{owner}.key"
        if key_path.exists():
            key = parse_signer_key(key_path.read_text(encoding="utf-8"), ALG_COSIGNATURE_V1)
        else:
            key = SignerKey.generate(f"evledger.demo/witness-{owner}", ALG_COSIGNATURE_V1)
            create_exclusive(key_path, key.format() + "\n", private=True)
        url = f"http://127.0.0.1:{port + number}"
        command = ["witness", "serve", "--key", str(key_path), "--log", str(ledger_pub)]
        command += ["--data-dir", str(data_dir / f"witness-{owner}"), "--port", str(port + number)]
        stack.enter_context(_child(f"witness of {owner}", command, url))
        typer.echo(f"  witness {key.name} on {url}")
        lines.append(f"witness {owner} {key.verifier().format()} {url}")
    policy = data_dir / "witnesses.policy"
    policy.write_text("\n".join([*lines, "quorum 2"]) + "\n", encoding="utf-8")
    typer.echo(f"  witness policy {policy}: both must cosign every checkpoint")
    return policy


def _tokens(url: str) -> tuple[str, str]:
    async def make() -> tuple[str, str]:
        return await create_token(url, "admin", []), await create_token(url, "appender", [s.PRODUCT])

    return asyncio.run(make())


def demo(
    data_dir: Annotated[Path, typer.Option(help="Where the demo keeps its database and keys.")] = Path(
        "evledger-demo"
    ),
    port: Annotated[int, typer.Option(help="Port for the demo's service.")] = 8000,
    keep_serving: Annotated[bool, typer.Option(help="Leave the service running at the end.")] = False,
) -> None:
    """Run the whole story on an embedded PostgreSQL in DATA_DIR."""
    with command_errors(json_output=False):
        if not POLICY_FILE.is_file():
            raise InputError(f"this installation lacks {POLICY_FILE}: reinstall evidence-ledger")
        _say("1. Embedded PostgreSQL, ledger key, entry 0")
        signer, key_path = ledger_key(None, data_dir, DEMO_ORIGIN)
        with database(os.environ.get("EVLEDGER_DSN"), data_dir) as url, ExitStack() as stack:
            size = asyncio.run(initialise(url, signer))
            typer.echo(f"ledger {signer.name}: {size} entries; public key {key_path.with_suffix('.pub')}")
            admin_token, appender_token = _tokens(url)
            _say("1b. Two independent witnesses (say, QA's and a notified body's) cosign its checkpoints")
            policy = _witnesses(stack, data_dir, key_path.with_suffix(".pub"), port)
            command = ["serve", "--dsn", url, "--key", str(key_path), "--port", str(port)]
            base = stack.enter_context(
                _child("service", [*command, "--witness-policy", str(policy)], f"http://127.0.0.1:{port}")
            )
            typer.echo(f"service on {base}")
            story = _run(base, signer, admin_token, appender_token, data_dir, policy)
            _say("14. The web console, for the people who review, approve and audit")
            _awaiting_approval(base, story, appender_token)
            admin_file, appender_file = _token_files(data_dir, admin_token, appender_token)
            typer.echo(f"web console: {base}/ui (sign in with the token in {appender_file})")
            typer.echo(
                '  approve that release in your browser: README.md, "Approve a release in your browser" '
                f"(an admin's token for registering your key is in {admin_file})"
            )
            if not keep_serving:
                typer.echo("run `evledger demo --keep-serving` to keep the service and its console open")
                return
            typer.echo(f"\nserving on {base}; admin token {admin_token}\nCtrl-C to stop.")
            while True:
                time.sleep(3600)


def _awaiting_approval(base: str, story: s.Story, appender_token: str) -> None:
    """Record the next release up to its approvals, for a person to approve in the console."""
    following = replace(story, version=story.version.replace("2.4.", "2.5.", 1), receipts={}, sent={})
    with LedgerClient(base, appender_token) as client:
        s.build_and_test(client, following, _quietly)
    typer.echo(
        f"  {s.PRODUCT} {following.version} awaits approval: its change, build, tests, scan and "
        "validation are recorded"
    )


def _quietly(_: str) -> None:
    """A story step's line, left unsaid."""


def _token_files(data_dir: Path, *tokens: str) -> tuple[Path, Path]:
    """Write the admin's and the appender's tokens to private files in DATA_DIR (new ones each run)."""
    files = data_dir / "admin.token", data_dir / "appender.token"
    for path, token in zip(files, tokens, strict=True):
        path.unlink(missing_ok=True)
        create_exclusive(path, token + "\n", private=True)
    return files


def _run(
    base: str, ledger: SignerKey, admin_token: str, appender_token: str, data_dir: Path, witness_policy: Path
) -> s.Story:
    story = s.cast(ledger, f"2.4.{datetime.now(UTC):%Y%m%d%H%M%S}")
    product, version, pub = s.PRODUCT, story.version, str(data_dir / "ledger.pub")
    with LedgerClient(base, admin_token) as admin, LedgerClient(base, appender_token) as client:
        _say("2. Register who signs, each with their roles; publish the release policy")
        for receipt, person in zip(s.register_people(admin, story), story.people.values(), strict=True):
            typer.echo(f"  {person.owner:<16} {', '.join(person.roles):<26} entry {receipt['index']}")
        policy = s.publish_policy(admin, story, POLICY_FILE.read_text(encoding="utf-8"))
        typer.echo(f"  policy {POLICY_FILE.name} in force from entry {policy['index']}")

        _say(f"3. A high-risk change to {product} {version}: build, tests, scan, validation")
        s.build_and_test(client, story, typer.echo)
        _say("4. Approvals by four different people in four roles")
        s.approve(client, story, typer.echo)

        _say("5. The pipeline asks the production gate: denied (an open high finding)")
        gate = [
            "gate",
            product,
            version,
            "--environment",
            "production",
            "--server",
            base,
            "--token",
            appender_token,
        ]
        _evledger(*gate, allowed=(1,))
        _say("6. The release manager records a time-boxed exception; the gate allows the release")
        s.record_exception(client, story, typer.echo)
        _evledger(*gate)

        _say("7. Deployment of exactly the approved artifact, then the release is sealed")

        def timeline() -> dict[str, Any]:
            answer: dict[str, Any] = client.get(f"/v1/releases/{product}/{version}/timeline").json()
            return answer

        s.deploy_and_seal(client, story, timeline, typer.echo)
        _say("8. A retried CI job (same Idempotency-Key, same body) gets the original receipt back")
        again = s.retry(client, story, "build")
        first = story.receipts["build"]["index"]
        typer.echo(f"  retried build answered with entry {again['index']} (first time: {first})")
        _check_receipt(story.receipts["seal"], ledger, data_dir, pub)

    _say("10. An auditor reconstructs the release, once the witnesses cosigned the seal's checkpoint")
    _wait_cosigned(base, admin_token, story.receipts["seal"]["index"] + 1)
    _evledger("timeline", product, version, "--server", base, "--token", admin_token)
    dossier, report = data_dir / f"{product}-{version}.dossier.json", data_dir / f"{product}-{version}.html"
    _say(
        "11. Export the dossier, verify it offline (ledger key and witness policy), print the release record"
    )
    _evledger("dossier", product, version, "-o", str(dossier), "--tlog-proofs", str(data_dir / "tlog-proofs"),
              "--server", base, "--token", admin_token)  # fmt: skip
    witnessed = ["--witness-policy", str(witness_policy)]
    _evledger("verify", str(dossier), "--key", pub, *witnessed)
    _evledger(
        "report", product, version, "-o", str(report), "--key", pub, "--dossier", str(dossier), *witnessed
    )
    _say("12. Audit the whole log through its tiles")
    _evledger("verify-log", "--server", base, "--token", admin_token, "--key", pub, *witnessed)
    _say("13. A monitor keeps its own history of checkpoints and alerts on a fork or rollback")
    _evledger("monitor", "--once", "--server", base, "--token", admin_token, "--key", pub,
              "--state", str(data_dir / "monitor"), *witnessed)  # fmt: skip
    return story


def _wait_cosigned(base: str, token: str, size: int) -> None:
    """Wait until GET /checkpoint serves a checkpoint of at least `size` entries (cosigned by the quorum)."""
    deadline = time.monotonic() + 30
    with LedgerClient(base, token) as reader:
        while True:
            try:
                note = reader.get("/checkpoint").text
            except UnavailableError:  # 503 until the quorum cosigned a first checkpoint
                note = ""
            if note and parse_checkpoint_text(parse_note(note).text).size >= size:
                cosignatures = len(parse_note(note).signatures) - 1
                typer.echo(
                    f"  checkpoint of {size} entries: signed by the ledger, cosigned {cosignatures} times"
                )
                return
            if time.monotonic() > deadline:
                raise UnavailableError("the witnesses did not cosign the newest checkpoint within 30 s")
            time.sleep(0.1)


def _check_receipt(receipt: dict[str, Any], ledger: SignerKey, data_dir: Path, pub: str) -> None:
    _say("9. An inspector checks the seal's receipt offline, trusting only the ledger's public key")
    checkpoint = open_checkpoint(receipt["checkpoint"], ledger.verifier())
    proof = [hash_from_hex(h) for h in receipt["inclusion_proof"]]
    verify_inclusion(receipt["index"], checkpoint.size, hash_from_hex(receipt["leaf_hash"]), proof,
                     checkpoint.root_hash)  # fmt: skip
    typer.echo(
        f"  entry {receipt['index']} is in the tree of size {checkpoint.size} signed by {ledger.keyid}"
    )
    receipt_file = data_dir / "seal-receipt.json"
    receipt_file.write_bytes(msgspec.json.encode(receipt))
    _evledger("verify-proof", "inclusion", "--receipt", str(receipt_file), "--key", pub)
