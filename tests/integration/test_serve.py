"""`evledger serve` as an operator starts it: real processes, real ports, real data directories.

- A busy port is refused (granian's SO_REUSEPORT would otherwise let two ledgers answer in turn).
- A data directory serves one `serve` at a time (a lock held for the server's life).
- With --dsn the ledger key must be given: nothing is written to the current directory.
- A key that does not fit the database names both keys and the file, with or without --skip-init.
- --public-log opens /checkpoint and /tile/* and nothing else.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from ledger_harness import Ledger, free_port, live_server, token
from service_support import bearer, opened, scratch_database, scratch_ledger

from cli.serve_guard import SERVE_LOCK_FILE, data_dir_lock
from ledger.core.keys import ALG_COSIGNATURE_V1, SignerKey
from ledger.errors import InputError
from ledger.storage.migrate import migrate

CLI = str(Path(sys.executable).with_name("evledger"))
# Settings a developer's shell may hold must not leak into these runs.
CLEAN_ENV = {k: v for k, v in os.environ.items() if not k.startswith("EVLEDGER_")}

# ledger_harness.live_server leaves the server's stdout pipe to the garbage collector.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <_io.FileIO:pytest.PytestUnraisableExceptionWarning"
)


@pytest.fixture(scope="module")
def ledger(pg_server_dsn: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ledger]:
    with scratch_ledger(pg_server_dsn, tmp_path_factory.mktemp("serve")) as made:
        yield made


def refused(args: list[str], cwd: Path, timeout: float = 30) -> str:
    """Run `evledger ARGS`, which must exit 2 at once rather than serve; its stderr."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        [CLI, *args],
        cwd=cwd,
        env=CLEAN_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so that a server that did start goes down with all its workers
    )
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"evledger {args[0]} started instead of refusing:\n{out}\n{err}")
    assert process.returncode == 2, (process.returncode, out, err)
    assert "Traceback" not in err
    return err


@contextmanager
def serving(
    args: list[str], cwd: Path, url: str, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """Run `evledger serve ARGS` until the block ends; wait until `url`/healthz answers."""
    process = subprocess.Popen(  # noqa: S603 - our own CLI with arguments we built
        [CLI, "serve", *args],
        cwd=cwd,
        env={**CLEAN_ENV, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120  # a first embedded start runs initdb
        while True:
            if process.poll() is not None:
                pytest.fail(f"evledger serve exited with {process.returncode}:\n{process.stdout.read()}")  # type: ignore[union-attr]
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "evledger serve did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def origin_of(url: str, headers: dict[str, str] | None = None) -> str:
    """The origin line of the checkpoint the server at `url` serves (new connection each time)."""
    response = httpx.get(url + "/checkpoint", headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.text.split("\n", 1)[0]


# --- item 15: a busy port ------------------------------------------------------------------------------


def test_a_second_serve_on_a_busy_port_exits_2_and_the_first_keeps_the_port(
    ledger: Ledger, pg_server_dsn: str, tmp_path: Path
) -> None:
    other_dir = tmp_path / "other"
    other_dir.mkdir()
    with scratch_ledger(pg_server_dsn, other_dir) as other, live_server(ledger, workers=2) as url:
        port = url.rsplit(":", 1)[1]
        args = ["serve", "--dsn", other.dsn, "--key", str(other.key_path), "--port", port]
        err = refused(args, tmp_path)
        assert f"127.0.0.1:{port} is already in use" in err
        assert "--port" in err
        auditor = bearer(token(ledger.dsn, "auditor"))
        # Forty connections, each hashed to a listener afresh: all reach the first ledger.
        assert {origin_of(url, auditor) for _ in range(40)} == {ledger.signer.name}


def test_a_port_held_without_reuseport_is_refused_too(ledger: Ledger, tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        err = refused(
            ["serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(port)], tmp_path
        )
    assert f"127.0.0.1:{port} is already in use" in err


def test_serve_restarts_at_once_on_the_port_it_just_left(ledger: Ledger, tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(port), "--workers", "1"]
    auditor = bearer(token(ledger.dsn, "auditor"))
    for _ in range(2):  # the second start meets the first one's closed connections in TIME_WAIT
        with serving(args, tmp_path, url):
            assert origin_of(url, auditor) == ledger.signer.name


@pytest.mark.parametrize(
    ("host", "port", "message"),
    [("no-such-host.invalid", "8000", "cannot listen on 'no-such-host.invalid'"),
     ("127.0.0.1", "0", "greater than or equal to 1"), ("127.0.0.1", "65536", "less than or equal to 65535")],
)  # fmt: skip
def test_bad_listen_addresses_exit_2(
    ledger: Ledger, tmp_path: Path, host: str, port: str, message: str
) -> None:
    args = ["serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--host", host, "--port", port]
    assert message in refused(args, tmp_path)


WITNESS_KEY = SignerKey.from_seed("witness.test/w", bytes(32), ALG_COSIGNATURE_V1).verifier().format()
BAD_ANCHORING = {
    "policy_missing": (["--witness-policy", "no-such.policy"], "cannot read no-such.policy"),
    "policy_without_quorum": (
        ["--witness-policy", f"witness w {WITNESS_KEY} http://w"],
        "no `quorum <n>` line",
    ),
    "policy_with_a_ledger_key": (
        ["--witness-policy", "witness w {ledger} http://w\nquorum 1"],
        "cosignature/v1",
    ),
    "tsa_without_certificate": (["--tsa", "http://tsa.test/"], "--tsa needs --tsa-cert"),
    "certificate_without_tsa": (["--tsa-cert", "{pub}"], "without --tsa URL"),
    "tsa_not_a_url": (["--tsa", "tsa.test", "--tsa-cert", "{pub}"], "not an http:// or https:// URL"),
    "certificate_not_pem": (["--tsa", "http://tsa.test/", "--tsa-cert", "{pub}"], "certificate"),
}


@pytest.mark.parametrize(("options", "message"), BAD_ANCHORING.values(), ids=BAD_ANCHORING.keys())
def test_bad_witness_or_time_stamping_configuration_exits_2_before_serving(
    ledger: Ledger, tmp_path: Path, options: list[str], message: str
) -> None:
    ledger_key = ledger.pub_path.read_text().strip()
    args = []
    for option in options:
        value = option.format(ledger=ledger_key, pub=ledger.pub_path)
        if "\n" in value or value.startswith("witness "):  # a policy's text: write it to a file
            policy = tmp_path / "given.policy"
            policy.write_text(value + "\n")
            value = str(policy)
        args.append(value)
    command = ["serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(free_port()), *args]
    assert message in refused(command, tmp_path)


# --- item 15: one serve per data directory -------------------------------------------------------------


def test_a_second_serve_on_the_same_data_directory_exits_2_naming_it_and_the_holder(
    embedded_data_dir: Path, tmp_path: Path
) -> None:
    embedded_data_dir.chmod(0o755)  # as root the embedded server's account must enter it
    data = embedded_data_dir / "ledger-data"
    first_port, second_port = free_port(), free_port()
    url = f"http://127.0.0.1:{first_port}"
    first_args = ["--data-dir", str(data), "--port", str(first_port), "--workers", "1"]
    with serving(first_args, tmp_path, url) as first:
        assert (data / SERVE_LOCK_FILE).read_text().strip() == str(first.pid)
        err = refused(["serve", "--data-dir", str(data), "--port", str(second_port)], tmp_path)
        assert f"(pid {first.pid})" in err
        assert str(data.resolve()) in err
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{second_port}/healthz", timeout=1)
        # Other commands still attach to the running embedded database.
        made = subprocess.run(  # noqa: S603 - our own CLI
            [CLI, "token", "create", "--role", "auditor", "--data-dir", str(data)],
            cwd=tmp_path, env=CLEAN_ENV, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert made.returncode == 0, made.stderr
        auditor = made.stdout.split()[-1]
        assert httpx.get(url + "/v1/checkpoint", headers=bearer(auditor), timeout=10).status_code == 200
    assert (data / SERVE_LOCK_FILE).read_text() == ""  # released and emptied on the way out


def test_the_lock_goes_with_its_process_even_when_killed(tmp_path: Path) -> None:
    holder = subprocess.Popen(  # noqa: S603 - a child that takes the lock and waits to be killed
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pathlib import Path
            from cli.serve_guard import data_dir_lock
            with data_dir_lock(Path({str(tmp_path)!r})):
                print("locked", flush=True)
                time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(InputError, match=f"pid {holder.pid}"), data_dir_lock(tmp_path):
            pass
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with data_dir_lock(tmp_path):  # the killed holder's stale file stops nobody
        assert (tmp_path / SERVE_LOCK_FILE).read_text().strip() == str(os.getpid())


# --- item 18: with --dsn, the key must be given --------------------------------------------------------


@pytest.mark.parametrize("command", ["serve", "init"])
def test_dsn_without_a_key_exits_2_with_guidance_and_writes_nothing(
    ledger: Ledger, tmp_path: Path, command: str
) -> None:
    workdir = tmp_path / "elsewhere"
    workdir.mkdir()
    err = refused([command, "--dsn", ledger.dsn], workdir)
    assert "--key" in err
    assert "EVLEDGER_KEY" in err
    assert "evledger keygen" in err
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize("extra", [[], ["--skip-init"]], ids=["init_on_start", "skip_init"])
def test_serve_with_a_key_that_does_not_fit_names_both_keys_and_the_file(
    ledger: Ledger, tmp_path: Path, extra: list[str]
) -> None:
    stranger = SignerKey.generate("stranger.test/ledger")
    key_path = tmp_path / "stranger.key"
    key_path.write_text(stranger.format() + "\n")
    key_path.chmod(0o600)
    err = refused(
        ["serve", "--dsn", ledger.dsn, "--key", str(key_path), "--port", str(free_port()), *extra], tmp_path
    )
    assert ledger.signer.keyid in err
    assert stranger.keyid in err
    assert str(key_path) in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stranger.key"]


def test_init_with_a_key_that_does_not_fit_names_both_keys_and_the_file(
    ledger: Ledger, tmp_path: Path
) -> None:
    stranger = SignerKey.generate("stranger.test/ledger")
    key_path = tmp_path / "stranger.key"
    key_path.write_text(stranger.format() + "\n")
    err = refused(["init", "--dsn", ledger.dsn, "--key", str(key_path)], tmp_path)
    assert ledger.signer.keyid in err
    assert stranger.keyid in err
    assert str(key_path) in err


def test_skip_init_on_a_database_without_a_ledger_says_to_run_init(
    pg_server_dsn: str, tmp_path: Path
) -> None:
    key_path = tmp_path / "fresh.key"
    key_path.write_text(SignerKey.generate("fresh.test/ledger").format() + "\n")
    with scratch_database(pg_server_dsn) as dsn:
        asyncio.run(migrate(dsn))  # the schema, but no entry 0
        err = refused(["serve", "--dsn", dsn, "--key", str(key_path), "--skip-init"], tmp_path)
    assert "holds no ledger yet: run `evledger init` first" in err


# --- item 19: --public-log through the real command ------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "env"), [(["--public-log"], {}), ([], {"EVLEDGER_PUBLIC_LOG": "1"})], ids=["flag", "environment"]
)
def test_serve_public_log_opens_checkpoint_and_tiles_only(
    ledger: Ledger, tmp_path: Path, flag: list[str], env: dict[str, str]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(port), "--workers", "1", *flag]
    with serving(args, tmp_path, url, env):
        assert opened(httpx.get(url + "/checkpoint", timeout=10).text, ledger).size >= 1
        assert httpx.get(url + "/tile/entries/000.p/1", timeout=10).status_code == 200
        assert httpx.get(url + "/v1/checkpoint", timeout=10).status_code == 401
        assert httpx.get(url + "/metrics", timeout=10).status_code == 401
        bad = {"Authorization": "Bearer evl_not-a-token"}
        assert httpx.get(url + "/checkpoint", headers=bad, timeout=10).status_code == 401
        # A tile client with no token audits the whole log.
        audit = subprocess.run(  # noqa: S603 - our own CLI
            [CLI, "verify-log", "--server", url, "--key", str(ledger.pub_path)],
            env=CLEAN_ENV, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stdout + audit.stderr


def test_serve_keeps_the_log_private_by_default(ledger: Ledger) -> None:
    with live_server(ledger) as url:
        assert httpx.get(url + "/healthz", timeout=10).json() == {"status": "ok"}
        assert httpx.get(url + "/readyz", timeout=10).status_code == 200
        for path in ["/checkpoint", "/tile/entries/000.p/1", "/v1/checkpoint"]:
            assert httpx.get(url + path, timeout=10).status_code == 401, path


# --- issue #14: where evidence files are kept ----------------------------------------------------


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("s3:/evidence", "s3://BUCKET"),
        ("gs://evidence", "s3://BUCKET"),
        ("s3://ab", "3 to 63 characters"),
        ("s3://key:secret@evidence", "no credentials"),
        ("s3://evidence?endpont=http://x", "not endpont"),
        ("s3://evidence?endpoint=ftp://x", "http:// or https://"),
    ],
)
def test_a_malformed_blob_store_exits_2_before_serving(
    ledger: Ledger, tmp_path: Path, location: str, message: str
) -> None:
    command = ["serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(free_port())]
    assert message in refused([*command, "--blob-store", location], tmp_path)


def test_a_blob_store_out_of_reach_exits_3_naming_it_before_serving(ledger: Ledger, tmp_path: Path) -> None:
    command = ["serve", "--dsn", ledger.dsn, "--key", str(ledger.key_path), "--port", str(free_port())]
    where = "s3://evidence/ledger?endpoint=http://127.0.0.1:9"  # nothing listens on the discard port
    done = subprocess.run(  # noqa: S603 - our own CLI with arguments we built
        [CLI, *command, "--blob-store", where],
        cwd=tmp_path,
        env={**CLEAN_ENV, "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 3, (done.stdout, done.stderr)
    assert "cannot use the blob store s3://evidence/ledger/ at http://127.0.0.1:9" in done.stderr
    assert "Traceback" not in done.stderr
