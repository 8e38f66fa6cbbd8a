"""`evledger policy init | check | publish` (docs/cli.md, schemas/POLICY.md).

`init` writes the example policy to start from; `check` validates a policy file
offline and prints its rules; `publish` validates it, signs the `policy.published`
admin record with an admin key and appends it (over HTTP with `--token`, else
directly into the database), then prints the entry index and the policy digest
that results will name. The example and POLICY.md are package data
(`ledger.schemas`), read with importlib.resources, never from the current directory.
"""

from __future__ import annotations

import os
import tempfile
from importlib import resources
from pathlib import Path
from typing import Annotated

import msgspec
import typer

from cli.append_cmds import LedgerKeyOption, append_admin_record
from cli.errors import JsonOption, command_errors, emit_success
from cli.files import create_exclusive, read_text
from cli.settings import (
    DEFAULT_DATA_DIR,
    DEFAULT_SERVER,
    DataDirOption,
    DsnOption,
    ServerOption,
    SignerKeyOption,
    TokenOption,
)
from ledger.errors import InputError, failure_context
from ledger.records.admin import encode_policy_record
from ledger.records.policy import Policy, describe_policy, load_policy_toml, policy_digest

policy_app = typer.Typer(help="Write, check and publish release policies (TOML).", no_args_is_help=True)
PolicyFile = Annotated[
    Path, typer.Argument(help="The policy file (TOML; `evledger policy init` writes one).")
]
CONTRACT = resources.files("ledger.schemas")  # the schemas/ folder, installed as package data
EXAMPLE_POLICY = CONTRACT / "policy.example.toml"
POLICY_GUIDE = CONTRACT / "POLICY.md"
DEFAULT_POLICY_FILE = Path("policy.toml")


def _load(file: Path) -> Policy:
    """Read and validate a policy file; errors name the file and the offending key."""
    with failure_context(f"policy file {file}"):
        return load_policy_toml(read_text(file, "policy file"))


def _replace(path: Path, text: str) -> None:
    """Write `text` to `path` through a temporary file in the same folder, so no reader sees half of it."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
        Path(temporary).chmod(0o644)
        Path(temporary).replace(path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@policy_app.command("init")
def init(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="Where to write it.")] = DEFAULT_POLICY_FILE,
    force: Annotated[bool, typer.Option("--force", help="Replace the file if it exists.")] = False,
    json_output: JsonOption = False,
) -> None:
    """Write the example release policy to FILE (default policy.toml), to edit, check and publish."""
    with command_errors(json_output=json_output):
        text = EXAMPLE_POLICY.read_text(encoding="utf-8")
        if force:
            _replace(file, text)
        elif file.exists() or file.is_symlink():
            raise InputError(f"{file} already exists; refusing to overwrite it (--force replaces it)")
        else:
            create_exclusive(file, text, private=False)
        emit_success(
            json_output=json_output,
            fields={"file": str(file), "guide": str(POLICY_GUIDE)},
            lines=[
                f"wrote the example release policy to {file}",
                "next:",
                "  1. edit its name, risk tiers, required test suites, approval roles and limits;",
                f"     every key is explained in {POLICY_GUIDE}",
                f"  2. check it:   evledger policy check {file}",
                f"  3. publish it: evledger policy publish {file} --key ADMIN.key --token ADMIN_TOKEN",
            ],
        )


@policy_app.command("check")
def check(file: PolicyFile, json_output: JsonOption = False) -> None:
    """Validate a policy file and print its tiers and rules (nothing is appended)."""
    with command_errors(json_output=json_output):
        policy = _load(file)
        fields = {"digest": policy_digest(policy), "policy": msgspec.to_builtins(policy)}
        emit_success(json_output=json_output, fields=fields, lines=describe_policy(policy))


@policy_app.command("publish")
def publish(
    file: PolicyFile,
    key: SignerKeyOption = None,
    token: TokenOption = None,
    server: ServerOption = DEFAULT_SERVER,
    dsn: DsnOption = None,
    data_dir: DataDirOption = DEFAULT_DATA_DIR,
    ledger_key: LedgerKeyOption = None,
    json_output: JsonOption = False,
) -> None:
    """Publish a policy: the admin record (signed with the admin key --key) becomes the policy in force."""
    with command_errors(json_output=json_output):
        policy = _load(file)
        receipt = append_admin_record(
            encode_policy_record(policy),
            key=key, token=token, server=server, dsn=dsn, data_dir=data_dir, ledger_key=ledger_key,
        )  # fmt: skip
        digest = policy_digest(policy)
        lines = [
            f"published policy {policy.name} version {policy.version}: entry {receipt['index']}",
            f"policy digest {digest}",
        ]
        fields = {"index": receipt["index"], "digest": digest, "name": policy.name, "receipt": receipt}
        emit_success(json_output=json_output, fields=fields, lines=lines)
