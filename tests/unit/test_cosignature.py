"""C2SP tlog-cosignature `cosignature/v1` (ledger/core/cosignature.py).

Vectors come from two sources written by others:

* the spec, c2sp.org/tlog-cosignature (C2SP/C2SP tlog-cosignature.md, fetched at commit
  5ba5ee830903e91240fc6f9f3a7a9293d49e69c9): its example cosigned checkpoint and the
  example signed message for `time 1679315147`; and c2sp.org/signed-note's example vkey;
* the Go implementation github.com/transparency-dev/formats, note/note_cosigv1_test.go
  (TestCoSigV1NewVerifier, TestCosignatureTimestamp): a native type-0x04 vkey with its key ID,
  a type-0x01 vkey, and a cosignature with its timestamp.

Neither publishes a cosigner key pair with a signature over a known checkpoint, so Ed25519 itself
is cross-checked against the independent `cryptography` package on a message built here from
the spec's byte layout, without ledger.core.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import subprocess
import time
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ledger.core.checkpoint import Checkpoint, sign_checkpoint
from ledger.core.cosignature import (
    add_cosignatures,
    cosign,
    cosignatures_of,
    cosigned_message,
    open_cosignature,
    sign_cosignature,
    verify_cosignature,
)
from ledger.core.keys import (
    ALG_COSIGNATURE_V1,
    SignerKey,
    VerifierKey,
    compute_key_id,
    parse_signer_key,
    parse_verifier_key,
)
from ledger.core.note import open_note, parse_note, sign_note
from ledger.errors import EncodingError, KeyFormatError, SignatureError

# ---- vectors

# c2sp.org/tlog-cosignature, introduction: "an example of a checkpoint that contains a cosignature".
SPEC_BODY = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
SPEC_NOTE = (
    SPEC_BODY + "\n"
    "\u2014 example.com/behind-the-sofa "
    "Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
    "\u2014 witness.example.com/w1 "
    "jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==\n"
)
# c2sp.org/tlog-cosignature §Ed25519 signed message: the example message, byte for byte.
SPEC_MESSAGE = (
    b"cosignature/v1\n"
    b"time 1679315147\n"
    b"example.com/behind-the-sofa\n"
    b"20852163\n"
    b"CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
)
SPEC_TIMESTAMP = 1679315147
# c2sp.org/signed-note §Verifier keys, Example: an ordinary (type 0x01) Ed25519 vkey.
SPEC_NOTE_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
# transparency-dev/formats note/note_cosigv1_test.go, TestCoSigV1NewVerifier.
GO_COSIGNER_VKEY = "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2"
GO_NOTE_VKEY = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6"
# transparency-dev/formats note/note_cosigv1_test.go, TestCosignatureTimestamp ("works").
GO_COSIGNATURE = (
    "ZGhGuQAAAABm/qTPeyKXD+R2rzyQsxPiP8mXum7qq/iF0u4vanlqJyocWODBt97w9uL+8qT7S5gxEHWWOworDcFiEBYJXORmnFBOBA=="
)
GO_TIMESTAMP = 1727964367

ORIGIN = "ledger.example/prod"
T0 = 1_750_000_000


def _seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _spec_key_id(name: str, public_key: bytes, alg: int) -> int:
    """SHA-256(name || 0x0A || alg || pub32)[:4], computed here without ledger.core."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\n" + bytes([alg]) + public_key).digest()[:4])


LOG = SignerKey.from_seed(ORIGIN, _seed("log"))
W1 = SignerKey.from_seed("witness.example/w1", _seed("w1"), ALG_COSIGNATURE_V1)
W2 = SignerKey.from_seed("witness.example/w2", _seed("w2"), ALG_COSIGNATURE_V1)
CHECKPOINT = Checkpoint(ORIGIN, 7, _seed("root7"))
BODY = CHECKPOINT.text()
NOTE = sign_checkpoint(CHECKPOINT, LOG)


def _line_raw(line: str) -> tuple[str, bytes]:
    name, encoded = line.removeprefix("\u2014 ").removesuffix("\n").split(" ")
    return name, base64.b64decode(encoded)


def _line(name: str, raw: bytes) -> str:
    return f"\u2014 {name} {base64.b64encode(raw).decode()}\n"


def _flip(raw: bytes, index: int) -> bytes:
    return raw[:index] + bytes([raw[index] ^ 0x01]) + raw[index + 1 :]


# ---- spec and Go vectors


def test_spec_signed_message_layout() -> None:
    assert cosigned_message(SPEC_BODY, SPEC_TIMESTAMP) == SPEC_MESSAGE


def test_spec_example_cosignature_line_is_keyid_timestamp_signature() -> None:
    witness = parse_note(SPEC_NOTE).signatures[1]
    assert witness.name == "witness.example.com/w1"
    assert len(witness.signature) == 8 + 64
    assert struct.unpack(">Q", witness.signature[:8]) == (SPEC_TIMESTAMP,)  # the time of SPEC_MESSAGE


def test_go_cosignature_vector_timestamp_and_key_id() -> None:
    raw = base64.b64decode(GO_COSIGNATURE)
    assert len(raw) == 4 + 8 + 64
    assert struct.unpack(">IQ", raw[:12]) == (0x646846B9, GO_TIMESTAMP)


def test_go_native_cosigner_vkey_parses_with_type_04_key_id() -> None:
    key = parse_verifier_key(GO_COSIGNER_VKEY, ALG_COSIGNATURE_V1)
    assert key.keyid == "remora.n621.de+da77ade7"
    assert key.key_id == _spec_key_id(key.name, key.public_key, 0x04)
    assert key.format() == GO_COSIGNER_VKEY


@pytest.mark.parametrize("vkey", [SPEC_NOTE_VKEY, GO_NOTE_VKEY], ids=["signed-note-spec", "go-formats"])
def test_type_01_note_key_passed_off_as_cosigner_key_is_refused(vkey: str) -> None:
    parse_verifier_key(vkey)  # a valid ordinary note key...
    with pytest.raises(KeyFormatError, match="0x04"):
        parse_verifier_key(vkey, ALG_COSIGNATURE_V1)  # ...is not a cosigner key


def test_cosigner_key_passed_off_as_type_01_note_key_is_refused() -> None:
    with pytest.raises(KeyFormatError):
        parse_verifier_key(GO_COSIGNER_VKEY)


# ---- keys


def test_cosigner_key_id_uses_signature_type_04_not_01() -> None:
    public = W1.verifier().public_key
    assert (
        W1.key_id
        == compute_key_id(W1.name, public, ALG_COSIGNATURE_V1)
        == _spec_key_id(W1.name, public, 0x04)
    )
    assert W1.key_id != SignerKey.from_seed(W1.name, W1.seed).key_id  # same seed, type 0x01
    assert ALG_COSIGNATURE_V1 == 0x04


def test_key_strings_round_trip() -> None:
    verifier = W1.verifier()
    name, hex_id, material = verifier.format().split("+", 2)
    assert (name, hex_id) == ("witness.example/w1", f"{W1.key_id:08x}")
    assert base64.b64decode(material) == b"\x04" + verifier.public_key
    assert parse_verifier_key(verifier.format(), ALG_COSIGNATURE_V1) == verifier
    assert parse_signer_key(W1.format(), ALG_COSIGNATURE_V1) == W1
    assert W1.format().startswith("PRIVATE+KEY+witness.example/w1+")
    fresh = SignerKey.generate("witness.example/fresh", ALG_COSIGNATURE_V1)
    assert parse_signer_key(fresh.format(), ALG_COSIGNATURE_V1).verifier() == fresh.verifier()


@pytest.mark.parametrize(
    "text",
    [
        "witness.example/w1+00000000+" + W1.verifier().format().split("+", 2)[2],  # wrong key ID
        W1.verifier().format().replace("+", "x", 1),  # two parts
        "witness.example/w1+" + f"{W1.key_id:08X}+" + W1.verifier().format().split("+", 2)[2],  # upper hex
        f"witness.example/w1+{W1.key_id:08x}+BA==",  # no key material
    ],
)
def test_malformed_cosigner_vkeys_are_refused(text: str) -> None:
    with pytest.raises((KeyFormatError, EncodingError)):
        parse_verifier_key(text, ALG_COSIGNATURE_V1)


def test_type_01_signer_key_is_not_a_cosigner_signer_key() -> None:
    with pytest.raises(KeyFormatError):
        parse_signer_key(SignerKey.from_seed(W1.name, W1.seed).format(), ALG_COSIGNATURE_V1)


# ---- round trips and independent Ed25519


def test_cosign_and_verify_round_trip() -> None:
    line = cosign(BODY, W1, T0)
    assert line.startswith("\u2014 witness.example/w1 ")
    assert line.endswith("\n")
    assert verify_cosignature(BODY, line, W1.verifier()) == T0
    name, raw = _line_raw(line)
    assert name == W1.name
    assert struct.unpack(">IQ", raw[:12]) == (W1.key_id, T0)
    assert len(raw) == 4 + 8 + 64


def test_independent_ed25519_verifies_our_cosignature_and_we_verify_its() -> None:
    message = b"cosignature/v1\ntime %d\n" % T0 + BODY.encode()  # the spec's layout, built by hand
    _, raw = _line_raw(cosign(BODY, W1, T0))
    Ed25519PublicKey.from_public_bytes(W1.verifier().public_key).verify(raw[12:], message)
    with pytest.raises(InvalidSignature):
        Ed25519PublicKey.from_public_bytes(W1.verifier().public_key).verify(raw[12:], BODY.encode())

    theirs = Ed25519PrivateKey.from_private_bytes(W1.seed).sign(message)
    line = _line(W1.name, struct.pack(">IQ", W1.key_id, T0) + theirs)
    assert verify_cosignature(BODY, line, W1.verifier()) == T0


@pytest.mark.parametrize("timestamp", [0, 1, SPEC_TIMESTAMP, 2**63 - 1])
def test_timestamp_range_is_accepted(timestamp: int) -> None:
    assert verify_cosignature(BODY, cosign(BODY, W1, timestamp), W1.verifier()) == timestamp


@pytest.mark.parametrize("timestamp", [-1, 2**63])
def test_timestamp_outside_range_is_refused(timestamp: int) -> None:
    with pytest.raises(EncodingError):
        cosign(BODY, W1, timestamp)


def test_cosigned_note_round_trip() -> None:
    cosigned = add_cosignatures(NOTE, [cosign(BODY, W1, T0), cosign(BODY, W2, T0 + 5)])
    assert open_note(cosigned, [LOG.verifier()]).text == BODY  # the log's signature still verifies
    found = {c.verifier.keyid: c.timestamp for c in cosignatures_of(cosigned, [W1.verifier(), W2.verifier()])}
    assert found == {W1.keyid: T0, W2.keyid: T0 + 5}
    assert cosignatures_of(cosigned, [W1.verifier()])[0].verifier == W1.verifier()
    assert cosignatures_of(NOTE, [W1.verifier()]) == ()  # not cosigned: no error, an empty answer


def test_extension_lines_are_covered() -> None:
    body = Checkpoint(ORIGIN, 7, _seed("root7"), ("ext one",)).text()
    line = cosign(body, W1, T0)
    assert verify_cosignature(body, line, W1.verifier()) == T0
    with pytest.raises(SignatureError):
        verify_cosignature(body.replace("ext one", "ext two"), line, W1.verifier())
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, line, W1.verifier())  # the extension line dropped


def test_add_cosignatures_does_not_repeat_a_line_and_refuses_non_lines() -> None:
    line = cosign(BODY, W1, T0)
    once = add_cosignatures(NOTE, [line])
    assert add_cosignatures(once, [line, line]) == once
    with pytest.raises(EncodingError):
        add_cosignatures(NOTE, [line + "\n" + line])
    with pytest.raises(EncodingError):
        add_cosignatures(NOTE, ["not a signature line"])


def test_same_cosigner_twice_counts_once_with_its_latest_time() -> None:
    cosigned = add_cosignatures(NOTE, [cosign(BODY, W1, T0 + 9), cosign(BODY, W1, T0)])
    (only,) = cosignatures_of(cosigned, [W1.verifier()])
    assert only.timestamp == T0 + 9


def test_cosigning_a_non_checkpoint_is_refused() -> None:
    with pytest.raises(EncodingError):
        cosign("just some text\n", W1, T0)
    with pytest.raises(EncodingError):
        cosign(NOTE, W1, T0)  # a signed note, not its text


# ---- attacks


@pytest.mark.parametrize("index", [12, 40, 75], ids=["first", "middle", "last"])
def test_flipped_signature_byte_is_refused(index: int) -> None:
    _, raw = _line_raw(cosign(BODY, W1, T0))
    forged = _line(W1.name, _flip(raw, index))
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, forged, W1.verifier())
    note = add_cosignatures(NOTE, [forged, cosign(BODY, W2, T0)])
    with pytest.raises(SignatureError):  # on a note, a bad line by a known key rejects the note
        cosignatures_of(note, [W1.verifier(), W2.verifier()])


@pytest.mark.parametrize("index", [4, 11], ids=["high-byte", "low-byte"])
def test_flipped_timestamp_byte_is_refused(index: int) -> None:
    _, raw = _line_raw(cosign(BODY, W1, T0))
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, _line(W1.name, _flip(raw, index)), W1.verifier())


def test_backdated_timestamp_is_refused() -> None:
    _, raw = _line_raw(cosign(BODY, W1, T0))
    restamped = raw[:4] + struct.pack(">Q", T0 - 3600) + raw[12:]
    with pytest.raises(SignatureError):
        verify_cosignature(BODY, _line(W1.name, restamped), W1.verifier())


@pytest.mark.parametrize("index", [0, len(ORIGIN) + 1, len(BODY) - 2], ids=["origin", "size", "root"])
def test_flipped_checkpoint_body_byte_is_refused(index: int) -> None:
    line = cosign(BODY, W1, T0)
    tampered = BODY[:index] + chr(ord(BODY[index]) ^ 0x01) + BODY[index + 1 :]
    with pytest.raises((SignatureError, EncodingError)):
        verify_cosignature(tampered, line, W1.verifier())


def test_cosignature_replayed_onto_another_checkpoint_of_the_same_log_is_refused() -> None:
    line = cosign(BODY, W1, T0)
    other = Checkpoint(ORIGIN, 8, _seed("root8"))
    forged = add_cosignatures(sign_checkpoint(other, LOG), [line])  # the log signs a fork/extension...
    open_note(forged, [LOG.verifier()])  # ...its own signature is fine...
    with pytest.raises(SignatureError):  # ...but W1 never cosigned it
        cosignatures_of(forged, [W1.verifier()])
    with pytest.raises(SignatureError):
        verify_cosignature(other.text(), line, W1.verifier())


def test_ordinary_note_signature_passed_off_as_a_cosignature_is_not_counted() -> None:
    same_key = SignerKey.from_seed(W1.name, W1.seed)  # the witness's seed, as a type-0x01 key
    signed = sign_note(BODY, [LOG, same_key])
    assert cosignatures_of(signed, [W1.verifier()]) == ()  # its key ID is the 0x01 one: unknown here
    _, raw = _line_raw(signed.split("\n")[-2] + "\n")
    relabelled = _line(W1.name, struct.pack(">I", W1.key_id) + raw[4:])  # given the 0x04 key ID
    with pytest.raises(SignatureError):
        cosignatures_of(NOTE + relabelled, [W1.verifier()])
    with pytest.raises(EncodingError):
        verify_cosignature(BODY, relabelled, W1.verifier())  # 64 bytes where 72 are due


def test_cosignature_passed_off_as_an_ordinary_note_signature_is_not_counted() -> None:
    same_key = SignerKey.from_seed(W1.name, W1.seed).verifier()
    cosigned = add_cosignatures(NOTE, [cosign(BODY, W1, T0)])
    with pytest.raises(SignatureError, match="not signed by any trusted key"):
        open_note(cosigned, [same_key])  # the line's key ID is the 0x04 one: unknown to a 0x01 key
    _, raw = _line_raw(cosign(BODY, W1, T0))
    relabelled = _line(W1.name, struct.pack(">I", same_key.key_id) + raw[4:])
    with pytest.raises(SignatureError):
        open_note(NOTE + relabelled, [same_key])


def test_wrong_key_name_with_the_right_key_id_is_not_that_cosigner() -> None:
    _, raw = _line_raw(cosign(BODY, W1, T0))
    renamed = _line("witness.example/evil", raw)  # W1's key ID and signature, another name
    with pytest.raises(SignatureError, match="not by this cosigner"):
        verify_cosignature(BODY, renamed, W1.verifier())
    assert cosignatures_of(NOTE + renamed, [W1.verifier()]) == ()  # signed-note: an unknown key
    # A verifier configured under the wrong name has another key ID: W1's line is not its.
    misnamed = VerifierKey.from_public_key(
        "witness.example/evil", W1.verifier().public_key, ALG_COSIGNATURE_V1
    )
    assert misnamed.key_id != W1.key_id
    assert cosignatures_of(NOTE + cosign(BODY, W1, T0), [misnamed]) == ()


def test_truncated_cosignature_by_a_known_key_rejects_the_note() -> None:
    _, raw = _line_raw(cosign(BODY, W1, T0))
    with pytest.raises(SignatureError, match="malformed"):
        cosignatures_of(NOTE + _line(W1.name, raw[:-1]), [W1.verifier()])


# ---- cross-check with Go (github.com/transparency-dev/formats/note), when it is at hand

_GO_HELPER = Path(__file__).parent / "go_cosigcheck" / "main.go"


@pytest.fixture(scope="module")
def go_cosigcheck(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the Go helper in GOPATH mode, or skip saying what is missing.

    Needs `go`, golang.org/x/mod/sumdb/note (Debian golang-golang-x-mod-dev, /usr/share/gocode) and
    a GOPATH holding src/github.com/transparency-dev/formats/note named by EVLEDGER_GO_FORMATS_GOPATH:
    the project ships neither, and this machine's registries do not serve Go modules.
    """
    go = shutil.which("go")
    gopath = os.environ.get("EVLEDGER_GO_FORMATS_GOPATH", "")
    if go is None:
        pytest.skip("no Go toolchain: cosignature/v1 not cross-checked with transparency-dev/formats")
    if not gopath or not (Path(gopath) / "src/github.com/transparency-dev/formats/note").is_dir():
        pytest.skip(
            "EVLEDGER_GO_FORMATS_GOPATH does not hold transparency-dev/formats/note: not cross-checked"
        )
    binary = tmp_path_factory.mktemp("go") / "cosigcheck"
    env = {**os.environ, "GO111MODULE": "off", "GOPATH": f"{gopath}:/usr/share/gocode"}
    env.setdefault("GOCACHE", str(tmp_path_factory.mktemp("gocache")))
    subprocess.run([go, "build", "-o", str(binary), str(_GO_HELPER)], check=True, env=env)  # noqa: S603
    return binary


def test_go_cosigns_and_we_verify(go_cosigcheck: Path, tmp_path: Path) -> None:
    body_file = tmp_path / "body"
    body_file.write_text(BODY)
    skey = SignerKey.from_seed(W1.name, W1.seed).format()  # Go converts a 0x01 signer key to a cosigner
    out = subprocess.run(  # noqa: S603
        [str(go_cosigcheck), "sign", skey, str(body_file)], capture_output=True, text=True, check=True
    ).stdout
    (found,) = cosignatures_of(out, [W1.verifier()])
    assert found.verifier == W1.verifier()
    assert abs(found.timestamp - int(time.time())) < 600


def test_we_cosign_and_go_verifies(go_cosigcheck: Path, tmp_path: Path) -> None:
    note_file = tmp_path / "note"
    note_file.write_text(add_cosignatures(NOTE, [cosign(BODY, W1, T0)]))
    ok = subprocess.run(  # noqa: S603
        [str(go_cosigcheck), "verify", W1.verifier().format(), str(note_file)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert ok.stdout.split() == ["OK", str(T0), W1.name]
    note_file.write_text(add_cosignatures(NOTE.replace("\n7\n", "\n8\n"), [cosign(BODY, W1, T0)]))
    refused = subprocess.run(  # noqa: S603
        [str(go_cosigcheck), "verify", W1.verifier().format(), str(note_file)],
        check=False,
        capture_output=True,
        text=True,
    )
    assert refused.returncode == 1
    assert refused.stdout.startswith("REFUSED")


def test_attack_an_ordinary_note_key_cannot_cosign_or_be_trusted_as_a_cosigner() -> None:
    note_key = SignerKey.from_seed(W1.name, W1.seed)  # the same seed, type 0x01
    with pytest.raises(KeyFormatError, match="not a cosignature/v1 key"):
        sign_cosignature(BODY, note_key, T0)
    with pytest.raises(KeyFormatError, match="not a cosignature/v1 key"):
        open_cosignature(BODY, sign_cosignature(BODY, W1, T0), note_key.verifier())
    assert open_cosignature(BODY, sign_cosignature(BODY, W1, T0), W1.verifier()) == T0
