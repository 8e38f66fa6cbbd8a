"""Filling a ledger quickly with realistic release evidence, through the product's planner and writer.

Used by bench_timeline.py. Every entry is a signed in-toto statement of one of
our predicate types (or a generic one), as a pipeline would append it; the
batches go through `ledger.append.batch.plan_batch` (encoding, prev links, release
back-links, tiles, a signed checkpoint per batch) and
`PostgresAppendTransaction.write` (COPY). Admission's signature check is
skipped: the statements were signed here a moment ago by registered keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from service_harness import database_dsn, execute_on, server_dsn

from ledger.append.batch import PendingRequest, plan_batch
from ledger.append.bootstrap import load_registry
from ledger.core.dsse import ADMIN_PAYLOAD_TYPE, INTOTO_PAYLOAD_TYPE, pae, sign_envelope
from ledger.core.keys import SignerKey
from ledger.records import predicates as p
from ledger.records.admin import KeyRegistered, encode_admin_record
from ledger.rules.admission import Admitted, admit
from ledger.rules.chains import Chains
from ledger.storage.postgres import PostgresStore
from ledger.storage.protocol import ChainHead

BATCH = 5000
IN_FLIGHT = 64  # releases whose evidence interleaves in the log at any time
PRODUCTS = 10
GENERIC_TYPES = ("https://spdx.dev/Document/v2.3", "https://example.org/signature-check/v1")
# One release's script: 179 chain entries (the seal last) and 21 generic statements after the builds.
SCRIPT = (
    ["change"] * 5 + ["build"] * 2 + ["generic"] * 21 + ["test-run"] * 150 + ["scan"] * 10
    + ["validation"] * 5 + ["exception"] + ["approval"] * 3 + ["deployment"] * 2
)  # fmt: skip
EVENTS_PER_RELEASE = len(SCRIPT) + 1  # + the seal
# The pipeline also seals the releases it fills (a seal needs a sealing role, release-manager by default).
ROLES = {
    "pipeline": ["appender", "release-manager"],
    "tester": ["tester"],
    "qa": ["qa"],
    "clinical": ["clinical"],
}
_SIGNER_OF = {"test-run": "tester", "validation": "clinical", "approval": "qa"}


@contextlib.contextmanager
def scratch_database(tag: str, *, keep: bool) -> Iterator[str]:
    """A new empty database, dropped on the way out unless `keep`."""
    name = f"evl_bench_{tag}_{os.getpid()}_{secrets.token_hex(3)}"
    asyncio.run(execute_on(server_dsn(), f'CREATE DATABASE "{name}"'))
    try:
        yield database_dsn(server_dsn(), name)
    finally:
        if not keep:
            asyncio.run(execute_on(server_dsn(), f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class _Release:
    number: int
    script: list[str] = field(default_factory=lambda: list(reversed(SCRIPT)))

    @property
    def release(self) -> p.Release:
        return p.Release(f"bench-{self.number % PRODUCTS}", f"{self.number // PRODUCTS}.0")

    def artifacts(self) -> list[str]:
        return [_digest(f"release {self.number} artifact {k}") for k in range(3)]


def _predicate(kind: str, rel: _Release, n: int) -> tuple[str, Any]:  # noqa: PLR0911 - one per kind
    r, arts, when = rel.release, rel.artifacts(), "2026-11-27T06:00:00.000Z"
    if kind == "change":
        what = p.ChangeSummary(f"change {n}", "customer request", "low", "regression tests")
        return p.CHANGE, p.Change(r, f"CHG-{rel.number}-{n}", what, "medium", False, False, ["core"], "Dev")  # noqa: FBT003
    if kind == "build":
        named = [p.Artifact(f"analyzer-{k}.tar", f"sha256:{d}") for k, d in enumerate(arts)]
        return p.BUILD, p.Build(r, "git.example/analyzer", _digest(f"{n}")[:40], f"B{n}", "ci.example", named)
    if kind == "test-run":
        return p.TEST_RUN, p.TestRun(
            r, "integration", "pytest -q", "c0ffee" * 6, "ci", 1200 + n % 7, 0, 3, "passed"
        )
    if kind == "scan":
        return p.SCAN, p.Scan(r, "grype", "0.80.1", p.Findings(low=n % 4, info=2))
    if kind == "validation":
        dataset = p.Dataset("golden-panel", "2026.3", f"sha256:{arts[0]}")
        return p.VALIDATION, p.Validation(r, "sensitivity >= 0.98", dataset, "passed")
    if kind == "exception":
        return p.EXCEPTION, p.PolicyException(r, "scan-clean", "vendor fix pending (CVE triaged)", when, when)
    if kind == "approval":
        return p.APPROVAL, p.Approval(
            r, "qa", "approval", "approved", f"sha256:{arts[0]}", [n], when, "reviewed"
        )
    if kind == "deployment":
        return p.DEPLOYMENT, p.Deployment(r, "prod-eu", f"sha256:{arts[0]}", when, when, "succeeded")
    return GENERIC_TYPES[n % 2], {"documentNamespace": f"https://sbom.example/{n}", "packages": 180 + n % 9}


def _statement(predicate_type: str, predicate: object, subject: str, n: int) -> bytes:
    """A statement about `subject`; its subject's name carries `n`, so no two are the same statement."""
    return msgspec.json.encode(
        {
            "_type": "https://in-toto.io/Statement/v1",
            "subject": [{"name": f"analyzer-{n}.tar", "digest": {"sha256": subject}}],
            "predicateType": predicate_type,
            "predicate": msgspec.to_builtins(predicate),
        }
    )


@dataclass
class _Filler:
    keys: dict[str, SignerKey]
    rng: random.Random = field(default_factory=lambda: random.Random(4))
    active: list[_Release] = field(default_factory=list)
    next_release: int = 0
    to_seal: list[_Release] = field(default_factory=list)
    made: int = 0

    def item(self, kind: str, rel: _Release, seal: tuple[int, str] | None = None) -> Admitted:
        self.made += 1
        if seal is not None:
            predicate_type, predicate = p.RELEASE_SEAL, p.Seal(rel.release, seal[0], seal[1])
        else:
            predicate_type, predicate = _predicate(kind, rel, self.made)
        generic = kind == "generic"
        subject = rel.artifacts()[self.made % 3]
        signer = self.keys[_SIGNER_OF.get(kind, "pipeline")]
        payload = _statement(predicate_type, predicate, subject, self.made)
        envelope = sign_envelope(INTOTO_PAYLOAD_TYPE, payload, [signer])
        product, version = (None, None) if generic else (rel.release.product, rel.release.version)
        return Admitted(
            envelope,
            predicate_type,
            product,
            version,
            (f"sha256:{subject}",),
            None,
            (signer.verifier(),),
            seal,
            hashlib.sha256(pae(INTOTO_PAYLOAD_TYPE, payload)).digest(),
        )

    def batch(self, chains: Chains, size: int) -> list[Admitted]:
        """Seals first (their heads are known only once the batch before is planned), then evidence."""
        items = []
        for rel in self.to_seal:
            head = chains.releases[(rel.release.product, rel.release.version)]
            items.append(self.item("seal", rel, (head.seq + 1, head.leaf_hash.hex())))
        self.to_seal = []
        while len(items) < size:
            while len(self.active) < IN_FLIGHT:
                self.active.append(_Release(self.next_release))
                self.next_release += 1
            rel = self.active[self.rng.randrange(len(self.active))]
            items.append(self.item(rel.script.pop(), rel))
            if not rel.script:
                self.active.remove(rel)
                self.to_seal.append(rel)
        return items


async def fill(dsn: str, ledger_key: SignerKey, count: int) -> int:
    """Append about `count` entries (whole batches) to an initialised, empty-but-for-entry-0 ledger.

    Registers the pipeline, tester, qa and clinical keys first; returns the tree size.
    """
    store = await PostgresStore.connect(dsn, min_size=1, max_size=2)
    keys = {name: SignerKey.generate(f"{name}.bench/timeline") for name in ROLES}
    try:
        registry = await load_registry(store, ledger_key.verifier())
        chains = Chains()
        records = [
            KeyRegistered(k.verifier().format(), f"{n} (bench)", ROLES[n], []) for n, k in keys.items()
        ]
        registrations = [
            admit(sign_envelope(ADMIN_PAYLOAD_TYPE, encode_admin_record(r), [ledger_key]), registry, 2**62)
            for r in records
        ]
        filler = _Filler(keys)
        pending: list[Admitted] = registrations
        size = 0
        while True:
            async with store.append_transaction() as txn:
                head = await txn.head()
                plan = plan_batch(
                    head, [PendingRequest(pending)], registry, ledger_key, datetime.now(UTC), chains=chains
                )
                if plan.write is None:
                    raise plan.rejected[0]
                await txn.write(plan.write)
            registry, size = plan.registry, plan.write.head.tree_size
            for e in plan.write.entries:
                if e.release_seq is not None:
                    chains.releases[(e.product or "", e.version or "")] = ChainHead(
                        e.index, e.leaf_hash, e.release_seq, e.kind
                    )
            if size >= count:
                return size
            pending = filler.batch(chains, min(BATCH, count - size))
    finally:
        await store.close()


async def sealed_versions(dsn: str, product: str, want: int) -> tuple[int, int]:
    """A run of up to `want` consecutive versions `<n>.0` of `product`, all sealed, from the log's middle on.

    Returns (first n, last n). The fill numbers a product's releases in order, so
    its sealed versions past the middle are consecutive until the releases still open.
    """
    conn = await asyncpg.connect(dsn)
    try:
        middle = int(await conn.fetchval("SELECT tree_size FROM log_head")) // 2
        rows = await conn.fetch(
            "SELECT version FROM entries WHERE kind = $1 AND idx >= $2 AND product = $3 ORDER BY idx",
            p.RELEASE_SEAL,
            middle,
            product,
        )
    finally:
        await conn.close()
    numbers = sorted(int(r[0].split(".")[0]) for r in rows)
    if not numbers:
        raise SystemExit(f"no sealed release of {product} past the middle of the log: fill more entries")
    last = numbers[0]
    for n in numbers[1:want]:
        if n != last + 1:
            break
        last = n
    return numbers[0], last
