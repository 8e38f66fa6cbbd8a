"""How the ledger is told whom to submit its checkpoints to: witnesses and time-stamping authorities.

`evledger serve --witness-policy FILE --tsa URL --tsa-cert CERT.pem` checks the files with
`load_witnessing` before anything starts (a bad one is exit 2), then hands them to its
worker processes through the environment (`witnessing_env`), where each worker reads them
back (`witnessing_from_env`). The witness policy's format is `ledger.verify.witness_policy`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ledger.errors import InputError
from ledger.verify.trusted_time import TsaCertificate, load_tsa_certificates
from ledger.verify.witness_policy import WitnessPolicy, parse_witness_policy

DEFAULT_TSA_INTERVAL = 10.0

# How `evledger serve` hands the configuration to its worker processes.
ENV_WITNESS_POLICY = "EVLEDGER_WITNESS_POLICY"  # a policy file's path
ENV_TSA_URLS = "EVLEDGER_TSA_URLS"  # authority URLs, separated by spaces
ENV_TSA_CERTS = "EVLEDGER_TSA_CERTS"  # PEM files, separated by os.pathsep
ENV_TSA_INTERVAL = "EVLEDGER_TSA_INTERVAL"  # seconds between two tokens of one authority


@dataclass(frozen=True, slots=True)
class Authority:
    """A time-stamping authority: its URL and the certificates its tokens must verify against."""

    url: str
    certificates: tuple[TsaCertificate, ...]


@dataclass(frozen=True, slots=True)
class WitnessingConfig:
    """What the ledger submits its checkpoints to (`serve --witness-policy`, `--tsa`/`--tsa-cert`)."""

    policy: WitnessPolicy | None = None
    authorities: tuple[Authority, ...] = ()
    tsa_interval: float = DEFAULT_TSA_INTERVAL  # at most one token per authority this often

    @property
    def enabled(self) -> bool:
        """Whether there is anything to submit checkpoints to."""
        return self.policy is not None or bool(self.authorities)


def load_witnessing(
    policy: Path | None, tsa_urls: Sequence[str], tsa_certs: Sequence[Path], tsa_interval: float
) -> WitnessingConfig:
    """Read and check a witness policy file and the authorities' certificates; InputError names what is wrong.

    Every URL is trusted with every certificate given (a token must verify against one of
    them); an authority without any certificate is refused, so no token goes unchecked.
    """
    parsed = None if policy is None else parse_witness_policy(_read(policy), str(policy))
    if tsa_urls and not tsa_certs:
        raise InputError("--tsa needs --tsa-cert CERT.pem: the certificate its tokens must verify against")
    if tsa_certs and not tsa_urls:
        raise InputError("--tsa-cert is given without --tsa URL (the authority to ask)")
    for url in tsa_urls:
        if not url.startswith(("http://", "https://")):
            raise InputError(f"--tsa {url!r} is not an http:// or https:// URL")
    certificates = tuple(c for path in tsa_certs for c in load_tsa_certificates(_read(path).encode()))
    if not tsa_interval > 0:
        raise InputError(f"the time-stamping interval must be positive, not {tsa_interval}")
    return WitnessingConfig(parsed, tuple(Authority(u, certificates) for u in tsa_urls), tsa_interval)


def witnessing_from_env(environ: Mapping[str, str]) -> WitnessingConfig:
    """The configuration `evledger serve` put in the environment of its workers (see the ENV_ names)."""
    policy = environ.get(ENV_WITNESS_POLICY)
    return load_witnessing(
        Path(policy) if policy else None,
        environ.get(ENV_TSA_URLS, "").split(),
        [Path(p) for p in environ.get(ENV_TSA_CERTS, "").split(os.pathsep) if p],
        float(environ.get(ENV_TSA_INTERVAL, str(DEFAULT_TSA_INTERVAL))),
    )


def witnessing_env(
    policy: Path | None, urls: Sequence[str], certs: Sequence[Path], interval: float
) -> dict[str, str]:
    """The environment that makes `witnessing_from_env` read back these arguments of `load_witnessing`."""
    return {
        ENV_WITNESS_POLICY: str(policy.resolve()) if policy else "",
        ENV_TSA_URLS: " ".join(urls),
        ENV_TSA_CERTS: os.pathsep.join(str(c.resolve()) for c in certs),
        ENV_TSA_INTERVAL: str(interval),
    }


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from exc
