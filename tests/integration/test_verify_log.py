"""`evledger verify-log` and `verify-consistency` against a live server and a tampered copy of its tiles.

One ledger per module: entry 0, a pipeline key registration and 300 evidence
entries in two batches (302 entries: one full level-0 tile, one partial of 46,
and a level-1 tile). Every attack works on a fresh copy of the downloaded
tiles and must fail with exit 1 and a message naming the entry or tile.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from audit_support import (
    ServedLedger,
    download_tiles,
    fill_ledger,
    new_ledger,
    run_cli,
    scratch_database,
    serving,
)
from ledger_harness import ORIGIN

from cli.client import LedgerClient
from ledger.core.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from ledger.core.hashing import HASH_SIZE, leaf_hash
from ledger.core.keys import SignerKey
from ledger.core.tiles import TILE_WIDTH, decode_entry_bundle, encode_entry_bundle
from ledger.verify.tree_check import TileBuilder

BUNDLE_1 = "tile/entries/001.p/46"
HASH_TILE_1 = "tile/0/001.p/46"


@pytest.fixture(scope="module")
def served(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedLedger]:
    directory = tmp_path_factory.mktemp("verify-log")
    with scratch_database(pg_server_dsn) as dsn:
        ledger = new_ledger(dsn, directory / "keys")
        with serving(ledger) as url:
            yield fill_ledger(ledger, url, [150, 150], directory)


@pytest.fixture(scope="module")
def pristine(served: ServedLedger) -> Path:
    destination = served.directory / "pristine"
    assert download_tiles(served, destination) == 302
    return destination


@pytest.fixture
def copy(pristine: Path, tmp_path: Path) -> Path:
    destination = tmp_path / "tiles"
    shutil.copytree(pristine, destination)
    return destination


def verify_tiles(served: ServedLedger, directory: Path, *extra: str) -> tuple[int, str]:
    return run_cli("verify-log", "--tiles", directory, "--key", served.ledger.pub_path, *extra)


def rewrite_entry(directory: Path, slot: int, after: bytes, replace: Callable[[bytes], bytes]) -> None:
    """Rewrite the value that follows `after` in one entry of bundle 1; the bundle stays well formed."""
    path = directory / BUNDLE_1
    entries = decode_entry_bundle(path.read_bytes())
    start = entries[slot].index(after) + len(after)
    end = entries[slot].index(b'"', start)
    entries[slot] = entries[slot][:start] + replace(entries[slot][start:end]) + entries[slot][end:]
    path.write_bytes(encode_entry_bundle(entries))


def reseal(served: ServedLedger, directory: Path, index: int, replace: Callable[[bytes], bytes]) -> None:
    """Rewrite entry `index` and re-hash the whole copy consistently, signed with the ledger key itself.

    Every hash tile and the checkpoint then agree with the altered entry: only the checks
    inside the entries (signatures, chain links) can catch what was changed.
    """
    bundles = [directory / "tile/entries/000", directory / BUNDLE_1]
    entries = [entry for path in bundles for entry in decode_entry_bundle(path.read_bytes())]
    entries[index] = replace(entries[index])
    for number, path in enumerate(bundles):
        path.write_bytes(encode_entry_bundle(entries[number * 256 : (number + 1) * 256]))
    builder = TileBuilder()
    built = [tile for entry in entries for tile in builder.append(leaf_hash(entry))]
    for item in built + builder.partial_tiles():
        (directory / item.tile.path()).write_bytes(item.hashes)
    genuine = open_checkpoint((directory / "checkpoint").read_bytes(), served.ledger.signer.verifier())
    resealed = Checkpoint(genuine.origin, genuine.size, builder.root(), genuine.extensions)
    (directory / "checkpoint").write_text(sign_checkpoint(resealed, served.ledger.signer))


def forge_signature(entry: bytes) -> bytes:
    """The entry with one base64 character of its envelope's signature changed (still 64 bytes)."""
    start = entry.index(b'"sig":"') + len(b'"sig":"') + 10
    return entry[:start] + (b"A" if entry[start : start + 1] != b"A" else b"B") + entry[start + 1 :]


# --- passing runs ---


def test_live_server_passes(served: ServedLedger):
    code, output = run_cli(
        "verify-log", "--server", served.url, "--token", served.auditor, "--key", served.ledger.pub_path
    )
    assert code == 0, output
    assert "verified: log ledger.test/it: 302 entries, 302 signatures checked" in output


def test_live_server_passes_with_json(served: ServedLedger):
    code, output = run_cli(
        "verify-log", "--server", served.url, "--token", served.auditor, "--key", served.ledger.pub_path,
        "--json", "--origin", ORIGIN,
    )  # fmt: skip
    assert code == 0, output
    report = json.loads(output)
    assert report["ok"] is True
    assert report["tree_size"] == 302
    assert report["signatures"] == 302
    assert report["signed_by"] == served.ledger.signer.keyid


@pytest.mark.parametrize("jobs", [(), ("--jobs", "2")])
def test_tile_directory_passes(served: ServedLedger, copy: Path, jobs: tuple[str, ...]):
    code, output = verify_tiles(served, copy, *jobs)
    assert code == 0, output
    assert "302 entries" in output


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_resealed_copy_without_changes_passes(served: ServedLedger, copy: Path, jobs: str):
    # The control for the forgeries below: resealing alone breaks nothing.
    reseal(served, copy, 301, lambda entry: entry)
    code, output = verify_tiles(served, copy, "--jobs", jobs)
    assert code == 0, output


# --- attacks on the copy ---


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_forged_signature_under_a_resealed_tree_is_caught(served: ServedLedger, copy: Path, jobs: str):
    # Hashes, tiles and checkpoint all agree with the forged entry: only its signature can tell.
    reseal(served, copy, 301, forge_signature)
    code, output = verify_tiles(served, copy, "--jobs", jobs)
    assert code == 1, output
    assert "entry 301: signature by" in output
    assert "does not verify" in output


@pytest.mark.parametrize("jobs", ["0", "1", "2"])
def test_bad_signature_is_reported_before_the_chain_break_it_causes(
    served: ServedLedger, copy: Path, jobs: str
):
    # Entry 200's new hash breaks entry 201's prev link; the replay meets that break while
    # entry 200's signature may still be out on a helper. The first failure is entry 200's.
    reseal(served, copy, 200, forge_signature)
    code, output = verify_tiles(served, copy, "--jobs", jobs)
    assert code == 1, output
    assert "entry 200: signature by" in output
    assert "entry 201" not in output


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_flipped_byte_in_entry_payload_names_the_entry(served: ServedLedger, copy: Path, jobs: str):
    # Entry 300 is slot 44 of bundle 1: swap two base64 characters of its payload.
    rewrite_entry(copy, 44, b'"payload":"', lambda p: p[:20] + (b"A" if p[20:21] != b"A" else b"B") + p[21:])
    code, output = verify_tiles(served, copy, "--jobs", jobs)
    assert code == 1, output
    assert "verification FAILED" in output
    assert "entry 300" in output


def test_flipped_raw_byte_in_bundle_fails(served: ServedLedger, copy: Path):
    path = copy / BUNDLE_1
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "verification FAILED" in output
    assert "entry 2" in output or "entry bundle" in output


@pytest.mark.parametrize("jobs", ["0", "2"])
def test_altered_unsigned_time_names_the_entry_not_its_successor(served: ServedLedger, copy: Path, jobs: str):
    # The time is outside the envelope's signature: only the hashes can catch it.
    rewrite_entry(copy, 44, b'"time":"', lambda t: t[:20] + (b"1" if t[20:21] != b"1" else b"2") + t[21:])
    code, output = verify_tiles(served, copy, "--jobs", jobs)
    assert code == 1, output
    assert "entry 300 in" in output
    assert "was altered" in output
    assert "  hash tile holds: " in output
    assert "  entry hashes to: " in output


def test_flipped_byte_in_level0_hash_tile_names_the_tile(served: ServedLedger, copy: Path):
    path = copy / HASH_TILE_1
    data = bytearray(path.read_bytes())
    data[32 * 44 + 7] ^= 0x80
    path.write_bytes(bytes(data))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert f"hash tile {copy / HASH_TILE_1}, slot 44" in output
    assert "leaf hash of entry 300" in output
    assert "the hash tile was altered" in output


def test_flipped_byte_in_level1_hash_tile_names_the_tile(served: ServedLedger, copy: Path):
    path = copy / "tile/1/000.p/1"
    data = bytearray(path.read_bytes())
    data[3] ^= 0x01
    path.write_bytes(bytes(data))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "hash tile tile/1/000.p/1" in output
    assert "slot 0 (entries 0..255)" in output


def test_truncated_bundle_fails(served: ServedLedger, copy: Path):
    path = copy / BUNDLE_1
    path.write_bytes(path.read_bytes()[:-10])
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert f"{path} (entries 256..301): entry bundle truncated in entry 45" in output


def test_bundle_missing_an_entry_fails(served: ServedLedger, copy: Path):
    path = copy / BUNDLE_1
    path.write_bytes(encode_entry_bundle(decode_entry_bundle(path.read_bytes())[:-1]))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "holds 45 entries, expected 46" in output


def test_missing_tile_fails_verification(served: ServedLedger, copy: Path):
    (copy / "tile/0/000").unlink()
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "covers tile/0/000" in output


def test_missing_checkpoint_is_an_input_error(served: ServedLedger, copy: Path):
    (copy / "checkpoint").unlink()
    code, output = verify_tiles(served, copy)
    assert code == 2, output
    assert f"{copy / 'checkpoint'} does not exist" in output


def verify_tiles_in_child(served: ServedLedger, directory: Path) -> tuple[int, str]:
    """`verify-log --tiles` in a process stopped after 60 s and 1 GiB: a hang or an endless read fails."""
    limit = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({1 << 30}, {1 << 30}))"
    command = [sys.executable, "-c", f"{limit}; from cli.main import main; main()"]
    arguments = ["verify-log", "--tiles", str(directory), "--key", str(served.ledger.pub_path), "--jobs", "0"]
    try:
        done = subprocess.run(  # noqa: S603 - our own interpreter running our own CLI
            [*command, *arguments], capture_output=True, text=True, timeout=60, check=False
        )
    except subprocess.TimeoutExpired:
        pytest.fail("verify-log did not finish within 60 s")
    return done.returncode, done.stdout + done.stderr


def _dev_zero(path: Path) -> str:
    path.symlink_to("/dev/zero")
    return "a character device"


def _fifo(path: Path) -> str:
    os.mkfifo(path)
    return "a FIFO"


# Each plants a special file at a path and says what the error must call it.
SPECIAL_FILES: dict[str, Callable[[Path], str]] = {"symlink to /dev/zero": _dev_zero, "FIFO": _fifo}


@pytest.mark.parametrize("special", SPECIAL_FILES)
@pytest.mark.parametrize("where", [BUNDLE_1, "tile/0/000", "checkpoint"])
def test_a_special_file_in_the_copy_is_an_input_error_naming_it(
    served: ServedLedger, copy: Path, where: str, special: str
):
    (copy / where).unlink()
    kind = SPECIAL_FILES[special](copy / where)
    code, output = verify_tiles_in_child(served, copy)
    assert code == 2, output
    assert f"evledger: error: {copy / where} is {kind}, not a regular file" in output, output


def test_an_oversized_tile_in_the_copy_fails_naming_it(served: ServedLedger, copy: Path):
    path = copy / HASH_TILE_1
    path.write_bytes(path.read_bytes() + bytes(TILE_WIDTH * HASH_SIZE))
    code, output = verify_tiles_in_child(served, copy)
    assert code == 1, output
    assert f"covers {HASH_TILE_1}, but {path} is over {TILE_WIDTH * HASH_SIZE} bytes" in output


def test_an_oversized_checkpoint_file_is_an_input_error(served: ServedLedger, copy: Path):
    (copy / "checkpoint").write_bytes(bytes(1 << 17))
    code, output = verify_tiles(served, copy)
    assert code == 2, output
    assert f"{copy / 'checkpoint'} is over" in output


def _payload_not_utf8(entry: bytes) -> bytes:
    """The entry with one string of its statement spelled in a byte that is not UTF-8 (JSON syntax intact)."""
    start = entry.index(b'"payload":"') + len(b'"payload":"')
    end = entry.index(b'"', start)
    payload = base64.b64decode(entry[start:end])
    name = payload.index(b'"artifact-') + 1
    bad = payload[:name] + b"\xff" + payload[name + 1 :]
    return entry[:start] + base64.b64encode(bad) + entry[end:]


def test_a_payload_that_is_not_utf8_under_a_resealed_tree_fails_naming_the_entry(
    served: ServedLedger, copy: Path
):
    reseal(served, copy, 301, _payload_not_utf8)
    code, output = verify_tiles(served, copy, "--jobs", "0")
    assert code == 1, output
    assert "verification FAILED" in output
    assert "entry 301: payload is not an in-toto Statement: 'utf-8' codec can't decode" in output


def test_checkpoint_signed_by_another_key_fails(served: ServedLedger, copy: Path):
    genuine = open_checkpoint((copy / "checkpoint").read_bytes(), served.ledger.signer.verifier())
    impostor = SignerKey.generate(ORIGIN)  # same name, other key
    (copy / "checkpoint").write_text(sign_checkpoint(genuine, impostor))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "checkpoint" in output
    assert "not signed by any trusted key" in output


def test_checkpoint_over_another_root_fails(served: ServedLedger, copy: Path):
    genuine = open_checkpoint((copy / "checkpoint").read_bytes(), served.ledger.signer.verifier())
    forged = Checkpoint(genuine.origin, genuine.size, bytes(32), genuine.extensions)
    (copy / "checkpoint").write_text(sign_checkpoint(forged, served.ledger.signer))
    code, output = verify_tiles(served, copy, "--json")
    assert code == 1, output
    report = json.loads(output)
    assert report["error"] == "root_mismatch"
    assert report["expected"] == "00" * 32


def test_checkpoint_hiding_a_key_event_fails(served: ServedLedger, copy: Path):
    # Signed by the ledger key itself, but naming entry 0 as the newest key event: entry 1 would be hidden.
    genuine = open_checkpoint((copy / "checkpoint").read_bytes(), served.ledger.signer.verifier())
    assert genuine.extensions[0] == "evledger-keys 1"
    hiding = ("evledger-keys 0", *genuine.extensions[1:])
    forged = Checkpoint(genuine.origin, genuine.size, genuine.root_hash, hiding)
    (copy / "checkpoint").write_text(sign_checkpoint(forged, served.ledger.signer))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert "evledger-keys line names another newest key event than its entries hold" in output


def test_live_server_with_another_key_fails(served: ServedLedger, tmp_path: Path):
    other = tmp_path / "other.pub"
    other.write_text(SignerKey.generate(ORIGIN).verifier().format() + "\n")
    code, output = run_cli("verify-log", "--server", served.url, "--token", served.auditor, "--key", other)
    assert code == 1, output
    assert "not signed by any trusted key" in output


def test_without_a_source_is_a_usage_error(served: ServedLedger, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("EVLEDGER_SERVER", raising=False)
    code, output = run_cli("verify-log", "--key", served.ledger.pub_path)
    assert code == 2, output


def test_bad_token_is_not_a_verification_failure(served: ServedLedger):
    code, output = run_cli(
        "verify-log", "--server", served.url, "--token", "nope", "--key", served.ledger.pub_path
    )
    assert code == 2, output
    assert "401" in output


# --- verify-consistency ---


def write_checkpoints(served: ServedLedger, directory: Path) -> tuple[Path, Path, Path]:
    paths = []
    for size in (2, 152, 302):
        path = directory / f"checkpoint-{size}"
        path.write_text(served.checkpoints[size])
        paths.append(path)
    return paths[0], paths[1], paths[2]


def consistency(served: ServedLedger, old: Path, new: Path, *extra: str | Path) -> tuple[int, str]:
    return run_cli("verify-consistency", old, new, "--key", served.ledger.pub_path, *extra)


def test_consistency_from_the_server(served: ServedLedger, tmp_path: Path):
    old, middle, new = write_checkpoints(served, tmp_path)
    for first, second in ((old, new), (old, middle), (middle, new), (new, new)):
        code, output = consistency(served, first, second, "--server", served.url, "--token", served.auditor)
        assert code == 0, output
        assert "verified: log ledger.test/it" in output


def test_consistency_from_a_proof_file(served: ServedLedger, tmp_path: Path):
    old, _, new = write_checkpoints(served, tmp_path)
    with LedgerClient(served.url, served.auditor) as client:
        proof = client.get("/v1/proofs/consistency", first=2, second=302).content
    (tmp_path / "proof.json").write_bytes(proof)
    code, output = consistency(served, old, new, "--proof", tmp_path / "proof.json", "--json")
    assert code == 0, output
    report = json.loads(output)
    assert (report["old"]["tree_size"], report["new"]["tree_size"]) == (2, 302)


def test_tampered_proof_fails(served: ServedLedger, tmp_path: Path):
    old, _, new = write_checkpoints(served, tmp_path)
    with LedgerClient(served.url, served.auditor) as client:
        proof = client.get("/v1/proofs/consistency", first=2, second=302).json()
    proof["hashes"][1] = ("0" if proof["hashes"][1][0] != "0" else "1") + proof["hashes"][1][1:]
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    code, output = consistency(served, old, new, "--proof", tmp_path / "proof.json")
    assert code == 1, output
    assert "consistency proof does not lead to the root" in output


def test_proof_for_other_sizes_fails(served: ServedLedger, tmp_path: Path):
    old, _, new = write_checkpoints(served, tmp_path)
    with LedgerClient(served.url, served.auditor) as client:
        proof = client.get("/v1/proofs/consistency", first=152, second=302).content
    (tmp_path / "proof.json").write_bytes(proof)
    code, output = consistency(served, old, new, "--proof", tmp_path / "proof.json")
    assert code == 1, output
    assert "another tree size" in output


def test_checkpoint_from_another_log_fails(served: ServedLedger, tmp_path: Path):
    old, _, _ = write_checkpoints(served, tmp_path)
    stranger = SignerKey.generate("other.test/log")
    foreign = tmp_path / "foreign"
    foreign.write_text(sign_checkpoint(Checkpoint("other.test/log", 400, bytes(32)), stranger))
    code, output = consistency(served, old, foreign, "--server", served.url, "--token", served.auditor)
    assert code == 1, output
    assert f"new checkpoint {foreign}" in output
    # Trusting the stranger's key instead: then the ledger's own checkpoint is the foreign one.
    stranger_pub = tmp_path / "stranger.pub"
    stranger_pub.write_text(stranger.verifier().format() + "\n")
    code, output = run_cli("verify-consistency", old, foreign, "--key", stranger_pub, "--server", served.url)
    assert code == 1, output
    assert f"old checkpoint {old}" in output


def test_checkpoint_of_same_origin_signed_by_another_key_fails(served: ServedLedger, tmp_path: Path):
    old, _, new = write_checkpoints(served, tmp_path)
    genuine = open_checkpoint(new.read_text(), served.ledger.signer.verifier())
    forged = tmp_path / "forged"
    forged.write_text(sign_checkpoint(genuine, SignerKey.generate(ORIGIN)))
    code, output = consistency(served, old, forged, "--server", served.url, "--token", served.auditor)
    assert code == 1, output
    assert "not signed by any trusted key" in output


def test_shrinking_log_fails(served: ServedLedger, tmp_path: Path):
    old, _, new = write_checkpoints(served, tmp_path)
    code, output = consistency(served, new, old, "--server", served.url, "--token", served.auditor)
    assert code == 1, output
    assert "smaller" in output


def test_consistency_without_proof_source_is_a_usage_error(
    served: ServedLedger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.delenv("EVLEDGER_SERVER", raising=False)
    old, _, new = write_checkpoints(served, tmp_path)
    code, output = run_cli("verify-consistency", old, new, "--key", served.ledger.pub_path)
    assert code == 2, output


def _restamp(moment: str) -> Callable[[bytes], bytes]:
    def replace(entry: bytes) -> bytes:
        start = entry.index(b'"time":"') + len(b'"time":"')
        return entry[:start] + moment.encode() + entry[start + len(moment) :]

    return replace


@pytest.mark.parametrize(
    ("moment", "wanted"),
    [
        ("2000-01-01T00:00:00.000Z", "entry 301 is stamped earlier than entry 300: time went back"),
        ("2036-01-01T00:00:00.000Z", "entry 301: it is stamped in the future of this verifier's clock"),
    ],
    ids=["back", "future"],
)
def test_a_time_going_back_or_from_the_future_is_caught_under_a_resealed_tree(
    served: ServedLedger, copy: Path, moment: str, wanted: str
):
    # Everything hashes and is signed by the ledger key: only the time itself tells.
    reseal(served, copy, 301, _restamp(moment))
    code, output = verify_tiles(served, copy)
    assert code == 1, output
    assert wanted in output
