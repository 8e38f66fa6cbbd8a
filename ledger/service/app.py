"""The Litestar application: wiring of store, sequencer and routes, configured from the environment.

`create_app(settings)` builds an app whose lifespan opens the database pool,
loads the key registry and runs the sequencer; `app_from_env()` is the factory
the ASGI server imports in each worker process.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from litestar import Litestar
from litestar.datastructures import State
from litestar.di import Provide
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.template.config import TemplateConfig

from ledger.append.bootstrap import load_registry
from ledger.append.sequencer import Sequencer
from ledger.core.keys import SignerKey, parse_signer_key
from ledger.query.proofs import ProofReader
from ledger.service import (
    access_log,
    routes_append,
    routes_audit,
    routes_bench,
    routes_blobs,
    routes_compliance,
    routes_index,
    routes_metrics,
    routes_ops,
    routes_read,
    routes_releases,
    routes_tiles,
    routes_traceability,
)
from ledger.service.availability import BodyBudget, BodyGuard, BodyWatch, UploadSlots
from ledger.service.console.pages import TEMPLATES
from ledger.service.console.routes import console_router
from ledger.service.errors import EXCEPTION_HANDLERS
from ledger.service.limits import (
    ENV_BLOB_STORE,
    ENV_DSN,
    ENV_KEY,
    ENV_PUBLIC_LOG,
    Limits,
    blob_location,
    return_freed_memory,
)
from ledger.service.openapi import (
    DocsPage,
    document_availability,
    document_request_bodies,
    document_security,
)
from ledger.service.state import ServiceState
from ledger.service.wire import refuse_nul_in_target
from ledger.service.witnessing_config import WitnessingConfig, witnessing_from_env
from ledger.storage.postgres import PostgresStore
from ledger.storage.postgres_anchors import PostgresAnchorStore
from ledger.storage.postgres_blobs import PostgresBlobStore
from ledger.storage.postgres_index import PostgresEvidenceIndex
from ledger.storage.postgres_sessions import PostgresSessionStore
from ledger.storage.protocol import BlobStore
from ledger.storage.s3_blobs import S3BlobStore
from ledger.storage.s3_location import S3Location


@dataclass(frozen=True, slots=True)
class Settings:
    """How one service process runs."""

    dsn: str
    signer: SignerKey
    pool_size: int = 10
    max_batch: int = 1000
    max_delay: float = 0.002
    max_pending: int = 20_000
    bench_routes: bool = False
    public_log: bool = False  # /checkpoint and /tile/* answer without a token (C2SP tile clients send none)
    limits: Limits = field(default_factory=Limits)  # body budget, body deadline, queue bytes
    witnessing: WitnessingConfig = field(default_factory=WitnessingConfig)  # witnesses, time-stamping
    access_log: bool = False  # one log line per request (EVLEDGER_ACCESS_LOG=1); costs ~10 % of appends
    blob_store: S3Location | None = (
        None  # where evidence files' bytes go; None: PostgreSQL (EVLEDGER_BLOB_STORE)
    )


def settings_from_env() -> Settings:
    """Settings from EVLEDGER_DSN and EVLEDGER_KEY (a path to the ledger's signer key file)."""
    dsn, key_path = os.environ.get(ENV_DSN), os.environ.get(ENV_KEY)
    if not dsn or not key_path:
        msg = f"set {ENV_DSN} and {ENV_KEY} (the ledger key file)"
        raise RuntimeError(msg)
    return Settings(
        dsn=dsn,
        signer=parse_signer_key(Path(key_path).read_text(encoding="utf-8")),
        pool_size=int(os.environ.get("EVLEDGER_POOL_SIZE", "10")),
        max_batch=int(os.environ.get("EVLEDGER_MAX_BATCH", "1000")),
        max_delay=float(os.environ.get("EVLEDGER_MAX_DELAY", "0.002")),
        bench_routes=os.environ.get("EVLEDGER_BENCH_ROUTES") == "1",
        public_log=os.environ.get(ENV_PUBLIC_LOG) == "1",
        limits=Limits.from_env(os.environ),
        witnessing=witnessing_from_env(os.environ),
        access_log=access_log.enabled(os.environ),
        blob_store=blob_location(os.environ.get(ENV_BLOB_STORE, "")),
    )


def create_app(settings: Settings) -> Litestar:
    """A Litestar app serving the ledger in `settings.dsn` (already initialised).

    The lifespan keeps the shared `ServiceState` in `app.state.svc`; routes get it as
    the `svc` dependency (the append route reads it directly: it is the hot path).
    """

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        store = await PostgresStore.connect(settings.dsn, min_size=2, max_size=settings.pool_size)
        owned = AsyncExitStack()
        try:
            blobs: BlobStore = PostgresBlobStore(store.pool)
            if settings.blob_store is not None:
                blobs = await owned.enter_async_context(S3BlobStore.open(store.pool, settings.blob_store))
            sequencer = Sequencer(
                store,
                settings.signer,
                await load_registry(store, settings.signer.verifier()),
                max_batch=settings.max_batch,
                max_delay=settings.max_delay,
                max_pending=settings.max_pending,
                max_pending_bytes=settings.limits.queue_bytes,
            )
            # The completeness index of every stored chain head, built before the first request.
            await sequencer.completeness.start(store)
            sequencer.start()
            svc = app.state.svc = ServiceState(
                store,
                PostgresEvidenceIndex(store.pool),
                sequencer,
                ProofReader(store),
                settings.signer,
                PostgresAnchorStore(store.pool),
                blobs,
                settings.limits.max_blob,
                UploadSlots(settings.limits.max_uploads),
                PostgresSessionStore(store.pool),
                settings.witnessing,
                public_log=settings.public_log,
            )
            # Beside the sequencer, never in its way: the task only reads checkpoints and adds anchors.
            witnessing = asyncio.create_task(svc.witnesses.run()) if settings.witnessing.enabled else None
            # Under `serve`, the other workers' scrapes read this one's counts from the shared files.
            publishing = asyncio.create_task(svc.keep_metrics_published()) if svc.metrics.shared else None
            # Everything built so far lives as long as the process: keep it out of the collector's
            # generations, so full collections (tens of ms at p99) stay short.
            gc.freeze()
            try:
                yield
            finally:
                for task in (witnessing, publishing):
                    if task is not None:
                        task.cancel()
                        await asyncio.gather(task, return_exceptions=True)
                await sequencer.stop()
                svc.retire_metrics()
        finally:
            await owned.aclose()
            await store.close()

    def provide_state(state: State) -> ServiceState:
        service: ServiceState = state.svc
        return service

    # This worker's, shared by every route.
    budget, watch = BodyBudget(settings.limits.body_budget), BodyWatch(settings.limits.body_timeout)
    bench = [routes_bench.bench_echo, routes_bench.bench_ping] if settings.bench_routes else []
    app = Litestar(
        route_handlers=[
            *bench,
            console_router,
            routes_append.append_entry,
            routes_compliance.compliance,
            routes_compliance.dossier,
            routes_compliance.evaluate_gate,
            routes_traceability.traceability,
            routes_traceability.soup,
            routes_append.append_batch,
            routes_read.latest_checkpoint,
            routes_read.tlog_checkpoint,
            routes_read.checkpoint_anchors,
            routes_read.entry,
            routes_read.entries,
            routes_read.inclusion_proof,
            routes_read.consistency_proof,
            routes_tiles.tile,
            routes_releases.release_timeline,
            routes_releases.artifact,
            routes_releases.search,
            routes_index.index_proof,
            routes_blobs.put_blob,
            routes_blobs.get_blob,
            routes_audit.list_releases,
            routes_audit.list_keys,
            routes_audit.list_policies,
            routes_metrics.delivery,
            routes_metrics.readiness,
            routes_ops.healthz,
            routes_ops.readyz,
            routes_ops.metrics,
        ],
        dependencies={"svc": Provide(provide_state, sync_to_thread=False)},
        exception_handlers=EXCEPTION_HANDLERS,
        template_config=TemplateConfig(directory=TEMPLATES, engine=JinjaTemplateEngine),
        before_request=refuse_nul_in_target,
        middleware=[DefineMiddleware(BodyGuard, budget=budget, watch=watch)],
        lifespan=[lifespan],
        openapi_config=OpenAPIConfig(
            title="evidence-ledger", version="1", path="/schema", render_plugins=[DocsPage("/schema")]
        ),
        debug=False,
    )
    document_request_bodies(app)
    document_security(app, public_log=settings.public_log)
    document_availability(app)
    if settings.access_log:
        access_log.install(app)  # outermost, around the router too: every request, one line
    return app


def app_from_env() -> Litestar:
    """ASGI factory for the server's worker processes."""
    return_freed_memory()  # the worker's memory falls back after a burst of big bodies
    return create_app(settings_from_env())
