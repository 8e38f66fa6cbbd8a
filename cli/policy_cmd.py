"""`evledger policy check` and `evledger policy publish` (DESIGN.md §5, schemas/POLICY.md).

`check` validates a policy file offline and prints its rules; `publish`
validates it, signs the `policy.published` admin record with an admin key and
appends it (over HTTP with `--token`, else directly into the database), then
prints the entry index and the policy digest that results will name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import msgspec
import typer

from cli.append_cmds import DEFAULT_SERVER, LedgerKeyOption, append_admin_record
from cli.errors import JsonOption, command_errors, emit_success, failure_context
from cli.files import read_text
from cli.settings import (
    DEFAULT_DATA_DIR,
    DataDirOption,
    DsnOption,
    ServerOption,
    SignerKeyOption,
    TokenOption,
)
from ledger.evidence.policy import (
    Policy,
    describe_policy,
    encode_policy_record,
    load_policy_toml,
    policy_digest,
)

policy_app = typer.Typer(help="Check and publish release policies (TOML).", no_args_is_help=True)
PolicyFile = Annotated[Path, typer.Argument(help="The policy file (TOML, see schemas/policy.example.toml).")]


def _load(file: Path) -> Policy:
    """Read and validate a policy file; errors name the file and the offending key."""
    with failure_context(f"policy file {file}"):
        return load_policy_toml(read_text(file, "policy file"))


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
