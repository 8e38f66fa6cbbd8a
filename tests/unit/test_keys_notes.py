"""C2SP key strings, signed notes and checkpoints (docs/formats.md#keys-3.2).

Interoperability is checked two ways: against the Go reference
(golang.org/x/mod/sumdb/note note_test.go: the PeterNeumann and EnochRoot
keys and notes, reproduced byte for byte since Ed25519 is deterministic), and
against the independent `cryptography` package, signing on one side and
verifying on the other.
"""

from __future__ import annotations

import base64
import hashlib

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.core.checkpoint import Checkpoint, open_checkpoint, parse_checkpoint_text, sign_checkpoint
from ledger.core.keys import (
    SignerKey,
    VerifierKey,
    check_key_name,
    compute_key_id,
    parse_signer_key,
    parse_verifier_key,
)
from ledger.core.note import open_note, parse_note, sign_note
from ledger.errors import (
    EncodingError,
    InputError,
    KeyFormatError,
    LedgerError,
    SignatureError,
    VerificationError,
)

# golang.org/x/mod/sumdb/note note_test.go
GO_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
)
GO_PETER_SIG = (
    "\u2014 PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
GO_ENOCH_SIG = (
    "\u2014 EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)

ORIGIN = "ledger.example/prod"
ED25519 = b"\x01"  # the algorithm byte before a raw key


def _seed(label: str) -> bytes:
    return hashlib.sha256(label.encode()).digest()


def _spec_key_id(name: str, public_key: bytes, alg: int = 0x01) -> int:
    """docs/formats.md#keys, computed here without ledger.core: SHA-256(name || 0x0A || alg || pub32)[:4]."""
    return int.from_bytes(hashlib.sha256(name.encode() + b"\x0a" + bytes([alg]) + public_key).digest()[:4])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _non_canonical(encoded: str) -> str:
    """The same bytes spelled with a non-zero unused trailing bit (needs padding in `encoded`)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    data, pad = encoded.rstrip("="), encoded[len(encoded.rstrip("=")) :]
    assert pad, "a value without padding has no unused bits"
    spelled = data[:-1] + alphabet[alphabet.index(data[-1]) + 1] + pad
    assert base64.b64decode(spelled) == base64.b64decode(encoded)  # lenient decoders see one value
    return spelled


LEDGER = SignerKey.from_seed(ORIGIN, _seed("ledger"))
WITNESS = SignerKey.from_seed("witness.example/w1", _seed("witness"))
# Same name as LEDGER, other key: a different key ID.
IMPOSTOR = SignerKey.from_seed(ORIGIN, _seed("impostor"))

names = st.text(
    alphabet=st.characters(codec="utf-8", categories=("L", "N", "P", "S"), exclude_characters="+"),
    min_size=1,
    max_size=40,
)


# ---- keys


def test_go_reference_keys_parse_and_agree() -> None:
    verifier = parse_verifier_key(GO_VKEY)
    signer = parse_signer_key(GO_SKEY)
    assert (verifier.name, verifier.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert (signer.name, signer.key_id) == ("PeterNeumann", 0xC74F20A3)
    assert signer.verifier() == verifier
    assert verifier.format() == GO_VKEY
    assert signer.format() == GO_SKEY
    assert _spec_key_id("PeterNeumann", verifier.public_key) == 0xC74F20A3
    assert parse_verifier_key(GO_ENOCH_VKEY).key_id == 0xAF0CFE78


def test_key_id_is_the_spec_formula() -> None:
    for signer in (LEDGER, WITNESS, IMPOSTOR):
        public = signer.verifier().public_key
        assert signer.key_id == _spec_key_id(signer.name, public)
        assert compute_key_id(signer.name, public) == _spec_key_id(signer.name, public)
        assert signer.keyid == f"{signer.name}+{_spec_key_id(signer.name, public):08x}"
    assert LEDGER.key_id != IMPOSTOR.key_id


@settings(max_examples=60, deadline=None)
@given(name=names, seed=st.binary(min_size=32, max_size=32))
def test_key_strings_round_trip(name, seed) -> None:
    signer = SignerKey.from_seed(name, seed)
    verifier = signer.verifier()
    public = Ed25519PrivateKey.from_private_bytes(seed).public_key().public_bytes_raw()
    assert verifier.public_key == public
    assert verifier.key_id == _spec_key_id(name, public)

    text = verifier.format()
    assert text == f"{name}+{_spec_key_id(name, public):08x}+{_b64(ED25519 + public)}"
    assert parse_verifier_key(text) == verifier
    assert parse_verifier_key(text + "\n").format() == text  # a .pub file's line

    secret = signer.format()
    assert secret == f"PRIVATE+KEY+{name}+{_spec_key_id(name, public):08x}+{_b64(ED25519 + seed)}"
    parsed = parse_signer_key(secret)
    assert (parsed.name, parsed.key_id, parsed.seed) == (name, signer.key_id, seed)


def test_base64_part_with_plus_signs_parses() -> None:
    # The Go signer key's seed encodes with a '+'; so does this verifier key.
    assert "+" in GO_SKEY.split("+", 4)[4]
    assert parse_signer_key(GO_SKEY).seed.hex().startswith("810a")
    verifier = SignerKey.from_seed("n", bytes([8]) * 32).verifier()
    material = verifier.format().split("+", 2)[2]
    assert "+" in material
    assert parse_verifier_key(verifier.format()) == verifier


@pytest.mark.parametrize("name", ["a b", "a+b", "", "a\tb", "a\nb", " lead", "trail ", "a\x00b", "n" * 257])
def test_bad_key_names_are_refused(name) -> None:
    with pytest.raises(KeyFormatError):
        check_key_name(name)
    with pytest.raises(KeyFormatError):
        SignerKey.from_seed(name, _seed("x"))
    with pytest.raises(KeyFormatError):
        VerifierKey.from_public_key(name, LEDGER.verifier().public_key)


def test_key_name_of_256_characters_is_the_longest_accepted() -> None:
    assert check_key_name("𝄞" * 256) == "𝄞" * 256


@pytest.mark.parametrize("name", ["a b", "", "tab\there"])
def test_key_string_with_bad_name_is_refused(name) -> None:
    public = LEDGER.verifier().public_key
    text = f"{name}+{_spec_key_id(name, public):08x}+{_b64(ED25519 + public)}"
    with pytest.raises(KeyFormatError):
        parse_verifier_key(text)
    with pytest.raises(KeyFormatError):
        parse_signer_key(f"PRIVATE+KEY+{name}+{_spec_key_id(name, public):08x}+{_b64(ED25519 + _seed('x'))}")


def test_wrong_key_id_is_refused() -> None:
    name, key_id, material = GO_VKEY.split("+", 2)
    for bad_id in (f"{int(key_id, 16) ^ 1:08x}", key_id.upper(), key_id[:7], key_id + "0", "0x" + key_id[2:]):
        with pytest.raises(KeyFormatError):
            parse_verifier_key(f"{name}+{bad_id}+{material}")
    _, _, sname, sid, smaterial = GO_SKEY.split("+", 4)
    with pytest.raises(KeyFormatError):
        parse_signer_key(f"PRIVATE+KEY+{sname}+{int(sid, 16) ^ 1:08x}+{smaterial}")


def test_wrong_algorithm_byte_is_refused() -> None:
    public = LEDGER.verifier().public_key
    for alg in (0x00, 0x02, 0x04, 0x65):
        # The key ID is made consistent with the algorithm byte: only the algorithm is wrong.
        text = f"{ORIGIN}+{_spec_key_id(ORIGIN, public, alg):08x}+{_b64(bytes([alg]) + public)}"
        with pytest.raises(KeyFormatError):
            parse_verifier_key(text)
    # Go's "unknown algorithm, with adjusted key hash" case.
    with pytest.raises(KeyFormatError):
        parse_verifier_key("PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")


def test_key_of_the_wrong_length_is_refused() -> None:
    # Go's "wrong length key, with adjusted key hash" case (its base64 is also non-canonical).
    with pytest.raises(InputError):
        parse_verifier_key("PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==")
    public = LEDGER.verifier().public_key
    for raw in (ED25519 + public[:31], ED25519 + public + b"\x00"):
        with pytest.raises(KeyFormatError):
            parse_verifier_key(f"{ORIGIN}+{_spec_key_id(ORIGIN, raw[1:]):08x}+{_b64(raw)}")


@pytest.mark.parametrize(
    "material",
    [
        "!!!!",
        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",  # one character short
        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq_LDE4izWy10TW",  # URL-safe alphabet
        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW=",
        "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW====",
        "ARpc2QcUPDhMQegwxbzh KqiBfsVkmqq/LDE4izWy10TW",
        "",
    ],
)
def test_bad_base64_key_material_is_refused(material) -> None:
    with pytest.raises(InputError):
        parse_verifier_key(f"PeterNeumann+c74f20a3+{material}")


def test_every_substring_and_every_incremented_byte_of_a_key_is_refused() -> None:
    # Go's TestNewVerifier / TestNewSigner manglings.
    for key, parse in ((GO_VKEY, parse_verifier_key), (GO_SKEY, parse_signer_key)):
        for i in range(len(key) + 1):
            for j in range(i + 1, len(key) + 1):
                if (i, j) != (0, len(key)):
                    with pytest.raises(InputError):
                        parse(key[i:j])
        for i in range(len(key)):
            mangled = key[:i] + chr(ord(key[i]) + 1) + key[i + 1 :]
            with pytest.raises(InputError):
                parse(mangled)


def test_signer_key_without_prefix_is_refused() -> None:
    with pytest.raises(KeyFormatError):
        parse_signer_key(GO_SKEY.removeprefix("PRIVATE+KEY+"))
    with pytest.raises(KeyFormatError):
        parse_signer_key(GO_VKEY)
    with pytest.raises(KeyFormatError):
        parse_verifier_key(GO_SKEY)


def test_raw_key_lengths_are_checked() -> None:
    with pytest.raises(KeyFormatError):
        SignerKey.from_seed("n", bytes(31))
    with pytest.raises(KeyFormatError):
        VerifierKey.from_public_key("n", bytes(33))


def test_verifier_rejects_flipped_signature_and_message() -> None:
    verifier = LEDGER.verifier()
    signature = LEDGER.sign(b"hi")
    verifier.verify(b"hi", signature)
    for bad_message, bad_signature in (
        (b"hi", bytes([signature[0] ^ 1]) + signature[1:]),
        (b"hj", signature),
        (b"hi", signature[:-1]),
        (b"hi", b""),
    ):
        with pytest.raises(SignatureError):
            verifier.verify(bad_message, bad_signature)


# ---- signed notes: the Go reference


def test_sign_note_reproduces_the_go_reference_byte_for_byte() -> None:
    assert sign_note(GO_TEXT, [parse_signer_key(GO_SKEY)]) == GO_TEXT + "\n" + GO_PETER_SIG


def test_go_note_with_two_signatures_verifies_the_known_one() -> None:
    peter, enoch = parse_verifier_key(GO_VKEY), parse_verifier_key(GO_ENOCH_VKEY)
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG
    opened = open_note(note, [peter])
    assert opened.text == GO_TEXT
    assert opened.verified == (peter,)
    assert [(s.name, s.key_id) for s in opened.signatures] == [
        ("PeterNeumann", 0xC74F20A3),
        ("EnochRoot", 0xAF0CFE78),
    ]
    assert open_note(note, [peter, enoch]).verified == (peter, enoch)
    assert open_note(note.encode(), [enoch]).verified == (enoch,)


def test_go_note_without_a_known_key_is_rejected() -> None:
    with pytest.raises(SignatureError):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG + GO_ENOCH_SIG, [])
    with pytest.raises(SignatureError):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG, [LEDGER.verifier()])


def test_go_note_with_a_corrupted_known_signature_is_rejected() -> None:
    peter = parse_verifier_key(GO_VKEY)
    raw = (GO_TEXT + "\n" + GO_PETER_SIG).encode()
    cut = len(GO_TEXT.encode()) + 1 + 60
    with pytest.raises(SignatureError):
        open_note(raw[:cut] + b"ABCD" + raw[cut:], [peter])


def test_go_note_with_repeated_and_unknown_corrupted_signatures_verifies() -> None:
    peter = parse_verifier_key(GO_VKEY)
    enoch_bad = GO_ENOCH_SIG[:58] + "ABCD" + GO_ENOCH_SIG[58:]
    note = GO_TEXT + "\n" + GO_PETER_SIG + GO_PETER_SIG + GO_ENOCH_SIG + GO_ENOCH_SIG + enoch_bad
    opened = open_note(note, [peter])
    assert opened.verified == (peter,)
    assert len(opened.signatures) == 5


def test_note_with_over_100_signatures_is_rejected() -> None:
    peter = parse_verifier_key(GO_VKEY)
    assert open_note(GO_TEXT + "\n" + GO_PETER_SIG * 100, [peter]).verified == (peter,)
    with pytest.raises(EncodingError):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG * 101, [peter])
    with pytest.raises(EncodingError):
        open_note(GO_TEXT + "\n" + GO_PETER_SIG * 101, [])


@pytest.mark.parametrize(
    "note",
    [
        GO_TEXT.encode(),
        (GO_TEXT + "\n").encode(),
        (GO_TEXT + "\n" + GO_PETER_SIG[:-1]).encode(),
        ("\x01" + GO_TEXT + "\n" + GO_PETER_SIG).encode(),
        b"\xff" + (GO_TEXT + "\n" + GO_PETER_SIG).encode(),
        (GO_TEXT + "\n" + "\u2014 Bad Name " + GO_PETER_SIG.split(" ")[2]).encode(),
        (GO_TEXT + "\n" + GO_PETER_SIG + "Unexpected line.\n").encode(),
    ],
    ids=[
        "no-signatures",
        "blank-line-only",
        "no-final-newline",
        "control-char",
        "invalid-utf8",
        "bad-name",
        "extra-line",
    ],
)
def test_go_malformed_notes_are_rejected(note) -> None:
    with pytest.raises(InputError):
        open_note(note, [parse_verifier_key(GO_VKEY)])


# ---- signed notes: our rules

TEXT = "some note text\nsecond line\n"


def test_note_signed_by_us_verifies_with_cryptography() -> None:
    note = sign_note(TEXT, [LEDGER])
    text, _, block = note.rpartition("\n\n")
    assert text + "\n" == TEXT
    assert block.startswith(f"\u2014 {ORIGIN} ")
    assert block.endswith("\n")
    raw = base64.b64decode(block.rstrip("\n").split(" ")[2], validate=True)
    assert raw[:4] == _spec_key_id(ORIGIN, LEDGER.verifier().public_key).to_bytes(4, "big")
    public = Ed25519PrivateKey.from_private_bytes(LEDGER.seed).public_key()
    public.verify(raw[4:], TEXT.encode())  # raises InvalidSignature on failure
    with pytest.raises(InvalidSignature):
        public.verify(raw[4:], TEXT.encode() + b"x")


def test_note_signed_with_cryptography_verifies_with_open_note() -> None:
    private = Ed25519PrivateKey.from_private_bytes(_seed("independent"))
    public = private.public_key().public_bytes_raw()
    name = "independent.example/log"
    key_id = _spec_key_id(name, public).to_bytes(4, "big")
    note = TEXT + "\n" + f"\u2014 {name} {_b64(key_id + private.sign(TEXT.encode()))}\n"
    verifier = parse_verifier_key(f"{name}+{key_id.hex()}+{_b64(ED25519 + public)}")
    opened = open_note(note, [verifier])
    assert opened.text == TEXT
    assert opened.verified == (verifier,)


def test_note_with_several_signatures_verifies_each_known_key() -> None:
    note = sign_note(TEXT, [LEDGER, WITNESS])
    assert note.count("\n\u2014 ") == 2
    both = open_note(note, [LEDGER.verifier(), WITNESS.verifier()])
    assert set(both.verified) == {LEDGER.verifier(), WITNESS.verifier()}
    assert open_note(note, [WITNESS.verifier()]).verified == (WITNESS.verifier(),)


def test_signatures_by_unknown_keys_are_ignored() -> None:
    # WITNESS: another name. IMPOSTOR: the same name, another key, so another ID.
    note = sign_note(TEXT, [WITNESS, IMPOSTOR, LEDGER])
    assert open_note(note, [LEDGER.verifier()]).verified == (LEDGER.verifier(),)
    # An unknown key's line may even carry garbage signature bytes.
    garbage = f"\u2014 {ORIGIN} {_b64((LEDGER.key_id ^ 1).to_bytes(4, 'big') + b'junk')}\n"
    assert open_note(note + garbage, [LEDGER.verifier()]).verified == (LEDGER.verifier(),)


def test_failing_signature_by_a_known_key_rejects_the_note() -> None:
    good = sign_note(TEXT, [LEDGER])
    forged = f"\u2014 {WITNESS.name} {_b64(WITNESS.key_id.to_bytes(4, 'big') + bytes(64))}\n"
    with pytest.raises(SignatureError):
        open_note(good + forged, [LEDGER.verifier(), WITNESS.verifier()])
    # The same line by a key nobody asked about is ignored.
    assert open_note(good + forged, [LEDGER.verifier()]).verified == (LEDGER.verifier(),)


def test_note_signed_by_another_key_with_the_same_name_is_rejected() -> None:
    with pytest.raises(SignatureError):
        open_note(sign_note(TEXT, [IMPOSTOR]), [LEDGER.verifier()])


def test_note_without_any_known_signature_is_rejected() -> None:
    with pytest.raises(SignatureError):
        open_note(sign_note(TEXT, [WITNESS]), [LEDGER.verifier()])
    with pytest.raises(SignatureError):
        open_note(sign_note(TEXT, [LEDGER]), [])


@pytest.mark.parametrize(
    "line",
    [
        "- {name} {sig}",  # hyphen, not em dash
        "\u2014{name} {sig}",
        "\u2014  {name} {sig}",
        "\u2014 {name}  {sig}",
        "\u2014 {name} {sig} ",
        "\u2014 {name}{sig}",
        "\u2014 {name}",
        "\u2014 {name} ",
        "\u2014 {name} {sig}=",
        "\u2014 {name} !{sig}",
        "\u2014 a+b {sig}",
        "\u2014 {name} AAA=",  # shorter than a key ID
        "{sig}",
        "",
    ],
)
def test_malformed_signature_line_is_rejected(line) -> None:
    note = sign_note(TEXT, [LEDGER])
    sig = note.rstrip("\n").rsplit(" ", 1)[1]
    bad = TEXT + "\n" + line.format(name=ORIGIN, sig=sig) + "\n"
    with pytest.raises(InputError):
        open_note(bad, [LEDGER.verifier()])
    with pytest.raises(InputError):
        open_note(note + line.format(name=ORIGIN, sig=sig) + "\n", [LEDGER.verifier()])


def test_note_without_blank_line_before_signatures_is_rejected() -> None:
    note = sign_note(TEXT, [LEDGER])
    with pytest.raises(EncodingError):
        open_note(note.replace("\n\n", "\n"), [LEDGER.verifier()])
    with pytest.raises(EncodingError):
        open_note(note.rstrip("\n"), [LEDGER.verifier()])


@pytest.mark.parametrize("char", ["\x00", "\x01", "\t", "\r", "\x0b", "\x1b", "\x1f"])
def test_control_characters_are_rejected(char) -> None:
    with pytest.raises(EncodingError):
        sign_note(f"a{char}b\n", [LEDGER])
    note = sign_note(TEXT, [LEDGER])
    with pytest.raises(EncodingError):
        open_note(char + note, [LEDGER.verifier()])
    with pytest.raises(EncodingError):
        open_note(note.replace("\n\u2014", char + "\n\u2014"), [LEDGER.verifier()])
    with pytest.raises(EncodingError):
        open_note(note[:-1] + char + "\n", [LEDGER.verifier()])


def test_sign_note_refuses_text_without_final_newline_or_signers() -> None:
    with pytest.raises(EncodingError):
        sign_note("no newline", [LEDGER])
    with pytest.raises(EncodingError):
        sign_note("", [LEDGER])
    with pytest.raises(LedgerError, match=r"^a note needs at least one signer$"):
        sign_note(TEXT, [])


def test_flipped_byte_in_note_text_is_rejected() -> None:
    note = sign_note(TEXT, [LEDGER]).encode()
    for position in range(len(TEXT.encode())):
        for mask in (0x01, 0x20, 0x80):
            bad = bytearray(note)
            bad[position] ^= mask
            # A flip in the text breaks the signature, or the text's own format first.
            with pytest.raises((SignatureError, EncodingError)):
                open_note(bytes(bad), [LEDGER.verifier()])


def test_flipped_byte_in_note_signature_is_rejected() -> None:
    note = sign_note(TEXT, [LEDGER])
    head, encoded = note.rstrip("\n").rsplit(" ", 1)
    raw = base64.b64decode(encoded)
    for position in range(len(raw)):  # key ID bytes, then signature bytes
        for mask in (0x01, 0x80):
            bad = bytearray(raw)
            bad[position] ^= mask
            with pytest.raises(SignatureError):
                open_note(f"{head} {_b64(bytes(bad))}\n", [LEDGER.verifier()])


def test_non_canonical_base64_signature_is_rejected() -> None:
    # Without this a third party could re-spell a valid signature and make a "different" note.
    note = sign_note(TEXT, [LEDGER])
    head, encoded = note.rstrip("\n").rsplit(" ", 1)
    with pytest.raises(EncodingError):
        open_note(f"{head} {_non_canonical(encoded)}\n", [LEDGER.verifier()])


def test_parse_note_splits_on_the_last_blank_line() -> None:
    text = "first\n\nsecond paragraph\n"
    parsed = parse_note(sign_note(text, [LEDGER]))
    assert parsed.text == text
    assert open_note(sign_note(text, [LEDGER]), [LEDGER.verifier()]).text == text


# ---- checkpoints

ROOT = hashlib.sha256(b"some root").digest()


def test_checkpoint_text_format() -> None:
    checkpoint = Checkpoint(ORIGIN, 1234, ROOT, ("ext one", "ext two"))
    assert checkpoint.text() == f"{ORIGIN}\n1234\n{_b64(ROOT)}\next one\next two\n"
    assert Checkpoint(ORIGIN, 0, ROOT).text() == f"{ORIGIN}\n0\n{_b64(ROOT)}\n"


@settings(max_examples=50, deadline=None)
@given(
    size=st.integers(0, 2**64),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(
        st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1), max_size=3
    ),
)
def test_checkpoint_round_trips_through_a_signed_note(size, root, extensions) -> None:
    checkpoint = Checkpoint(ORIGIN, size, root, tuple(extensions))
    assert parse_checkpoint_text(checkpoint.text()) == checkpoint
    note = sign_checkpoint(checkpoint, LEDGER)
    assert note == checkpoint.text() + "\n" + sign_note(checkpoint.text(), [LEDGER]).split("\n\n")[-1]
    assert open_checkpoint(note, LEDGER.verifier()) == checkpoint
    assert open_checkpoint(note.encode(), LEDGER.verifier(), origin=ORIGIN) == checkpoint


@pytest.mark.parametrize(
    "text",
    [
        f"{ORIGIN}\n007\n{_b64(ROOT)}\n",  # leading zeros
        f"{ORIGIN}\n00\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n+7\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n-1\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n 7\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n7 \n{_b64(ROOT)}\n",
        f"{ORIGIN}\n7_000\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n\u0667\n{_b64(ROOT)}\n",  # non-ASCII digit
        f"{ORIGIN}\n0x10\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n\n{_b64(ROOT)}\n",
        f"{ORIGIN}\n7\n{_b64(ROOT[:31])}\n",  # non-32-byte roots
        f"{ORIGIN}\n7\n{_b64(ROOT + b'x')}\n",
        f"{ORIGIN}\n7\n{_b64(ROOT).rstrip('=')}\n",
        f"{ORIGIN}\n7\n{ROOT.hex()}\n",
        f"{ORIGIN}\n7\n{_non_canonical(_b64(ROOT))}\n",  # same root, second spelling
        f"{ORIGIN}\n7\n\n",
        f"{ORIGIN}\n7\n",  # missing lines
        f"{ORIGIN}\n",
        "",
        f"\n7\n{_b64(ROOT)}\n",  # empty origin
        f"{ORIGIN}\n7\n{_b64(ROOT)}",  # no final newline
        f"{ORIGIN}\n7\n{_b64(ROOT)}\next\n\n",  # empty extension line
    ],
)
def test_malformed_checkpoint_text_is_refused(text) -> None:
    with pytest.raises(EncodingError):
        parse_checkpoint_text(text)


def test_signed_note_that_is_not_a_checkpoint_is_refused() -> None:
    with pytest.raises(EncodingError):
        open_checkpoint(sign_note(f"{ORIGIN}\n007\n{_b64(ROOT)}\n", [LEDGER]), LEDGER.verifier())


def test_checkpoint_opened_with_the_wrong_key_is_rejected() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 10, ROOT), LEDGER)
    for wrong in (IMPOSTOR.verifier(), WITNESS.verifier()):
        with pytest.raises(SignatureError):
            open_checkpoint(note, wrong)
    forged = sign_checkpoint(Checkpoint(ORIGIN, 10, ROOT), IMPOSTOR)
    with pytest.raises(SignatureError):
        open_checkpoint(forged, LEDGER.verifier())


def test_checkpoint_for_another_origin_is_rejected() -> None:
    note = sign_checkpoint(Checkpoint("other.example/log", 10, ROOT), LEDGER)
    assert open_checkpoint(note, LEDGER.verifier()).origin == "other.example/log"
    with pytest.raises(VerificationError) as caught:
        open_checkpoint(note, LEDGER.verifier(), origin=ORIGIN)
    assert caught.value.expected == ORIGIN
    assert caught.value.calculated == "other.example/log"


def test_tampered_checkpoint_size_or_root_is_rejected() -> None:
    note = sign_checkpoint(Checkpoint(ORIGIN, 10, ROOT), LEDGER)
    other_root = _b64(hashlib.sha256(b"other").digest())
    for bad in (note.replace("\n10\n", "\n11\n"), note.replace(_b64(ROOT), other_root)):
        with pytest.raises(SignatureError):
            open_checkpoint(bad, LEDGER.verifier())


def test_cosigned_checkpoint_opens_with_either_key() -> None:
    checkpoint = Checkpoint(ORIGIN, 3, ROOT)
    note = sign_note(checkpoint.text(), [LEDGER, WITNESS])
    assert open_checkpoint(note, LEDGER.verifier()) == checkpoint
    assert open_checkpoint(note, WITNESS.verifier()) == checkpoint


def test_verifying_with_cryptography_public_key_class() -> None:
    # Ed25519PublicKey.from_public_bytes accepts the raw key our verifier strings carry.
    public = Ed25519PublicKey.from_public_bytes(parse_verifier_key(GO_VKEY).public_key)
    raw = base64.b64decode(GO_PETER_SIG.split(" ")[2])
    public.verify(raw[4:], GO_TEXT.encode())
