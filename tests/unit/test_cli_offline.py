"""The offline CLI commands (docs/cli.md): keygen, verify-note, verify-proof inclusion/consistency.

Fixtures are built with the pure core only: keys, signed checkpoints over a
small list of leaves, and proofs whose node hashes are computed straight from
those leaves. Exit codes are the contract: 0 ok, 1 verification failed, 2 input.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

import cli.files
import cli.offline
from cli.errors import error_kind, exit_code_for
from cli.main import app
from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.compact_range import root_from_leaf_hashes
from ledger.core.hashing import leaf_hash
from ledger.core.keys import SignerKey, parse_signer_key, parse_verifier_key
from ledger.core.note import sign_note
from ledger.core.proof import NodeID, consistency_nodes, inclusion_nodes
from ledger.errors import (
    EncodingError,
    InputError,
    KeyFormatError,
    LedgerError,
    NotFoundError,
    RootMismatchError,
    SignatureError,
    TooLargeError,
    VerificationError,
)

ORIGIN = "ledger.example/test"
ENTRIES = [b'{"index":%d,"v":1}' % i for i in range(13)]
LEAVES = [leaf_hash(entry) for entry in ENTRIES]

runner = CliRunner()


def subtree_hash(leaves: list[bytes], node: NodeID) -> bytes:
    begin, end = node.coverage()
    assert end <= len(leaves), f"{node} is not a complete subtree of {len(leaves)} leaves"
    return root_from_leaf_hashes(leaves[begin:end])


def inclusion_proof(index: int, size: int) -> list[str]:
    nodes = inclusion_nodes(index, size)
    return [h.hex() for h in nodes.rehash([subtree_hash(LEAVES[:size], n) for n in nodes.ids])]


def consistency_proof(size1: int, size2: int) -> list[str]:
    nodes = consistency_nodes(size1, size2)
    return [h.hex() for h in nodes.rehash([subtree_hash(LEAVES[:size2], n) for n in nodes.ids])]


def flip(hex_hash: str) -> str:
    return f"{int(hex_hash[0], 16) ^ 1:x}{hex_hash[1:]}"


def invoke(*args: object, stdin: bytes | None = None):
    return runner.invoke(app, [str(a) for a in args], input=stdin)


def json_of(result) -> dict[str, object]:
    return json.loads(result.stdout)


@dataclass
class Log:
    """A test log: its signer, the verifier key file, and a directory for files."""

    signer: SignerKey
    pub: Path
    tmp: Path

    def checkpoint(self, size: int, signer: SignerKey | None = None, origin: str = ORIGIN) -> Path:
        root = root_from_leaf_hashes(LEAVES[:size])
        path = self.tmp / f"checkpoint-{size}-{origin.replace('/', '_')}-{id(signer)}.note"
        path.write_text(sign_checkpoint(Checkpoint(origin, size, root), signer or self.signer))
        return path

    def write(self, name: str, content: str | bytes) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path


@pytest.fixture
def log(tmp_path: Path) -> Log:
    signer = SignerKey.generate(ORIGIN)
    pub = tmp_path / "ledger.pub"
    pub.write_text(signer.verifier().format() + "\n")
    return Log(signer, pub, tmp_path)


# --- keygen ---------------------------------------------------------------------------------


def test_keygen_writes_signer_and_verifier_files(tmp_path):
    result = invoke("keygen", "ledger.example/prod", "--out", tmp_path / "prod")
    assert result.exit_code == 0, result.output
    key_text = (tmp_path / "prod.key").read_text()
    pub_text = (tmp_path / "prod.pub").read_text()
    for text in (key_text, pub_text):
        assert text.endswith("\n")
        assert text.count("\n") == 1
    signer, verifier = parse_signer_key(key_text), parse_verifier_key(pub_text)
    assert signer.verifier() == verifier
    assert verifier.name == "ledger.example/prod"
    assert stat.S_IMODE((tmp_path / "prod.key").stat().st_mode) == 0o600
    assert verifier.keyid in result.stdout
    assert key_text.strip() not in result.output


def test_keygen_creates_the_key_exclusively_and_private_from_the_start(tmp_path, monkeypatch):
    calls = []
    real_open = os.open

    def spy_open(path, flags, mode=0o777):
        calls.append((str(path), flags, mode))
        return real_open(path, flags, mode)

    monkeypatch.setattr(cli.files.os, "open", spy_open)
    assert invoke("keygen", "k", "--out", tmp_path / "k").exit_code == 0
    key_calls = [c for c in calls if c[0].endswith(".key")]
    assert len(key_calls) == 1
    _, flags, mode = key_calls[0]
    assert flags & os.O_EXCL
    assert flags & os.O_CREAT
    assert mode == 0o600


@pytest.mark.parametrize("existing", ["prod.key", "prod.pub"])
def test_keygen_refuses_to_overwrite(tmp_path, existing):
    (tmp_path / existing).write_text("keep me\n")
    result = invoke("keygen", "ledger.example/prod", "--out", tmp_path / "prod")
    assert result.exit_code == 2
    assert "refusing to overwrite" in result.stderr
    assert (tmp_path / existing).read_text() == "keep me\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]


def test_keygen_refuses_a_dangling_symlink(tmp_path):
    (tmp_path / "prod.key").symlink_to(tmp_path / "elsewhere")
    assert invoke("keygen", "prod", "--out", tmp_path / "prod").exit_code == 2
    assert not (tmp_path / "elsewhere").exists()


def test_keygen_default_path_is_the_last_name_segment(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke("keygen", "ledger.example/eu/prod", "--json")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["prod.key", "prod.pub"]
    report = json_of(result)
    assert report["ok"] is True
    assert report["signer_key_file"] == "prod.key"
    assert report["verifier_key"] == (tmp_path / "prod.pub").read_text().strip()
    assert report["keyid"].startswith("ledger.example/eu/prod+")


@pytest.mark.parametrize("name", ["bad name", "a+b", "", "ledger.example/"])
def test_keygen_rejects_unusable_names(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    result = invoke("keygen", name, "--json")
    assert result.exit_code == 2
    assert json_of(result)["ok"] is False
    assert list(tmp_path.iterdir()) == []


def test_keygen_into_a_missing_directory_writes_nothing(tmp_path):
    result = invoke("keygen", "prod", "--out", tmp_path / "missing" / "prod")
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


# --- verify-note ----------------------------------------------------------------------------


def test_verify_note_accepts_a_checkpoint_and_prints_it(log):
    checkpoint = log.checkpoint(7)
    result = invoke("verify-note", checkpoint, "--key", log.pub)
    assert result.exit_code == 0, result.output
    assert log.signer.keyid in result.stdout
    assert ORIGIN in result.stdout
    assert root_from_leaf_hashes(LEAVES[:7]).hex() in result.stdout


def test_verify_note_json(log):
    result = invoke("verify-note", log.checkpoint(7), "--key", log.pub, "--json")
    report = json_of(result)
    assert result.exit_code == 0
    assert report["ok"] is True
    assert report["signed_by"] == [log.signer.keyid]
    assert report["checkpoint"]["tree_size"] == 7
    assert report["checkpoint"]["root_hash"] == root_from_leaf_hashes(LEAVES[:7]).hex()


def test_verify_note_plain_note_lists_unchecked_cosignatures(log):
    witness = SignerKey.generate("witness.example")
    note = log.write("plain.note", sign_note("hello\nworld\n", [log.signer, witness]))
    result = invoke("verify-note", note, "--key", log.pub, "--json")
    report = json_of(result)
    assert result.exit_code == 0
    assert report["checkpoint"] is None
    assert report["text"] == "hello\nworld\n"
    assert report["unchecked_signatures"] == [witness.keyid]


def test_verify_note_reads_stdin(log):
    result = invoke("verify-note", "-", "--key", log.pub, stdin=log.checkpoint(3).read_bytes())
    assert result.exit_code == 0, result.output


def test_verify_note_wrong_key_fails(log):
    other = SignerKey.generate("someone.else")
    result = invoke("verify-note", log.checkpoint(7, signer=other), "--key", log.pub)
    assert result.exit_code == 1
    assert "verification FAILED" in result.stderr
    assert "not signed by any trusted key" in result.stderr


@pytest.mark.parametrize(("old", "new"), [("\n7\n", "\n8\n"), (ORIGIN + "\n", ORIGIN[:-1] + "u\n")])
def test_verify_note_tampered_text_fails(log, old, new):
    note = log.checkpoint(7)
    text = note.read_text()
    assert old in text
    note.write_text(text.replace(old, new, 1))
    result = invoke("verify-note", note, "--key", log.pub, "--json")
    assert result.exit_code == 1
    report = json_of(result)
    assert report["ok"] is False
    assert report["error"] == "signature"


@pytest.mark.parametrize("garbage", [b"not a note at all\n", b"\xff\xfe\x00binary", b""])
def test_verify_note_garbage_is_an_input_error(log, garbage):
    result = invoke("verify-note", log.write("garbage.note", garbage), "--key", log.pub)
    assert result.exit_code == 2
    assert result.stderr.startswith("evledger: error:")
    assert "Traceback" not in result.output


def test_verify_note_missing_file_is_an_input_error(log):
    result = invoke("verify-note", log.tmp / "absent.note", "--key", log.pub, "--json")
    assert result.exit_code == 2
    report = json_of(result)
    assert report["error"] == "input"
    assert "absent.note" in report["detail"]


def test_verify_note_missing_or_malformed_key_file(log):
    checkpoint = log.checkpoint(2)
    assert invoke("verify-note", checkpoint, "--key", log.tmp / "absent.pub").exit_code == 2
    bad = log.write("bad.pub", "ledger.example/test+00000000+AAAA\n")
    assert invoke("verify-note", checkpoint, "--key", bad).exit_code == 2


def test_verify_note_refuses_a_signer_key_without_printing_it(log):
    secret = log.write("ledger.key", log.signer.format() + "\n")
    result = invoke("verify-note", log.checkpoint(2), "--key", secret)
    assert result.exit_code == 2
    assert "private" in result.stderr
    assert log.signer.format().split("+", 4)[4] not in result.output  # the seed (may itself hold "+")


def test_verify_note_origin(log):
    checkpoint = log.checkpoint(4)
    assert invoke("verify-note", checkpoint, "--key", log.pub, "--origin", ORIGIN).exit_code == 0
    result = invoke("verify-note", checkpoint, "--key", log.pub, "--origin", "other/log", "--json")
    assert result.exit_code == 1
    assert json_of(result)["expected"] == "other/log"


# --- verify-proof inclusion ------------------------------------------------------------------


def inclusion_flags(log: Log, index: int, size: int) -> list[object]:
    hashes = [arg for h in inclusion_proof(index, size) for arg in ("--hash", h)]
    return [
        *("verify-proof", "inclusion", "--key", log.pub, "--checkpoint", log.checkpoint(size)),
        *("--index", index, "--leaf-hash", LEAVES[index].hex(), *hashes),
    ]


@pytest.mark.parametrize(("index", "size"), [(0, 1), (1, 2), (0, 7), (6, 7), (5, 13), (12, 13), (8, 13)])
def test_inclusion_from_flags(log, index, size):
    result = invoke(*inclusion_flags(log, index, size), "--json")
    assert result.exit_code == 0, result.output
    report = json_of(result)
    assert report["ok"] is True
    assert (report["index"], report["tree_size"]) == (index, size)
    assert report["root_hash"] == root_from_leaf_hashes(LEAVES[:size]).hex()


def test_inclusion_from_entry_file_and_plain_text_proof(log):
    entry = log.write("entry.json", ENTRIES[9])
    proof = log.write("proof.txt", "\n".join(inclusion_proof(9, 13)) + "\n\n")
    result = invoke(
        "verify-proof", "inclusion", "--key", log.pub, "--checkpoint", log.checkpoint(13),
        "--index", 9, "--entry", entry, "--proof", proof,
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert LEAVES[9].hex() in result.stdout


def test_inclusion_from_api_json_proof_file_supplies_index_and_leaf(log):
    body = {"index": 4, "tree_size": 11, "leaf_hash": LEAVES[4].hex(), "hashes": inclusion_proof(4, 11)}
    proof = log.write("proof.json", json.dumps(body))
    result = invoke(
        "verify-proof", "inclusion", "--key", log.pub, "--checkpoint", log.checkpoint(11), "--proof", proof
    )
    assert result.exit_code == 0, result.output


def test_inclusion_proof_file_for_another_tree_size_fails(log):
    body = {"index": 4, "tree_size": 10, "leaf_hash": LEAVES[4].hex(), "hashes": inclusion_proof(4, 11)}
    proof = log.write("proof.json", json.dumps(body))
    result = invoke(
        "verify-proof", "inclusion", "--key", log.pub, "--checkpoint", log.checkpoint(11), "--proof", proof
    )
    assert result.exit_code == 1
    assert "tree size" in result.stderr


def write_receipt(log: Log, index: int, size: int) -> Path:
    receipt = {
        "index": index,
        "leaf_hash": LEAVES[index].hex(),
        "time": "2025-01-02T03:04:05.678Z",
        "checkpoint": log.checkpoint(size).read_text(),
        "inclusion_proof": inclusion_proof(index, size),
    }
    return log.write(f"receipt-{index}-{size}.json", json.dumps(receipt))


def test_inclusion_from_receipt(log):
    result = invoke(
        "verify-proof", "inclusion", "--key", log.pub, "--receipt", write_receipt(log, 5, 6), "--json"
    )
    assert result.exit_code == 0, result.output
    report = json_of(result)
    assert report["time"] == "2025-01-02T03:04:05.678Z"
    assert report["leaf_hash"] == LEAVES[5].hex()


def test_receipt_with_matching_entry_passes_and_other_entry_fails(log):
    receipt = write_receipt(log, 5, 6)
    base = ("verify-proof", "inclusion", "--key", log.pub, "--receipt", receipt)
    assert invoke(*base, "--entry", log.write("e5", ENTRIES[5])).exit_code == 0
    result = invoke(*base, "--entry", log.write("e4", ENTRIES[4]), "--json")
    assert result.exit_code == 1
    report = json_of(result)
    assert report["expected"] == LEAVES[4].hex()
    assert report["calculated"] == LEAVES[5].hex()


def test_inclusion_flipped_proof_hash_fails_with_both_roots(log):
    args = inclusion_flags(log, 3, 13)
    position = args.index("--hash") + 1
    args[position] = flip(str(args[position]))
    result = invoke(*args, "--json")
    assert result.exit_code == 1
    report = json_of(result)
    assert report["error"] == "root_mismatch"
    assert report["expected"] == root_from_leaf_hashes(LEAVES[:13]).hex()
    assert report["calculated"] not in {None, report["expected"]}
    assert report["labels"] == {"expected": "checkpoint root", "calculated": "computed root"}
    text_result = invoke(*args)
    assert text_result.stderr.splitlines()[1:] == [
        f"  checkpoint root: {report['expected']}",
        f"  computed root:   {report['calculated']}",
    ]


@pytest.mark.parametrize("index", [2, 4, 13])
def test_inclusion_wrong_index_fails(log, index):
    args = inclusion_flags(log, 3, 13)
    args[args.index("--index") + 1] = index
    assert invoke(*args).exit_code == 1


def test_inclusion_wrong_leaf_fails(log):
    args = inclusion_flags(log, 3, 13)
    args[args.index("--leaf-hash") + 1] = LEAVES[2].hex()
    assert invoke(*args).exit_code == 1


def test_inclusion_checkpoint_signed_by_another_key_fails(log):
    args = inclusion_flags(log, 3, 13)
    impostor = SignerKey.generate(ORIGIN)
    args[args.index("--checkpoint") + 1] = log.checkpoint(13, signer=impostor)
    result = invoke(*args, "--json")
    assert result.exit_code == 1
    assert json_of(result)["error"] == "signature"
    assert "checkpoint" in json_of(result)["detail"]


MALFORMED_INCLUSION_ARGS = {
    "bad-hex": (lambda a: [*a, "--hash", "xyz"], "--hash #"),
    "proof-and-hash": (lambda a: [*a, "--proof", a[a.index("--key") + 1]], "not both"),
    "receipt-and-checkpoint": (lambda a: [*a, "--receipt", a[a.index("--key") + 1]], "--receipt carries"),
    "entry-and-leaf-hash": (lambda a: [*a, "--entry", a[a.index("--key") + 1]], "not both"),
    "unknown-flag": (lambda a: [x if x != "--index" else "--no-such-flag" for x in a], "No such option"),
    "no-index": (lambda a: [*a[: a.index("--index")], *a[a.index("--index") + 2 :]], "--index"),
    "negative-index": (
        lambda a: [*a[: a.index("--index") + 1], -1, *a[a.index("--index") + 2 :]],
        "0 or more",
    ),
    "uppercase-hex": (
        lambda a: [x.upper() if isinstance(x, str) and len(x) == 64 else x for x in a],
        "lowercase",
    ),
}


@pytest.mark.parametrize(
    ("change", "needle"), MALFORMED_INCLUSION_ARGS.values(), ids=MALFORMED_INCLUSION_ARGS
)
def test_inclusion_malformed_input_is_exit_2(log, change, needle):
    result = invoke(*change(inclusion_flags(log, 3, 13)))
    assert result.exit_code == 2
    assert needle in result.stderr


@pytest.mark.parametrize("content", ["{not json", '{"hashes": "abc"}', '{"index": 1}', "zz\n"])
def test_inclusion_malformed_proof_file_is_exit_2(log, content):
    result = invoke(
        "verify-proof", "inclusion", "--key", log.pub, "--checkpoint", log.checkpoint(13),
        "--index", 3, "--leaf-hash", LEAVES[3].hex(), "--proof", log.write("bad.proof", content), "--json",
    )  # fmt: skip
    assert result.exit_code == 2
    assert json_of(result)["ok"] is False


def test_inclusion_malformed_receipt_is_exit_2(log):
    receipt = log.write("receipt.json", json.dumps({"index": 1, "leaf_hash": "00"}))
    assert invoke("verify-proof", "inclusion", "--key", log.pub, "--receipt", receipt).exit_code == 2


def test_inclusion_entry_over_the_size_limit_is_exit_2(log):
    args = inclusion_flags(log, 3, 13)
    args[args.index("--leaf-hash")] = "--entry"
    args[args.index("--entry") + 1] = log.write("huge", b"x" * 65536)
    assert invoke(*args).exit_code == 2


# --- verify-proof consistency ----------------------------------------------------------------


def consistency_args(log: Log, size1: int, size2: int) -> list[object]:
    hashes = [arg for h in consistency_proof(size1, size2) for arg in ("--hash", h)]
    return [
        *("verify-proof", "consistency", "--key", log.pub),
        *("--old", log.checkpoint(size1), "--new", log.checkpoint(size2), *hashes),
    ]


@pytest.mark.parametrize(("size1", "size2"), [(1, 1), (1, 2), (3, 7), (4, 8), (6, 13), (7, 8), (13, 13)])
def test_consistency_ok(log, size1, size2):
    result = invoke(*consistency_args(log, size1, size2), "--json")
    assert result.exit_code == 0, result.output
    report = json_of(result)
    assert report["ok"] is True
    assert report["old"]["tree_size"] == size1
    assert report["new"]["tree_size"] == size2


def test_consistency_from_api_json_proof_file(log):
    proof = log.write("c.json", json.dumps({"first": 5, "second": 12, "hashes": consistency_proof(5, 12)}))
    old, new = log.checkpoint(5), log.checkpoint(12)
    base = ("verify-proof", "consistency", "--key", log.pub, "--old", old, "--new", new)
    assert invoke(*base, "--proof", proof).exit_code == 0
    other = log.write("c2.json", json.dumps({"first": 4, "second": 12, "hashes": consistency_proof(5, 12)}))
    assert invoke(*base, "--proof", other).exit_code == 1


def test_consistency_tampered_proof_fails(log):
    args = consistency_args(log, 6, 13)
    position = len(args) - 1
    args[position] = flip(str(args[position]))
    result = invoke(*args, "--json")
    assert result.exit_code == 1
    assert json_of(result)["error"] == "root_mismatch"


def test_consistency_swapped_checkpoints_fail(log):
    hashes = [arg for h in consistency_proof(3, 7) for arg in ("--hash", h)]
    result = invoke(
        "verify-proof", "consistency", "--key", log.pub,
        "--old", log.checkpoint(7), "--new", log.checkpoint(3), *hashes,
    )  # fmt: skip
    assert result.exit_code == 1


def test_consistency_across_two_logs_fails(log):
    hashes = [arg for h in consistency_proof(3, 7) for arg in ("--hash", h)]
    other_log = log.checkpoint(7, origin="ledger.example/other")
    result = invoke(
        "verify-proof", "consistency", "--key", log.pub,
        "--old", log.checkpoint(3), "--new", other_log, *hashes, "--json",
    )  # fmt: skip
    assert result.exit_code == 1
    report = json_of(result)
    assert report["expected"] == ORIGIN
    assert report["detail"].startswith("new checkpoint")


def test_consistency_new_checkpoint_by_another_key_fails(log):
    args = consistency_args(log, 3, 7)
    args[args.index("--new") + 1] = log.checkpoint(7, signer=SignerKey.generate(ORIGIN))
    assert invoke(*args).exit_code == 1


def test_consistency_missing_new_checkpoint_is_exit_2(log):
    args = consistency_args(log, 3, 7)
    args[args.index("--new") + 1] = log.tmp / "absent"
    assert invoke(*args).exit_code == 2


# --- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "code", "kind"),
    [
        (VerificationError("x"), 1, "verification"),
        (RootMismatchError("x"), 1, "root_mismatch"),
        (SignatureError("x"), 1, "signature"),
        (InputError("x"), 2, "input"),
        (EncodingError("x"), 2, "encoding"),
        (KeyFormatError("x"), 2, "key_format"),
        (TooLargeError("x"), 2, "too_large"),
        (NotFoundError("x"), 2, "not_found"),
        (LedgerError("x"), 2, "error"),
        (FileNotFoundError(2, "No such file", "f"), 2, "file"),
        (RuntimeError("bug"), 2, "internal"),
    ],
)
def test_error_mapping(error, code, kind):
    assert exit_code_for(error) == code
    assert error_kind(error) == kind


def test_unexpected_exception_is_reported_without_traceback(log, monkeypatch):
    def broken(*_args, **_kwargs):
        message = "boom"
        raise RuntimeError(message)

    monkeypatch.setattr(cli.offline, "open_note", broken)
    result = invoke("verify-note", log.checkpoint(2), "--key", log.pub)
    assert result.exit_code == 2
    assert "internal error" in result.stderr
    assert "Traceback" not in result.output


def test_end_to_end_console_script(tmp_path):
    evledger = Path(sys.executable).parent / "evledger"
    if not evledger.exists():
        pytest.skip("the evledger console script is not installed next to this Python")

    def run(*args: object) -> subprocess.CompletedProcess[str]:
        command = [str(evledger), *(str(a) for a in args)]
        return subprocess.run(command, capture_output=True, text=True, check=False, timeout=60)  # noqa: S603

    assert run("keygen", "ledger.example/e2e", "--out", tmp_path / "e2e").returncode == 0
    signer = parse_signer_key((tmp_path / "e2e.key").read_text())
    note = tmp_path / "checkpoint"
    note.write_text(sign_checkpoint(Checkpoint(signer.name, 3, root_from_leaf_hashes(LEAVES[:3])), signer))
    verified = run("verify-note", note, "--key", tmp_path / "e2e.pub", "--json")
    assert verified.returncode == 0, verified.stderr
    assert json.loads(verified.stdout)["checkpoint"]["tree_size"] == 3
    note.write_text(note.read_text().replace("\n3\n", "\n4\n"))
    assert run("verify-note", note, "--key", tmp_path / "e2e.pub").returncode == 1


def test_each_installation_gets_its_own_default_origin(tmp_path):
    """Two ledgers started without --origin must not share a log origin (a witness keys its state by it)."""
    from cli.server import DEFAULT_ORIGIN_PREFIX, ledger_key  # noqa: PLC0415

    first, _ = ledger_key(None, tmp_path / "a", None)
    second, _ = ledger_key(None, tmp_path / "b", None)
    again, _ = ledger_key(None, tmp_path / "a", None)
    assert first.name.startswith(DEFAULT_ORIGIN_PREFIX)
    assert first.name != second.name
    assert again.name == first.name  # the key, and with it the origin, is made once
