"""Tampered dossiers (issue #4): every change to a verified dossier must fail `verify`, precisely.

The story runs once against a live server (cli/story.py), then a contractor's key
is registered, used, revoked (its next envelope is refused with 422) and another
key registered, so the key chain holds a revocation in its middle. The module
downloads three dossiers: the story's before the exception (non-compliant), the
story's at the end (sealed, compliant), and the contractor's release. Each test
changes a copy in memory; `verify_dossier` must raise VerificationError naming
what is wrong, and `evledger verify` must exit 1. Histories the service refuses
to write (a signature by a revoked or unregistered key) are forged in memory
with the ledger key (forged_log.py). The untouched dossiers are the controls.
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from forged_log import ForgedLog
from ledger_harness import register, revoke, to_json
from story_support import LiveLedger, Played, evledger, live_ledger, play_story, signed

from cli import story as s
from cli.demo import POLICY_FILE
from ledger.core.checkpoint import open_checkpoint
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, sign_envelope
from ledger.core.keys import SignerKey, VerifierKey
from ledger.core.note import parse_note, sign_note
from ledger.errors import ChainError, SignatureError, VerificationError
from ledger.records import predicates as p
from ledger.records.admin import encode_policy_record
from ledger.records.policy import load_policy_toml
from ledger.verify.compliance_claim import recompute
from ledger.verify.dossier import Dossier, DossierReport, verify_dossier

VERSION = "3.1.0"
HOTFIX = f"{VERSION}-hotfix"
Data = dict[str, Any]


@dataclass(frozen=True)
class World:
    live: LiveLedger
    played: Played
    final: bytes
    early: bytes
    contractor_dossier: bytes
    contractor: SignerKey
    contractor_registered: int
    revocation: int
    after_revocation: httpx.Response
    unregistered: httpx.Response
    stranger: str
    earlier_checkpoint: str
    later_checkpoint: str

    @property
    def verifier(self) -> VerifierKey:
        return self.live.ledger.signer.verifier()

    @property
    def pub(self) -> str:
        return str(self.live.ledger.pub_path)


def _post(live: LiveLedger, envelope: Any, token: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"}
    return httpx.post(f"{live.url}/v1/entries", content=to_json(envelope), headers=headers)


def _admin(live: LiveLedger, envelope: Any) -> int:
    response = _post(live, envelope, live.admin_token)
    assert response.status_code == 201, response.text
    return int(response.json()["index"])


def _hotfix_change(key: SignerKey, n: int) -> Any:
    summary = p.ChangeSummary("Hotfix", "Urgent", "Low", "Review")
    change = p.Change(p.Release(s.PRODUCT, HOTFIX), f"CHG-H{n}", summary, "low",
                      affects_intended_use=False, patient_facing_output=False, components=["ui"],
                      author=key.name)  # fmt: skip
    return signed(key, p.CHANGE, change, "sha256:" + f"{n:x}" * 64)


@pytest.fixture(scope="module")
def world(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tamper")
    with live_ledger(pg_server_dsn, directory) as live:
        played = play_story(live, VERSION)
        ledger = live.ledger.signer
        contractor = SignerKey.generate(f"people.test/contractor-{VERSION}")
        registered = _admin(live, register(ledger, contractor, ["developer"], [s.PRODUCT]))
        signed_before = _post(live, _hotfix_change(contractor, 1), live.appender_token)
        assert signed_before.status_code == 201, signed_before.text
        revocation = _admin(live, revoke(ledger, contractor.keyid, "laptop stolen"))
        after_revocation = _post(live, _hotfix_change(contractor, 2), live.appender_token)
        stranger = SignerKey.generate(f"people.test/stranger-{VERSION}")
        unregistered = _post(live, _hotfix_change(stranger, 3), live.appender_token)
        _admin(live, register(ledger, SignerKey.generate(f"people.test/auditor-{VERSION}"), ["auditor"]))
        with live.admin() as client:
            final = client.get(f"/v1/releases/{s.PRODUCT}/{VERSION}/dossier").content
            contractor_dossier = client.get(f"/v1/releases/{s.PRODUCT}/{HOTFIX}/dossier").content
            pipeline = played.story.people["pipeline"].key
            later = _post(live, _hotfix_change(pipeline, 4), live.appender_token)
            assert later.status_code == 201, later.text
            later_checkpoint = client.get("/v1/checkpoint").text
        yield World(
            live, played, final, played.early_dossier, contractor_dossier, contractor, registered,
            revocation, after_revocation, unregistered, stranger.keyid,
            played.story.receipts["validation"]["checkpoint"], later_checkpoint,
        )  # fmt: skip


# --- helpers ---------------------------------------------------------------------------------------


def _encode(data: Data) -> bytes:
    return json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()


def _verify(world: World, data: Data | Dossier) -> DossierReport:
    dossier = data if isinstance(data, Dossier) else msgspec.json.decode(_encode(data), type=Dossier)
    return verify_dossier(dossier, world.verifier, recompute)


def _cli_verify(world: World, tmp_path: Path, raw: bytes) -> Any:
    path = tmp_path / "tampered.dossier.json"
    path.write_bytes(raw)
    return evledger("verify", str(path), "--key", world.pub)


def rejected(
    world: World,
    tmp_path: Path,
    data: Data | Dossier,
    *fragments: str,
    error: type[VerificationError] = VerificationError,
) -> VerificationError:
    """verify_dossier raises `error` whose message holds every fragment; `evledger verify` exits 1."""
    with pytest.raises(error) as caught:
        _verify(world, data)
    message = str(caught.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    raw = msgspec.json.encode(data) if isinstance(data, Dossier) else _encode(data)
    result = _cli_verify(world, tmp_path, raw)
    assert result.exit_code == 1, result.output
    assert "verification FAILED" in result.output
    return caught.value


def _flip_entry(item: Data, marker: bytes, offset: int, mask: int) -> None:
    """Flip bits `mask` of the entry's byte at `offset` after the first `marker`; re-encode base64."""
    raw = bytearray(base64.b64decode(item["entry"]))
    position = raw.index(marker) + len(marker) + offset
    raw[position] ^= mask
    item["entry"] = base64.b64encode(bytes(raw)).decode()


def _flip_hex(value: str, byte: int = 7) -> str:
    raw = bytearray(bytes.fromhex(value))
    raw[byte] ^= 0x01
    return raw.hex()


# --- controls --------------------------------------------------------------------------------------


def test_untouched_dossiers_verify(world: World, tmp_path: Path) -> None:
    final = _verify(world, json.loads(world.final))
    assert (final.sealed, final.compliance["status"]) == (True, "compliant")
    assert world.revocation in [k["index"] for k in json.loads(world.final)["keys"]]
    early = _verify(world, json.loads(world.early))
    assert (early.sealed, early.compliance["status"]) == (False, "non-compliant")
    for raw in (world.final, world.early, world.contractor_dossier):
        result = _cli_verify(world, tmp_path, raw)
        assert result.exit_code == 0, result.output


def test_evidence_signed_before_a_revocation_still_verifies(world: World) -> None:
    report = _verify(world, json.loads(world.contractor_dossier))
    (event,) = report.events
    assert event.signer.keyid == world.contractor.keyid
    assert world.contractor_registered < event.index < world.revocation


def test_the_service_refuses_envelopes_by_revoked_or_unknown_keys(world: World) -> None:
    for refused, keyid in (
        (world.after_revocation, world.contractor.keyid),
        (world.unregistered, world.stranger),
    ):
        assert refused.status_code == 422, refused.text
        assert keyid in refused.json()["detail"]


# --- (a)-(f): a flipped byte in each part ----------------------------------------------------------

ENTRY_FLIPS = {
    "time digit": (b'"time":"', 3, 0x01),
    "payload": (b'"payload":"', 40, 0x01),
    "signature": (b'"sig":"', 10, 0x01),
    "index digit": (b'"index":', 0, 0x01),
    "payload, high bit (not UTF-8)": (b'"payload":"', 40, 0x80),
    "time, high bit (not UTF-8)": (b'"time":"', 3, 0x80),
}


@pytest.mark.parametrize("where", ENTRY_FLIPS)
def test_a_flipped_byte_in_an_entry(world: World, tmp_path: Path, where: str) -> None:
    data = json.loads(world.final)
    item = data["entries"][5]
    _flip_entry(item, *ENTRY_FLIPS[where])
    rejected(world, tmp_path, data, f"release entry {item['index']}")


@pytest.mark.parametrize("part", ["entries", "keys", "policy"])
def test_a_flipped_byte_in_an_inclusion_proof_hash(world: World, tmp_path: Path, part: str) -> None:
    data = json.loads(world.final)
    item = data["policy"] if part == "policy" else data[part][3]
    item["inclusion_proof"][1] = _flip_hex(item["inclusion_proof"][1])
    what = {"entries": "release entry", "keys": "key event", "policy": "policy entry"}[part]
    error = rejected(world, tmp_path, data, f"{what} {item['index']} is not in the tree")
    assert error.expected == open_checkpoint(data["checkpoint"], world.verifier).root_hash.hex()


@pytest.mark.parametrize("spelling", ["uppercase", "not hex", "short"])
def test_a_malformed_inclusion_proof_hash(world: World, tmp_path: Path, spelling: str) -> None:
    data = json.loads(world.final)
    item = data["entries"][2]
    value = item["inclusion_proof"][0]
    item["inclusion_proof"][0] = {
        "uppercase": value.upper(),
        "not hex": "g" + value[1:],
        "short": value[:-2],
    }[spelling]
    rejected(world, tmp_path, data, f"release entry {item['index']} is malformed")


def _checkpoint_parts(note: str) -> tuple[str, str, str]:
    """(text before the root, root, the rest) of a signed checkpoint note."""
    origin, size, root, rest = note.split("\n", 3)
    return f"{origin}\n{size}\n", root, "\n" + rest


def _flip_b64(value: str, byte: int) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def test_a_flipped_bit_in_the_checkpoint_root(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    head, root, rest = _checkpoint_parts(data["checkpoint"])
    data["checkpoint"] = head + _flip_b64(root, 9) + rest
    rejected(world, tmp_path, data, f"{world.verifier.keyid} does not verify", error=SignatureError)


@pytest.mark.parametrize(
    ("byte", "fragment"), [(20, "does not verify"), (1, "not signed by any trusted key")]
)
def test_a_flipped_bit_in_the_checkpoint_signature(
    world: World, tmp_path: Path, byte: int, fragment: str
) -> None:
    data = json.loads(world.final)
    text, _, signature_line = data["checkpoint"].rpartition("\n\n")
    prefix, _, signature = signature_line.rstrip("\n").rpartition(" ")
    data["checkpoint"] = f"{text}\n\n{prefix} {_flip_b64(signature, byte)}\n"
    rejected(world, tmp_path, data, fragment, error=SignatureError)


def test_every_single_character_flip_in_the_checkpoint_note_fails_verification(world: World) -> None:
    data = json.loads(world.final)
    note: str = data["checkpoint"]
    wrong = []
    for position, char in enumerate(note):
        data["checkpoint"] = note[:position] + chr(ord(char) ^ 0x01) + note[position + 1 :]
        try:
            _verify(world, data)
        except VerificationError:
            continue
        except Exception as exc:  # noqa: BLE001 - collected and reported below with the position
            wrong.append(f"{position} {char!r}: {type(exc).__name__}: {exc}")
        else:
            wrong.append(f"{position} {char!r}: verified")
    assert not wrong, "flips not reported as a failed verification:\n" + "\n".join(wrong)


def test_a_flipped_byte_in_a_key_event(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    item = data["keys"][2]
    _flip_entry(item, b'"payload":"', 30, 0x01)
    rejected(world, tmp_path, data, f"key event {item['index']} is not in the tree")


def test_a_flipped_byte_in_the_policy_entry(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    _flip_entry(data["policy"], b'"payload":"', 100, 0x01)
    index = data["policy"]["index"]
    rejected(world, tmp_path, data, f"policy entry {index} is not in the tree")


# (which dossier, the edit, the field of the result that then differs first)
COMPLIANCE_EDITS: dict[str, tuple[str, Callable[[Data], None], str]] = {
    "non-compliant made compliant": ("early", lambda d: d["compliance"].update(status="compliant"), "status"),
    "failing finding removed": ("early", lambda d: d["compliance"].update(findings=[]), "findings"),
    "waived finding made to pass": (
        "final",
        lambda d: d["compliance"]["findings"][0].update(status="fail"),
        "findings",
    ),
    "an evaluated entry removed": ("final", lambda d: d["compliance"]["entries"].pop(), "entries"),
    "policy entry renamed": ("final", lambda d: d["compliance"]["policy"].update(entry=1), "policy"),
}


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def _starts(shown: str, value: object) -> bool:
    """Whether a side of the error is `value` as compact JSON (cut short, with an ellipsis, when long)."""
    full = _compact(value)
    return shown == full or (shown.endswith("…") and full.startswith(shown[:-1]))


@pytest.mark.parametrize("edit", COMPLIANCE_EDITS)
def test_a_changed_compliance_result(world: World, tmp_path: Path, edit: str) -> None:
    """The error names the field that differs: the dossier's claim, then the re-evaluation.

    Before, "expected" held the re-evaluation and "calculated" the claim, and only their statuses.
    """
    which, change, differing = COMPLIANCE_EDITS[edit]
    data = json.loads(getattr(world, which))
    original = copy.deepcopy(
        data["compliance"][differing]
    )  # the untouched dossier verifies: the re-evaluation
    change(data)
    error = rejected(world, tmp_path, data, "compliance result does not follow from its evidence and policy",
                     f"its {differing} differs")  # fmt: skip
    assert error.labels == ("dossier claims", "re-evaluated")
    assert _starts(error.expected, data["compliance"][differing])
    assert _starts(error.calculated, original)
    assert error.expected != error.calculated


def test_an_edited_compliance_claim_prints_the_claim_then_the_re_evaluation(
    world: World, tmp_path: Path
) -> None:
    data = json.loads(world.early)
    data["compliance"]["status"] = "compliant"  # the evidence makes it non-compliant
    result = _cli_verify(world, tmp_path, _encode(data))
    assert result.exit_code == 1, result.output
    assert result.output.splitlines() == [
        (
            "evledger: verification FAILED: the dossier's compliance result does not follow from its "
            "evidence and policy: its status differs"
        ),
        "  dossier claims: compliant",
        "  re-evaluated:   non-compliant",
    ]
    path = tmp_path / "tampered.dossier.json"
    report = json.loads(evledger("verify", str(path), "--key", world.pub, "--json").output)
    assert (report["expected"], report["calculated"]) == ("compliant", "non-compliant")
    assert report["labels"] == {"expected": "dossier claims", "calculated": "re-evaluated"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("evaluated_at", "2030-01-01T00:00:00.000Z"),
        ("environment", "production"),
        ("evaluated_at", "yesterday"),
    ],
)
def test_changed_evaluation_inputs(world: World, tmp_path: Path, field: str, value: str) -> None:
    data = json.loads(world.final)
    data[field] = value
    rejected(world, tmp_path, data, "compliance")


# --- (g): a flipped byte anywhere in the file ------------------------------------------------------


def _raw_positions(raw: bytes) -> list[int]:
    spaced = list(range(0, len(raw), len(raw) // 24))
    markers = [
        (b'"format":"', 3), (b'"product":"', 2), (b'"checkpoint":"', 1), (b"\\n\\n", 0), (b"\\n\\n", 2),
        ("\u2014".encode(), 0), ("\u2014 ".encode(), 2), (b'"inclusion_proof":["', 5), (b'"entry":"', 9),
        (b'"index":', 0), (b'"evaluated_at":"', 4), (b'"evaluated_at":"', 10), (b'"environment":', 1),
        (b'"status":"', 2), (b'"waived_by":', 1), (b"}]}", 0),
    ]  # fmt: skip
    targeted = [raw.index(marker) + len(marker) + offset for marker, offset in markers]
    targeted.append(raw.index(b"=\\n") - 3)  # inside the checkpoint signature's base64
    return sorted({*spaced, *targeted, len(raw) - 1})


def test_a_flipped_byte_anywhere_in_the_file_fails_with_exit_1(world: World, tmp_path: Path) -> None:
    raw = world.final
    wrong = []
    for position in _raw_positions(raw):
        for mask in (0x01, 0x80):
            tampered = bytearray(raw)
            tampered[position] ^= mask
            result = _cli_verify(world, tmp_path, bytes(tampered))
            whitespace = raw[position : position + 1] in {b" ", b"\t", b"\r", b"\n"}
            escaped = result.exception is not None and not isinstance(result.exception, SystemExit)
            if result.exit_code == 1 and not escaped:
                continue
            if result.exit_code == 0 and whitespace:
                continue
            context = raw[max(0, position - 12) : position + 12]
            detail = (
                result.output.strip().splitlines()[0] if result.output.strip() else repr(result.exception)
            )
            wrong.append(f"byte {position} ^ {mask:#04x} in {context!r}: exit {result.exit_code}: {detail}")
    assert not wrong, f"{len(wrong)} flips did not exit 1:\n" + "\n".join(wrong)


def test_a_dossier_file_with_a_byte_that_is_not_utf8_fails_with_exit_1(world: World, tmp_path: Path) -> None:
    raw = bytearray(world.final)
    raw[raw.index(b'"product":"') + len(b'"product":"')] = 0xFF  # inside a string: valid JSON, invalid UTF-8
    result = _cli_verify(world, tmp_path, bytes(raw))
    assert result.exit_code == 1, result.output
    assert "verification FAILED" in result.output


def test_a_dossier_file_nested_past_the_recursion_limit_fails_with_exit_1(
    world: World, tmp_path: Path
) -> None:
    """A hostile file, not a bug: msgspec's RecursionError is reported as a failed verification."""
    deep = b"[" * 5000 + b"]" * 5000  # inside `compliance`, the one part typed Any
    raw = world.final.replace(b'"compliance":{', b'"compliance":{"deep":' + deep + b",", 1)
    assert raw != world.final
    result = _cli_verify(world, tmp_path, raw)
    assert result.exit_code == 1, result.output
    assert "verification FAILED" in result.output


# --- removed, reordered, swapped -------------------------------------------------------------------


def test_a_removed_release_event(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    removed = data["entries"].pop(6)
    following = data["entries"][6]["index"]
    fragments = (f"entry {following} is event 7 of the release", "event 6 of the release is missing")
    rejected(world, tmp_path, data, *fragments, error=ChainError)
    assert removed["index"] < following


@pytest.mark.parametrize("part", ["entries", "keys"])
def test_a_reordered_pair_of_events(world: World, tmp_path: Path, part: str) -> None:
    data = json.loads(world.final)
    items = data[part]
    items[3], items[4] = items[4], items[3]
    what = "release entries" if part == "entries" else "key events"
    rejected(
        world,
        tmp_path,
        data,
        f"{what} are not in log order: entry {items[4]['index']} follows {items[3]['index']}",
    )


def test_a_removed_key_revocation(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    keys = data["keys"]
    position = next(i for i, k in enumerate(keys) if k["index"] == world.revocation)
    del keys[position]
    following = keys[position]["index"]
    rejected(world, tmp_path, data, f"key event {following} does not follow the key event before it",
             "one is missing", error=ChainError)  # fmt: skip


def test_the_newest_key_event_removed(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    newest = data["keys"].pop()["index"]
    error = rejected(world, tmp_path, data, "do not end at the checkpoint's newest key event")
    assert error.expected == str(newest)


def test_a_signer_registration_left_out_of_the_keys(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    pipeline = world.played.registrations[0]["index"]  # the CI pipeline signs the builds and tests
    keys = data["keys"]
    position = next(i for i, k in enumerate(keys) if k["index"] == pipeline)
    del keys[position]
    rejected(world, tmp_path, data, f"key event {keys[position]['index']} does not follow", "one is missing",
             error=ChainError)  # fmt: skip


def test_the_policy_left_out(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    data["policy"] = None
    rejected(world, tmp_path, data, "no policy entry")


def test_another_release_claimed(world: World, tmp_path: Path) -> None:
    data = json.loads(world.final)
    data["version"] = HOTFIX
    rejected(world, tmp_path, data, f"belongs to release {s.PRODUCT} {VERSION}", error=ChainError)


# --- another checkpoint, another key ---------------------------------------------------------------


@pytest.mark.parametrize("which", ["earlier", "later"])
def test_proofs_against_another_checkpoint(world: World, tmp_path: Path, which: str) -> None:
    data = json.loads(world.final)
    note = world.earlier_checkpoint if which == "earlier" else world.later_checkpoint
    size = open_checkpoint(note, world.verifier).size
    assert size != open_checkpoint(data["checkpoint"], world.verifier).size
    data["checkpoint"] = note
    rejected(world, tmp_path, data, f"is not in the tree of the dossier's checkpoint (size {size})")


@pytest.mark.parametrize("name", ["ledger.test/it", "evil.example/ledger"])
def test_a_checkpoint_signed_by_another_key(world: World, tmp_path: Path, name: str) -> None:
    data = json.loads(world.final)
    other = SignerKey.generate(name)
    data["checkpoint"] = sign_note(parse_note(data["checkpoint"]).text, [other])
    error = rejected(world, tmp_path, data, "not signed by any trusted key", error=SignatureError)
    assert (error.expected, error.calculated) == (world.verifier.keyid, other.keyid)
    assert error.labels == ("trusted key", "signed by")
    result = _cli_verify(world, tmp_path, _encode(data))
    assert result.output.splitlines() == [
        "evledger: verification FAILED: note is not signed by any trusted key",
        f"  trusted key: {world.verifier.keyid}",
        f"  signed by:   {other.keyid}",
    ]


# --- forged histories: signatures the sequencer would never have accepted --------------------------


SIGNER_REFUSED = "its signature is not valid at its index: no signature by a key that may sign here"
WHY_REFUSED = {
    "revoked": "was revoked at entry",
    "never registered": "is not registered",
    "registered later": "is registered only from entry",
}


def _policy_envelope(ledger: SignerKey) -> Any:
    payload = encode_policy_record(load_policy_toml(POLICY_FILE.read_text(encoding="utf-8")))
    return sign_envelope(ADMIN_PAYLOAD_TYPE, payload, [ledger])


def _forged_change(key: SignerKey) -> Any:
    summary = p.ChangeSummary("Forged", "To test", "None", "None")
    change = p.Change(p.Release(s.PRODUCT, "forged"), "CHG-F", summary, "low",
                      affects_intended_use=False, patient_facing_output=False, components=["ui"],
                      author="Ann Author")  # fmt: skip
    return signed(key, p.CHANGE, change, "sha256:" + "ab" * 32)


def _forge(world: World, history: str) -> tuple[Dossier, dict[str, int], SignerKey]:
    """A forged log: the ledger, a policy, and `alice` signing the release's change as `history` says."""
    ledger = world.live.ledger.signer
    log = ForgedLog(ledger)
    alice = SignerKey.generate("people.test/alice")
    at: dict[str, int] = {"policy": log.admin(_policy_envelope(ledger))}
    if history in {"control", "revoked"}:
        at["registered"] = log.admin(register(ledger, alice, ["developer"], [s.PRODUCT]))
    if history == "revoked":
        at["revoked"] = log.admin(revoke(ledger, alice.keyid, "left the company"))
    if history == "admin by a non-admin":
        at["registered"] = log.admin(register(ledger, alice, ["developer"], [s.PRODUCT]))
        bob = SignerKey.generate("people.test/bob")
        at["forged"] = log.append(register(alice, bob, ["admin"]), alice.verifier())
    at["change"] = log.append(_forged_change(alice), alice.verifier())
    if history == "registered later":
        at["registered"] = log.admin(register(ledger, alice, ["developer"], [s.PRODUCT]))
    return log.dossier(s.PRODUCT, "forged", "2026-03-02T10:00:00.000Z", recompute), at, alice


def test_the_forger_builds_dossiers_that_verify(world: World) -> None:
    dossier, at, alice = _forge(world, "control")
    report = _verify(world, dossier)
    assert [(e.index, e.signer.keyid) for e in report.events] == [(at["change"], alice.keyid)]


def test_a_signature_by_a_revoked_key(world: World, tmp_path: Path) -> None:
    dossier, at, alice = _forge(world, "revoked")
    rejected(
        world, tmp_path, dossier, f"entry {at['change']}", alice.keyid, SIGNER_REFUSED, WHY_REFUSED["revoked"]
    )


@pytest.mark.parametrize("history", ["never registered", "registered later"])
def test_a_signature_by_an_unregistered_key(world: World, tmp_path: Path, history: str) -> None:
    dossier, at, alice = _forge(world, history)
    rejected(
        world, tmp_path, dossier, f"entry {at['change']}", alice.keyid, SIGNER_REFUSED, WHY_REFUSED[history]
    )


def test_a_key_registered_by_a_non_admin(world: World, tmp_path: Path) -> None:
    dossier, at, _ = _forge(world, "admin by a non-admin")
    rejected(world, tmp_path, dossier, f"entry {at['forged']}", "role 'admin'")
