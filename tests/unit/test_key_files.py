"""Passphrase-protected signer keys (issue #12, docs/formats.md#keys): the format and the CLI's handling.

`keygen --passphrase` writes `ENCRYPTED+KEY+<name>+<keyid>+<base64>`; every command that
signs opens it through `cli.settings.load_signer`, with EVLEDGER_KEY_PASSPHRASE or a prompt.
"""

from __future__ import annotations

import base64
import io
import json
import re
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import offline, settings
from cli.main import app
from cli.settings import ENV_KEY_PASSPHRASE, load_signer
from ledger.core.encoding import b64encode
from ledger.core.key_files import (
    ENCRYPTED_PREFIX,
    WrongPassphraseError,
    encrypt_signer_key,
    is_encrypted_key,
    parse_encrypted_key,
)
from ledger.core.keys import SignerKey, parse_verifier_key
from ledger.errors import InputError, KeyFormatError

NAME = "people.example/ann"
PASSPHRASE = "correct horse battery staple"  # noqa: S105 - a test passphrase
runner = CliRunner()


def seed_spellings(seed: bytes) -> list[bytes]:
    """Ways the seed could leak into a file: raw, hex, and base64 of it alone or behind its type byte."""
    spellings = [seed, seed.hex().encode(), base64.b64encode(seed), base64.b64encode(b"\x01" + seed)]
    return [*spellings, *(s.rstrip(b"=") for s in spellings[2:])]


def test_round_trip():
    key = SignerKey.generate(NAME)
    text = encrypt_signer_key(key, PASSPHRASE).format()
    assert text.startswith(f"{ENCRYPTED_PREFIX}{key.keyid}+")
    assert is_encrypted_key(text)
    parsed = parse_encrypted_key(text)
    assert parsed.keyid == key.keyid
    opened = parsed.decrypt(PASSPHRASE)
    assert opened.seed == key.seed
    assert opened.keyid == key.keyid


def test_each_encryption_has_its_own_salt_and_nonce():
    key = SignerKey.generate(NAME)
    first, second = encrypt_signer_key(key, PASSPHRASE), encrypt_signer_key(key, PASSPHRASE)
    assert first.salt != second.salt
    assert first.nonce != second.nonce
    assert len(first.salt) == 32
    assert first.format() != second.format()


def test_the_file_holds_no_seed():
    key = SignerKey.generate(NAME)
    data = encrypt_signer_key(key, PASSPHRASE).format().encode()
    for spelling in seed_spellings(key.seed):
        assert spelling not in data
    assert key.format().encode() not in data


def test_a_wrong_passphrase_is_refused_naming_the_key():
    key = SignerKey.generate(NAME)
    encrypted = parse_encrypted_key(encrypt_signer_key(key, PASSPHRASE).format())
    with pytest.raises(WrongPassphraseError, match=re.escape(f"wrong passphrase for key {key.keyid}")):
        encrypted.decrypt("not it")


def test_a_tampered_ciphertext_is_refused():
    key = SignerKey.generate(NAME)
    encrypted = encrypt_signer_key(key, PASSPHRASE)
    blob = bytearray(base64.b64decode(encrypted.format().split("+", 4)[4]))
    for position in (len(blob) - 1, 1 + 32 + 24):  # the last ciphertext byte, the first (MAC) byte
        altered = bytearray(blob)
        altered[position] ^= 0x01
        text = f"{ENCRYPTED_PREFIX}{key.keyid}+{b64encode(bytes(altered))}"
        with pytest.raises(WrongPassphraseError):
            parse_encrypted_key(text).decrypt(PASSPHRASE)


def test_a_header_naming_another_key_is_refused():
    key, other = SignerKey.generate(NAME), SignerKey.generate(NAME)
    text = encrypt_signer_key(key, PASSPHRASE).format().replace(f"{key.key_id:08x}", f"{other.key_id:08x}")
    with pytest.raises(KeyFormatError, match="holds another key"):
        parse_encrypted_key(text).decrypt(PASSPHRASE)


@pytest.mark.parametrize(
    "text",
    [
        "ENCRYPTED+KEY+name+0000000+AQ==",
        "ENCRYPTED+KEY+name+00000000",
        "ENCRYPTED+KEY+name+00000000+AQ==",  # truncated
        "ENCRYPTED+KEY+name+00000000+" + b64encode(b"\x02" + bytes(100)),  # unknown version
        "ENCRYPTED+KEY+na me+00000000+" + b64encode(b"\x01" + bytes(100)),
        "ENCRYPTED+KEY+name+00000000+not base64!",
    ],
)
def test_malformed_files_are_refused(text):
    with pytest.raises(InputError):  # KeyFormatError, or EncodingError for the base64
        parse_encrypted_key(text)


def test_an_empty_passphrase_is_refused():
    with pytest.raises(InputError):
        encrypt_signer_key(SignerKey.generate(NAME), "")


# --- the CLI ---------------------------------------------------------------------------------------


def keygen(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(ENV_KEY_PASSPHRASE, PASSPHRASE)
    result = runner.invoke(app, ["keygen", NAME, "--out", str(tmp_path / "ann"), "--passphrase", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["encrypted"] is True
    return tmp_path / "ann.key"


def test_keygen_passphrase_writes_an_encrypted_key_and_a_plain_pub(tmp_path, monkeypatch):
    key_path = keygen(tmp_path, monkeypatch)
    text = key_path.read_text()
    assert text.endswith("\n")
    assert text.count("\n") == 1
    assert text.startswith(ENCRYPTED_PREFIX)
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    verifier = parse_verifier_key((tmp_path / "ann.pub").read_text())
    signer = load_signer(key_path)
    assert signer.verifier() == verifier
    for spelling in seed_spellings(signer.seed):
        assert spelling not in key_path.read_bytes()


def test_keygen_passphrase_without_terminal_or_env_is_refused(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_KEY_PASSPHRASE, raising=False)
    result = runner.invoke(app, ["keygen", NAME, "--out", str(tmp_path / "ann"), "--passphrase"])
    assert result.exit_code == 2
    assert ENV_KEY_PASSPHRASE in result.output
    assert not (tmp_path / "ann.key").exists()
    assert not (tmp_path / "ann.pub").exists()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_keygen_passphrase_is_typed_twice_on_a_terminal(monkeypatch):
    monkeypatch.delenv(ENV_KEY_PASSPHRASE, raising=False)
    prompts: list[dict[str, object]] = []

    def prompt(_text: str, **kwargs: object) -> str:
        prompts.append(kwargs)
        return PASSPHRASE

    monkeypatch.setattr(offline.sys, "stdin", Terminal())
    monkeypatch.setattr(offline.typer, "prompt", prompt)
    assert offline._new_passphrase() == PASSPHRASE
    assert prompts == [{"hide_input": True, "confirmation_prompt": True, "err": True}]


def test_keygen_witness_keys_are_not_encrypted(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_KEY_PASSPHRASE, PASSPHRASE)
    result = runner.invoke(app, ["keygen", NAME, "--out", str(tmp_path / "w"), "--witness", "--passphrase"])
    assert result.exit_code == 2


def test_load_signer_wrong_passphrase(tmp_path, monkeypatch):
    key_path = keygen(tmp_path, monkeypatch)
    monkeypatch.setenv(ENV_KEY_PASSPHRASE, "wrong")
    keyid = parse_encrypted_key(key_path.read_text()).keyid
    with pytest.raises(InputError, match=re.escape(f"wrong passphrase for key {keyid}")):
        load_signer(key_path)


def test_load_signer_without_terminal_or_env_says_how(tmp_path, monkeypatch):
    key_path = keygen(tmp_path, monkeypatch)
    monkeypatch.delenv(ENV_KEY_PASSPHRASE)
    with pytest.raises(InputError, match=ENV_KEY_PASSPHRASE):
        load_signer(key_path)


def test_load_signer_prompts_on_a_terminal(tmp_path, monkeypatch):
    key_path = keygen(tmp_path, monkeypatch)
    monkeypatch.delenv(ENV_KEY_PASSPHRASE)
    asked: list[str] = []

    def prompt(text: str, **kwargs: object) -> str:
        asked.append(text)
        assert kwargs["hide_input"] is True
        return PASSPHRASE

    monkeypatch.setattr(settings.sys, "stdin", Terminal())
    monkeypatch.setattr(settings.typer, "prompt", prompt)
    signer = load_signer(key_path)
    assert asked == [f"Passphrase for {signer.keyid}"]


def test_a_signing_command_with_a_wrong_passphrase_exits_2_without_traceback(tmp_path, monkeypatch):
    key_path = keygen(tmp_path, monkeypatch)
    statement = tmp_path / "s.json"
    statement.write_text(
        json.dumps(
            {
                "_type": "https://in-toto.io/Statement/v1",
                "subject": [{"name": "a", "digest": {"sha256": "00" * 32}}],
                "predicateType": "https://evledger.test/generic/v1",
                "predicate": {},
            }
        )
    )
    seed = load_signer(key_path).seed
    for passphrase, needle in (("wrong", "wrong passphrase for key"), (None, ENV_KEY_PASSPHRASE)):
        if passphrase is None:
            monkeypatch.delenv(ENV_KEY_PASSPHRASE)
        else:
            monkeypatch.setenv(ENV_KEY_PASSPHRASE, passphrase)
        result = runner.invoke(app, ["submit", str(statement), "--key", str(key_path), "--token", "t"])
        assert result.exit_code == 2, result.output
        assert needle in result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        for spelling in seed_spellings(seed):
            assert spelling not in result.output.encode()
