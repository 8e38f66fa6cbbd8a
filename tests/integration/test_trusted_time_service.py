"""Trusted time on a running ledger (issue #11): `serve --tsa URL --tsa-cert CERT.pem`, `verify --tsa-cert`.

A real RFC 3161 authority (OpenSSL's `openssl ts -reply` behind HTTP, tests/tsa_authority.py)
timestamps the checkpoints the witness quorum cosigned; the dossier carries the token, and an
inspector checks it offline against the authority's certificate: a token for another
checkpoint, by an untrusted authority, or edited by one byte is refused, and so is an
evaluation backdated to before the trusted time.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from ledger_harness import Ledger, init_ledger, live_server, token
from release_support import PRODUCT, set_up
from story_support import evledger
from tsa_authority import LocalTsa, local_tsa, needs_openssl, other_tsa
from witness_support import make_witness, running_witness, wait_for, write_policy

from ledger.core.checkpoint import open_checkpoint
from ledger.verify.compliance_claim import recompute as recompute_compliance
from ledger.verify.dossier import decode_dossier, verify_dossier

__all__ = ["local_tsa", "other_tsa"]  # pytest fixtures, imported to be found
pytestmark = needs_openssl
VERSION = "3.1"


@dataclass(frozen=True)
class Anchored:
    """A release's dossier from a ledger with one witness and a TSA, and the files to check it with."""

    ledger: Ledger
    dossier: Path
    policy: Path
    tsa: LocalTsa
    url_tokens: dict[str, object]
    url: str  # the ledger, still serving
    reader: str  # an auditor's token


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture(scope="module")
def anchored(
    pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory, local_tsa: LocalTsa
) -> Iterator[Anchored]:
    from service_support import scratch_database  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("anchored")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = init_ledger(dsn, directory)
        witness = make_witness(directory, "w1")
        policy = write_policy(directory / "witnesses.policy", [witness], 1)
        args = [
            "--witness-policy",
            str(policy),
            "--tsa",
            local_tsa.url,
            "--tsa-cert",
            str(local_tsa.cert_path),
        ]
        admin, appender, reader = (token(dsn, role) for role in ("admin", "appender", "auditor"))
        with (
            running_witness(witness, ledger.pub_path),
            live_server(ledger, args=[*args, "--tsa-interval", "0.2"]) as url,
        ):
            set_up(url, ledger, admin, appender, VERSION)
            entries = httpx.get(url + "/v1/entries?start=0&limit=100", headers=auth(reader)).json()["entries"]

            def timestamped() -> dict[str, object] | None:
                response = httpx.get(url + "/v1/anchors", headers=auth(reader))
                if response.status_code != 200:
                    return None
                answer: dict[str, object] = response.json()
                return answer if answer["timestamps"] and answer["tree_size"] >= len(entries) else None

            served = wait_for(timestamped, 30, "a cosigned, timestamped checkpoint")
            fetched = httpx.get(
                f"{url}/v1/releases/{PRODUCT}/{VERSION}/dossier", headers=auth(reader), timeout=30
            )
            assert fetched.status_code == 200, fetched.text
            dossier = directory / "release.dossier.json"
            dossier.write_bytes(fetched.content)
            yield Anchored(ledger, dossier, policy, local_tsa, served, url, reader)


def verify(anchored: Anchored, dossier: Path, *options: str) -> tuple[int, str]:
    result = evledger("verify", str(dossier), "--key", str(anchored.ledger.pub_path), *options)
    return result.exit_code, result.output


def test_the_dossier_carries_a_token_that_verifies_offline(anchored: Anchored) -> None:
    data = msgspec.json.decode(anchored.dossier.read_bytes())
    assert len(data["timestamps"]) >= 1
    size = open_checkpoint(data["checkpoint"], anchored.ledger.signer.verifier()).size
    assert size >= anchored.url_tokens["tree_size"]  # type: ignore[operator]
    code, output = verify(
        anchored,
        anchored.dossier,
        "--witness-policy",
        str(anchored.policy),
        "--tsa-cert",
        str(anchored.tsa.cert_path),
    )
    assert code == 0, output
    assert "checkpoint existed by" in output
    assert "Local Test TSA" in output
    assert "cosigned by 1 of 1 required witnesses" in output
    # The CA that issued the TSA certificate is as good an anchor.
    code, output = verify(anchored, anchored.dossier, "--tsa-cert", str(anchored.tsa.ca_path))
    assert code == 0, output


def test_attack_a_token_from_an_untrusted_tsa_is_refused(anchored: Anchored, other_tsa: LocalTsa) -> None:
    code, output = verify(anchored, anchored.dossier, "--tsa-cert", str(other_tsa.cert_path))
    assert code == 1, output
    assert "not signed by a trusted TSA" in output


def _variant(anchored: Anchored, tmp_path: Path, **changes: object) -> Path:
    data = msgspec.json.decode(anchored.dossier.read_bytes())
    data.update(changes)
    path = tmp_path / "variant.dossier.json"
    path.write_bytes(msgspec.json.encode(data))
    return path


def test_attack_a_token_for_another_checkpoint_is_refused(anchored: Anchored, tmp_path: Path) -> None:
    # A genuine token by the trusted TSA, over another checkpoint's text.
    from ledger.verify.trusted_time import check_response, timestamp_request  # noqa: PLC0415

    request = timestamp_request("ledger.test/it\n1\n" + base64.b64encode(bytes(32)).decode() + "\n")
    reply = httpx.post(
        anchored.tsa.url, content=request, headers={"Content-Type": "application/timestamp-query"}
    )
    token = check_response(reply.content, request)
    variant = _variant(anchored, tmp_path, timestamps=[base64.b64encode(token).decode()])
    code, output = verify(anchored, variant, "--tsa-cert", str(anchored.tsa.cert_path))
    assert code == 1, output
    assert "for another checkpoint" in output


@pytest.mark.parametrize("position", [0.1, 0.5, 0.9])
def test_attack_a_token_edited_by_one_byte_is_refused(
    anchored: Anchored, tmp_path: Path, position: float
) -> None:
    data = msgspec.json.decode(anchored.dossier.read_bytes())
    token = bytearray(base64.b64decode(data["timestamps"][0]))
    token[int(len(token) * position)] ^= 0x01
    variant = _variant(anchored, tmp_path, timestamps=[base64.b64encode(bytes(token)).decode()])
    code, output = verify(anchored, variant, "--tsa-cert", str(anchored.tsa.cert_path))
    assert code == 1, output
    assert "timestamp token" in output


def test_attack_a_dossier_without_its_token_is_refused_when_time_is_required(
    anchored: Anchored, tmp_path: Path
) -> None:
    variant = _variant(anchored, tmp_path, timestamps=[])
    assert verify(anchored, variant)[0] == 0  # the ledger key alone does not ask for time
    code, output = verify(anchored, variant, "--tsa-cert", str(anchored.tsa.cert_path))
    assert code == 1, output
    assert "carries no RFC 3161 timestamp token" in output


def test_attack_an_evaluation_backdated_before_the_trusted_time_is_refused(
    anchored: Anchored, tmp_path: Path
) -> None:
    """The server re-evaluates at a time before the checkpoint existed (say, before an exception expired)."""
    dossier = decode_dossier(anchored.dossier.read_bytes(), "dossier")
    inputs: list[tuple[Any, ...]] = []

    def capture(events: Any, policy: Any, index: Any, at: str, environment: Any) -> dict[str, Any]:
        inputs.append((events, policy, index, environment))
        return recompute_compliance(events, policy, index, at, environment)

    verify_dossier(dossier, anchored.ledger.signer.verifier(), capture)
    events, policy, index, environment = inputs[0]
    backdated = "2020-01-01T00:00:00.000Z"
    claim = recompute_compliance(events, policy, index, backdated, environment)
    variant = _variant(anchored, tmp_path, evaluated_at=backdated, compliance=claim)
    code, output = verify(anchored, variant)
    assert code == 0, f"without trusted time the backdating goes unseen: {output}"
    code, output = verify(anchored, variant, "--tsa-cert", str(anchored.tsa.cert_path))
    assert code == 1, output
    assert "backdated" in output


def test_verify_log_checks_quorum_and_trusted_time_from_the_server(
    anchored: Anchored, other_tsa: LocalTsa
) -> None:
    base = [
        "verify-log",
        "--server",
        anchored.url,
        "--token",
        anchored.reader,
        "--key",
        str(anchored.ledger.pub_path),
    ]
    trust = ["--witness-policy", str(anchored.policy), "--tsa-cert", str(anchored.tsa.cert_path)]
    result = evledger(*base, *trust)
    assert result.exit_code == 0, result.output
    assert "cosigned by 1 of 1 required witnesses" in result.output
    assert "checkpoint existed by" in result.output
    result = evledger(*base, "--tsa-cert", str(other_tsa.cert_path))
    assert result.exit_code == 1, result.output
    assert "not signed by a trusted TSA" in result.output


def test_tlog_proof_export_carries_the_cosigned_checkpoint_and_its_token(
    anchored: Anchored, tmp_path: Path
) -> None:
    out, proofs = tmp_path / "d.json", tmp_path / "proofs"
    result = evledger(
        "dossier", PRODUCT, VERSION, "-o", str(out), "--tlog-proofs", str(proofs),
        "--server", anchored.url, "--token", anchored.reader,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    tokens = sorted(proofs.glob("checkpoint-*.tsr"))
    assert tokens
    proof_file = max(proofs.glob("entry-*.tlog-proof"))
    note = proof_file.read_text().split("\n\n", 1)[1]
    checkpoint_file = tmp_path / "checkpoint"
    checkpoint_file.write_text(note)
    result = evledger(
        "verify-consistency", str(checkpoint_file), str(checkpoint_file),
        "--key", str(anchored.ledger.pub_path),
        "--witness-policy", str(anchored.policy), "--tsa-cert", str(anchored.tsa.cert_path),
        "--timestamp", str(tokens[0]),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "checkpoint existed by" in result.output
