"""The ledger's witnessing (issue #11): real `evledger serve` against real `evledger witness serve`.

Checkpoints go to the witnesses of `serve --witness-policy` beside the sequencer; `GET /checkpoint`
serves the newest one the quorum cosigned, dossiers carry it, and `evledger verify
--witness-policy` refuses a checkpoint without it. A witness that is down never holds up an
append; one that lies is not counted; and a log forked by restoring a database backup is
refused by the witnesses and by the verifier.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from audit_support import restored_copy
from ledger_harness import Ledger, evidence, init_ledger, live_server, register, to_json, token
from release_support import PRODUCT, set_up
from story_support import evledger
from witness_support import WitnessSpec, make_witness, running_witness, wait_for, write_policy

from ledger.core.checkpoint import Checkpoint, open_checkpoint
from ledger.core.cosignature import cosign
from ledger.core.keys import SignerKey
from ledger.core.witness_protocol import parse_add_checkpoint
from ledger.errors import VerificationError
from ledger.verify.anchoring import Trust
from ledger.verify.dossier import decode_dossier, verify_dossier
from ledger.verify.witness_policy import WitnessPolicy, check_quorum, parse_witness_policy

VERSION = "7.0"


@pytest.fixture
def ledger(fresh_dsn: str, tmp_path: Path) -> Ledger:
    return init_ledger(fresh_dsn, tmp_path)


def auth(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


_PIPELINE = SignerKey.generate("people.test/witnessing-pipeline")


def register_pipeline(url: str, ledger: Ledger, admin: str) -> None:
    """Register the key `append_one` signs with."""
    envelope = register(ledger.signer, _PIPELINE, ["appender"])
    response = httpx.post(url + "/v1/entries", content=to_json(envelope), headers=auth(admin), timeout=30)
    assert response.status_code == 201, response.text


def append_one(url: str, ledger: Ledger, appender: str, n: int) -> int:
    """Append one evidence entry; the tree size of its receipt's (ledger-signed) checkpoint."""
    body = to_json(evidence(_PIPELINE, n=n, product=None))
    response = httpx.post(url + "/v1/entries", content=body, headers=auth(appender), timeout=30)
    assert response.status_code == 201, response.text
    return open_checkpoint(response.json()["checkpoint"], ledger.signer.verifier()).size


def served_cosigned(url: str, ledger: Ledger, reader: str, policy: WitnessPolicy, size: int) -> str | None:
    """The note `GET /checkpoint` serves, once it covers `size` and holds the quorum."""
    response = httpx.get(url + "/checkpoint", headers=auth(reader), timeout=10)
    if response.status_code != 200:
        return None
    note = response.text
    if open_checkpoint(note, ledger.signer.verifier()).size < size:
        return None
    check_quorum(note, policy)
    return note


def test_checkpoints_are_cosigned_by_the_quorum_and_dossiers_carry_them(
    ledger: Ledger, tmp_path: Path
) -> None:
    witnesses = [make_witness(tmp_path, name) for name in ("w1", "w2")]
    policy_file = write_policy(tmp_path / "witnesses.policy", witnesses, 2)
    policy = parse_witness_policy(policy_file.read_text())
    admin, appender, reader = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))
    with (
        running_witness(witnesses[0], ledger.pub_path),
        running_witness(witnesses[1], ledger.pub_path),
        live_server(ledger, args=["--witness-policy", str(policy_file)]) as url,
    ):
        set_up(url, ledger, admin, appender, VERSION)
        register_pipeline(url, ledger, admin)
        body = to_json(evidence(_PIPELINE, n=1, product=None))
        receipt = httpx.post(url + "/v1/entries", content=body, headers=auth(appender), timeout=30).json()
        receipt_file = tmp_path / "receipt.json"
        receipt_file.write_text(json.dumps(receipt))
        size = open_checkpoint(receipt["checkpoint"], ledger.signer.verifier()).size
        note = wait_for(
            lambda: served_cosigned(url, ledger, reader, policy, size), 20, "a cosigned checkpoint"
        )
        # A receipt carries the checkpoint the ledger signed alone: it lacks the quorum by itself,
        # and the server's cosigned checkpoint is proven to extend it.
        check = ["verify-proof", "inclusion", "--receipt", str(receipt_file), "--key", str(ledger.pub_path)]
        check += ["--witness-policy", str(policy_file)]
        alone = evledger(*check)
        assert alone.exit_code == 1, alone.output
        assert "lacks its witness quorum" in alone.output
        extended = evledger(*check, "--anchored-by", url, "--token", reader)
        assert extended.exit_code == 0, extended.output
        assert "extended by the anchored checkpoint" in extended.output
        assert "cosigned by 2 of 2 required witnesses" in extended.output
        quorum = check_quorum(note, policy)
        assert {w.name for w, _ in quorum.cosigned} == {w.key.name for w in witnesses}
        anchors = httpx.get(url + "/v1/anchors", headers=auth(reader)).json()
        assert anchors["checkpoint"] == note
        assert anchors["timestamps"] == []
        metrics = httpx.get(url + "/metrics", headers=auth(reader)).text
        assert "evledger_cosigned_tree_size" in metrics
        assert "evledger_witness_lag_seconds" in metrics

        dossier_file = tmp_path / "release.dossier.json"
        fetched = httpx.get(
            f"{url}/v1/releases/{PRODUCT}/{VERSION}/dossier", headers=auth(reader), timeout=30
        )
        assert fetched.status_code == 200, fetched.text
        dossier_file.write_bytes(fetched.content)
    dossier = decode_dossier(dossier_file.read_bytes(), "dossier")
    assert dossier.checkpoint == note or check_quorum(dossier.checkpoint, policy)
    report = verify_dossier(dossier, ledger.signer.verifier(), trust=Trust(policy))
    assert report.anchoring.quorum is not None
    assert len(report.anchoring.quorum.cosigned) == 2

    result = evledger(
        "verify", str(dossier_file), "--key", str(ledger.pub_path), "--witness-policy", str(policy_file)
    )
    assert result.exit_code == 0, result.output
    assert "cosigned by 2 of 2 required witnesses" in result.output

    # A verifier holding a stricter policy (a third witness it trusts, all three required) refuses it.
    third = make_witness(tmp_path, "w3")
    strict = write_policy(tmp_path / "strict.policy", [*witnesses, third], 3)
    result = evledger(
        "verify", str(dossier_file), "--key", str(ledger.pub_path), "--witness-policy", str(strict)
    )
    assert result.exit_code == 1, result.output
    assert "lacks its witness quorum" in result.output


def test_a_witness_that_is_down_never_blocks_appends(ledger: Ledger, tmp_path: Path) -> None:
    up, down = make_witness(tmp_path, "up"), make_witness(tmp_path, "down")
    policy_file = write_policy(tmp_path / "witnesses.policy", [up, down], 2)
    policy = parse_witness_policy(policy_file.read_text())
    admin, appender, reader = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))
    with (
        running_witness(up, ledger.pub_path),
        live_server(ledger, args=["--witness-policy", str(policy_file)]) as url,
    ):
        register_pipeline(url, ledger, admin)
        started = time.monotonic()
        sizes = [append_one(url, ledger, appender, n) for n in range(20)]
        assert time.monotonic() - started < 10, "appends waited for a witness"
        assert sizes == sorted(sizes)
        # No quorum: the cosigned checkpoint is delayed (503), never a stale or unwitnessed one.
        response = httpx.get(url + "/checkpoint", headers=auth(reader))
        assert response.status_code == 503, response.text
        assert "Retry-After" in response.headers
        lag = wait_for(lambda: _gauge(url, reader, "evledger_witness_lag_seconds") or None, 10, "a lag")
        assert lag > 0
        # The witness comes up: the newest checkpoint gets both cosignatures, nothing was lost.
        with running_witness(down, ledger.pub_path):
            note = wait_for(
                lambda: served_cosigned(url, ledger, reader, policy, sizes[-1]), 60, "a cosigned checkpoint"
            )
        assert open_checkpoint(note, ledger.signer.verifier()).size >= sizes[-1]


def test_a_restarted_witness_resumes_and_keeps_cosigning(ledger: Ledger, tmp_path: Path) -> None:
    spec = make_witness(tmp_path, "restarting")
    policy_file = write_policy(tmp_path / "witnesses.policy", [spec], 1)
    policy = parse_witness_policy(policy_file.read_text())
    admin, appender, reader = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))
    with live_server(ledger, args=["--witness-policy", str(policy_file)]) as url:
        register_pipeline(url, ledger, admin)
        with running_witness(spec, ledger.pub_path):
            size = append_one(url, ledger, appender, 1)
            wait_for(lambda: served_cosigned(url, ledger, reader, policy, size), 20, "the first cosignature")
        size = max(append_one(url, ledger, appender, n) for n in range(2, 6))
        with running_witness(spec, ledger.pub_path):  # same key, same data directory
            wait_for(
                lambda: served_cosigned(url, ledger, reader, policy, size),
                30,
                "a cosignature after the restart",
            )


class _LyingWitness(http.server.BaseHTTPRequestHandler):
    """Answers every add-checkpoint with a valid cosignature by its key, over another root."""

    key: SignerKey

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        submitted = parse_add_checkpoint(body)
        text = submitted.checkpoint.split("\n\n", 1)[0] + "\n"
        origin, size, _ = text.split("\n", 2)
        forged = Checkpoint(origin, int(size), secrets.token_bytes(32)).text()
        line = cosign(forged, self.key, int(time.time()))
        self.send_response(200)
        self.end_headers()
        self.wfile.write(line.encode())

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def liar(tmp_path: Path) -> Iterator[WitnessSpec]:
    spec = make_witness(tmp_path, "liar")
    handler = type("Liar", (_LyingWitness,), {"key": spec.key})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", spec.port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield spec
    finally:
        server.shutdown()
        server.server_close()


def test_attack_a_witness_that_cosigns_a_wrong_root_is_not_counted(
    ledger: Ledger, tmp_path: Path, liar: WitnessSpec
) -> None:
    honest = make_witness(tmp_path, "honest")
    policy_file = write_policy(tmp_path / "witnesses.policy", [honest, liar], 2)
    admin, appender, reader = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))
    with (
        running_witness(honest, ledger.pub_path),
        live_server(ledger, args=["--witness-policy", str(policy_file)]) as url,
    ):
        register_pipeline(url, ledger, admin)
        append_one(url, ledger, appender, 1)
        wait_for(
            lambda: _gauge(url, reader, "evledger_witness_failures_total") or None,
            20,
            "the liar's answer refused",
        )
        assert httpx.get(url + "/checkpoint", headers=auth(reader)).status_code == 503
        anchors = httpx.get(url + "/v1/anchors?tree_size=1", headers=auth(reader)).json()
        assert liar.key.name not in anchors["checkpoint"]


def test_attack_fork_by_restoring_a_backup_is_refused_by_witnesses_and_verify(
    ledger: Ledger, tmp_path: Path, pg_server_dsn: str
) -> None:
    """The issue's fork: restore the database from a backup, append different entries with the same key."""
    witnesses = [make_witness(tmp_path, name) for name in ("w1", "w2")]
    policy_file = write_policy(tmp_path / "witnesses.policy", witnesses, 2)
    policy = parse_witness_policy(policy_file.read_text())
    admin, appender, reader = (token(ledger.dsn, role) for role in ("admin", "appender", "auditor"))
    witnessed = ["--witness-policy", str(policy_file)]
    with running_witness(witnesses[0], ledger.pub_path), running_witness(witnesses[1], ledger.pub_path):
        with live_server(ledger, args=witnessed) as url:
            set_up(url, ledger, admin, appender, VERSION)
            register_pipeline(url, ledger, admin)
            size = append_one(url, ledger, appender, 1)
            wait_for(lambda: served_cosigned(url, ledger, reader, policy, size), 20, "a cosigned checkpoint")
        # The backup: a copy of the database as it is now (the service is stopped, as for pg_dump).
        with restored_copy(pg_server_dsn, ledger.dsn) as backup:
            with live_server(ledger, args=witnessed) as url:
                size = max(append_one(url, ledger, appender, n) for n in range(2, 5))
                honest = wait_for(
                    lambda: served_cosigned(url, ledger, reader, policy, size), 20, "the honest log cosigned"
                )
            honest_size = open_checkpoint(honest, ledger.signer.verifier()).size

            # The operator restores the backup and appends other entries with the same ledger key.
            forked = Ledger(backup, ledger.signer, ledger.key_path, ledger.pub_path)
            with live_server(forked, args=witnessed) as url:
                fork_size = max(append_one(url, ledger, appender, n) for n in range(100, 106))
                assert fork_size > honest_size
                # Both witnesses refuse the fork: they hold the honest tree, which it does not extend.
                wait_for(
                    lambda: _gauge(url, reader, "evledger_witness_refusals_total") >= 2 or None,
                    20,
                    "refusals",
                )
                served = httpx.get(url + "/checkpoint", headers=auth(reader))
                if served.status_code == 200:  # the backup's own, older cosigned checkpoint at most
                    assert open_checkpoint(served.text, ledger.signer.verifier()).size < honest_size
            # The operator serves the fork without its witnesses, to hand out a dossier of it.
            with live_server(forked) as url:
                fetched = httpx.get(f"{url}/v1/releases/{PRODUCT}/{VERSION}/dossier", headers=auth(reader))
                assert fetched.status_code == 200, fetched.text
            dossier_file = tmp_path / "forked.dossier.json"
            dossier_file.write_bytes(fetched.content)
            dossier = decode_dossier(fetched.content, "forked dossier")
            assert open_checkpoint(dossier.checkpoint, ledger.signer.verifier()).size == fork_size
            verify_dossier(dossier, ledger.signer.verifier())  # the ledger key alone cannot tell
            with pytest.raises(VerificationError, match="lacks its witness quorum"):
                verify_dossier(dossier, ledger.signer.verifier(), trust=Trust(policy))
            result = evledger("verify", str(dossier_file), "--key", str(ledger.pub_path), *witnessed)
            assert result.exit_code == 1, result.output
            assert "lacks its witness quorum" in result.output


def _gauge(url: str, reader: str, name: str) -> float:
    text = httpx.get(url + "/metrics", headers=auth(reader), timeout=10).text
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
