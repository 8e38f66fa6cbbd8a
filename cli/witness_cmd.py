"""`evledger witness serve`: run a C2SP tlog-witness for one or more logs (docs/witness.md).

The witness cosigns each log's checkpoints that extend what it cosigned before
(c2sp.org/tlog-witness), keeping the latest cosigned checkpoint of each log in its data
directory. It runs one granian worker: the atomic check-and-update of a log's state relies
on a lock in that process, and the data directory is locked against a second witness.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from cli.errors import command_errors
from cli.files import load_verifier_key, read_text
from cli.serve_guard import data_dir_lock, refuse_busy_port
from ledger.core.keys import ALG_COSIGNATURE_V1, SIGNER_PREFIX, SignerKey, parse_signer_key
from ledger.errors import InputError, KeyFormatError, failure_context
from ledger.service.limits import server_options
from ledger.witness.app import ENV_WITNESS_DATA, ENV_WITNESS_KEY, ENV_WITNESS_LOGS, check_witness_keys

DEFAULT_WITNESS_PORT = 8800
DEFAULT_WITNESS_DATA_DIR = Path("evledger-witness")

witness_app = typer.Typer(
    help="Run a transparency-log witness (C2SP tlog-witness) that cosigns ledger checkpoints.",
    no_args_is_help=True,
)


def load_witness_key(path: Path) -> SignerKey:
    """The witness's cosignature/v1 signer key (type 0x04) in `path`.

    KeyFormatError (exit 2) for any other key, with how to make one when it is an ordinary
    note key (type 0x01), such as a ledger's or a signer's.
    """
    text = read_text(path, "witness key file")
    if not text.lstrip().startswith(SIGNER_PREFIX):
        raise KeyFormatError(
            f"{path} is not a signer key file (PRIVATE+KEY+...); give the witness's .key file"
        )
    try:
        return parse_signer_key(text, ALG_COSIGNATURE_V1)
    except KeyFormatError as exc:
        try:
            parse_signer_key(text)
        except KeyFormatError:
            exc.add_note(f"witness key file {path}")
            raise exc from None
        raise KeyFormatError(
            f"{path} is an ordinary note key (type 0x01), not a witness key: a witness signs with a "
            "cosignature/v1 key (type 0x04). Make one with `evledger keygen NAME --witness`."
        ) from None


@witness_app.command("serve")
def serve(
    key: Annotated[
        Path,
        typer.Option(
            "--key",
            metavar="WITNESS.key",
            help="The witness's signer key (from `evledger keygen NAME --witness`).",
        ),
    ],
    logs: Annotated[
        list[Path],
        typer.Option(
            "--log",
            metavar="LEDGER.pub",
            help="A log's verifier key; its name is the origin accepted. Repeat for more logs.",
        ),
    ],
    data_dir: Annotated[
        Path,
        typer.Option(
            "--data-dir", metavar="DIR", help="Where the witness keeps its state (one per witness)."
        ),
    ] = DEFAULT_WITNESS_DATA_DIR,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=1, max=65535, help="Port to listen on; it must be free.")
    ] = DEFAULT_WITNESS_PORT,
) -> None:
    """Serve POST /add-checkpoint (C2SP tlog-witness) and GET /healthz until interrupted.

    Prints the witness's verifier key (what a ledger operator puts in its witness policy) and
    the log origins it witnesses. It refuses a busy port, and a data directory another witness
    uses. The EVLEDGER_* body and connection limits of `evledger serve` apply.
    """
    from granian import Granian  # noqa: PLC0415 - only this command needs the server

    with command_errors(json_output=False):
        witness = load_witness_key(key)
        log_keys = []
        for path in logs:
            with failure_context(f"log key file {path}"):
                log_keys.append(load_verifier_key(path))
        origins = check_witness_keys(witness, log_keys)
        if data_dir.exists() and not data_dir.is_dir():
            raise InputError(f"--data-dir {data_dir} is not a directory")
        with data_dir_lock(data_dir):
            refuse_busy_port(host, port)
            options = server_options(host=host, port=port, workers=1)
            options["target"] = "ledger.witness.app:app_from_env"
            os.environ.update(
                {
                    ENV_WITNESS_KEY: str(key.resolve()),
                    ENV_WITNESS_LOGS: "\n".join(log.format() for log in log_keys),
                    ENV_WITNESS_DATA: str(data_dir.resolve()),
                }
            )
            typer.echo(
                f"evledger witness: {witness.verifier().format()} on http://{host}:{port}, "
                f"witnessing {', '.join(origins)}",
            )
            Granian(**options).serve()
