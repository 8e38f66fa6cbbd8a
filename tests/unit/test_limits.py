"""The per-worker limits: read from EVLEDGER_* variables, refused when wrong, handed to granian."""

from __future__ import annotations

import resource
import subprocess
import sys

import pytest
from granian.constants import HTTPModes, Interfaces
from granian.http import HTTP1Settings

from ledger.errors import InputError
from ledger.service.limits import MIB, Limits, server_options


def test_defaults_when_nothing_is_set() -> None:
    limits = Limits.from_env({})
    assert limits == Limits()
    assert limits.body_budget == 128 * MIB
    assert limits.queue_bytes == 64 * MIB
    assert limits.header_timeout == 10.0
    assert limits.body_timeout == 30.0
    # One batch body of the largest size (1,000 entries of 65,535 bytes) fits the default budget.
    assert limits.body_budget > 1000 * 65_535 + 64 * 1024


def test_every_limit_is_read_from_its_variable() -> None:
    limits = Limits.from_env(
        {
            "EVLEDGER_MAX_CONNECTIONS": "5000",
            "EVLEDGER_BACKLOG": "512",
            "EVLEDGER_HEADER_TIMEOUT": "2.5",
            "EVLEDGER_BODY_TIMEOUT": "7",
            "EVLEDGER_BODY_BUDGET": "1048576",
            "EVLEDGER_QUEUE_BYTES": " 65536 ",
            "EVLEDGER_UNRELATED": "x",
        }
    )
    assert limits == Limits(5000, 512, 2.5, 7.0, 1_048_576, 65_536)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("EVLEDGER_BODY_BUDGET", "lots", "EVLEDGER_BODY_BUDGET must be a whole number"),
        ("EVLEDGER_BODY_BUDGET", "1.5", "EVLEDGER_BODY_BUDGET must be a whole number"),
        ("EVLEDGER_BODY_TIMEOUT", "soon", "EVLEDGER_BODY_TIMEOUT must be a number of seconds"),
        ("EVLEDGER_MAX_CONNECTIONS", "0", "EVLEDGER_MAX_CONNECTIONS must be above 0"),
        ("EVLEDGER_QUEUE_BYTES", "-1", "EVLEDGER_QUEUE_BYTES must be above 0"),
        ("EVLEDGER_BODY_TIMEOUT", "nan", "EVLEDGER_BODY_TIMEOUT must be above 0 and finite"),
        ("EVLEDGER_BODY_TIMEOUT", "inf", "EVLEDGER_BODY_TIMEOUT must be above 0 and finite"),
        ("EVLEDGER_HEADER_TIMEOUT", "61", "EVLEDGER_HEADER_TIMEOUT may be at most 60"),
    ],
)
def test_a_wrong_value_is_refused_naming_its_variable(name: str, value: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        Limits.from_env({name: value})


def test_server_options_serve_http1_with_the_limits() -> None:
    options = server_options(
        host="127.0.0.1",
        port=8123,
        workers=2,
        environ={
            "EVLEDGER_HEADER_TIMEOUT": "3",
            "EVLEDGER_MAX_CONNECTIONS": "300",
            "EVLEDGER_BACKLOG": "256",
        },
    )
    assert options["target"] == "ledger.service.app:app_from_env"
    assert options["factory"] is True
    assert (options["address"], options["port"], options["workers"]) == ("127.0.0.1", 8123, 2)
    assert options["interface"] == Interfaces.ASGI
    # HTTP/1.1 only: the header timeout then also closes connections that never send a byte.
    assert options["http"] == HTTPModes.http1
    assert options["backlog"] == 256
    assert options["backpressure"] == 300
    settings = options["http1_settings"]
    assert isinstance(settings, HTTP1Settings)
    assert settings.header_read_timeout == 3000
    assert settings.keep_alive
    assert options["respawn_failed_workers"] is True


def test_server_options_refuse_a_wrong_limit_before_anything_starts() -> None:
    with pytest.raises(InputError, match="EVLEDGER_BACKLOG"):
        server_options(host="127.0.0.1", port=1, workers=1, environ={"EVLEDGER_BACKLOG": "many"})


# In a child interpreter: lowering the open-file limit is not undone for the rest of the test run.
_CAPPED = """
import resource
from ledger.service.limits import SPARE_FILES, allow_open_files
resource.setrlimit(resource.RLIMIT_NOFILE, (SPARE_FILES + 100, SPARE_FILES + 100))
print(allow_open_files(5000))
"""
_RAISED = """
import resource
from ledger.service.limits import SPARE_FILES, allow_open_files
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (SPARE_FILES + 10, hard))
print(allow_open_files(100), resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= SPARE_FILES + 100)
"""


def test_connections_are_capped_to_what_the_hard_open_file_limit_allows() -> None:
    done = subprocess.run([sys.executable, "-c", _CAPPED], capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.split() == ["100"]
    assert "raise `ulimit -n`" in done.stderr


@pytest.mark.skipif(
    resource.getrlimit(resource.RLIMIT_NOFILE)[1] < 2048, reason="needs a hard open-file limit above 2048"
)
def test_the_soft_open_file_limit_is_raised_for_the_connections() -> None:
    done = subprocess.run([sys.executable, "-c", _RAISED], capture_output=True, text=True, check=True)  # noqa: S603
    assert done.stdout.split() == ["100", "True"]
