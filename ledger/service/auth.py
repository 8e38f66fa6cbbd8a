"""Who may call which route: bearer tokens, the role sets, and the one check each route declares.

A route declares who may call it once, in its decorator, as the provider of its shared
state: `dependencies=READ` (any token), `dependencies=APPEND` (an appender's or an
admin's), `dependencies=LOG_READ` (the C2SP log routes: any token, or none under
`serve --public-log`). The handler's `svc` is then handed over only once the request's
bearer token passed (401 without a known, live one; 403 when its role is not among the
route's), and the `Token` is `request.auth`. The probes read no credential and say so
with `opt=NO_AUTH`; tests/unit/test_service_access.py holds every route to one of these.

Why a dependency and not a Litestar guard: Litestar copies the route handler for every
guard it runs, about 9 µs a request, several per cent of a proof route's whole server
time; the dependency costs what the `Authorization` header parameter each handler read
before did. It reads the header from the request, not as a declared header parameter:
OpenAPI 3.1 ignores a header parameter named `Authorization`; the document declares the
`bearer` security scheme instead (ledger.service.openapi). For the same reason `POST
/v1/entries`, the measured hot path, which skips dependency injection altogether, checks
its token itself, with `APPEND_ROLES`.

What a token may append (admin records, its products) is its scope: the Appender applies
it to each admitted envelope through `Token.authorize`, and the gate route to the release
it is asked about through `Token.require_product`. ledger.service.openapi documents the
same declarations in the OpenAPI document; docs/http-api.md describes them for clients.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from litestar import Request
from litestar.di import Provide
from litestar.handlers import HTTPRouteHandler

from ledger.errors import PermissionDeniedError, UnauthenticatedError
from ledger.rules.admission import Admitted
from ledger.storage.migrate import TOKEN_ROLES, hash_token
from ledger.storage.protocol import LogStore, TokenRow

ROLE_APPENDER, ROLE_AUDITOR, ROLE_ADMIN = TOKEN_ROLES
APPEND_ROLES = frozenset({ROLE_APPENDER, ROLE_ADMIN})
READ_ROLES = frozenset(TOKEN_ROLES)
TOKEN_CACHE_SECONDS = 1.0  # how late a revocation may take effect (see `Tokens.authenticate`)


@dataclass(frozen=True, slots=True)
class Token:
    """An authenticated bearer token: its grants, and the Appender's `Client` for what it appends."""

    row: TokenRow

    @property
    def client_id(self) -> int:
        """The token's id: its idempotency keys are its own."""
        return self.row.token_id

    def authorize(self, admitted: Admitted) -> None:
        """PermissionDeniedError unless this token may append `admitted`: its kind and its product."""
        if admitted.admin is not None and self.row.role != ROLE_ADMIN:
            raise PermissionDeniedError(f"admin records need a token with role {ROLE_ADMIN!r}")
        products = self.row.products
        if products and admitted.product not in products:
            raise PermissionDeniedError(
                f"this token may append only for {sorted(products)}, "
                f"not for {admitted.product or 'a statement that names no product'}"
            )

    def require_product(self, product: str) -> None:
        """PermissionDeniedError unless this token may act for `product` (a gate decision about it)."""
        if self.row.products and product not in self.row.products:
            raise PermissionDeniedError(f"this token may not act for product {product!r}")


class Tokens:
    """The bearer tokens the store knows, each read at most every TOKEN_CACHE_SECONDS per worker."""

    def __init__(self, store: LogStore) -> None:
        """Tokens looked up in `store` by their hash."""
        self._store = store
        self._cache: dict[bytes, tuple[Token, float]] = {}

    async def authenticate(self, authorization: str | None, roles: frozenset[str]) -> Token:
        """The token `authorization` presents: 401 unless known and live, 403 unless its role is in `roles`.

        A token's row is cached for TOKEN_CACHE_SECONDS, so a revocation reaches every
        worker of every service process within that time (one indexed read per token,
        worker and period); the expiry is checked against the clock on every request.
        """
        scheme, _, secret = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise UnauthenticatedError("send Authorization: Bearer <token>")
        digest = hash_token(secret.strip())
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is not None and cached[1] > now:
            token = cached[0]
        else:
            # The deadline counts from before the read: a row read before a revocation committed
            # is served no later than TOKEN_CACHE_SECONDS after that commit.
            found = await self._store.token(digest)
            if found is None:
                raise UnauthenticatedError("unknown token")
            token = Token(found)
            self._cache[digest] = (token, now + TOKEN_CACHE_SECONDS)
        return admit(token, roles)


def admit(token: Token, roles: frozenset[str]) -> Token:
    """`token` if it is live and its role is in `roles`: 401 when revoked or expired, 403 for another role.

    The one check every credential passes, a bearer token or a console session standing for one.
    """
    row = token.row
    if row.expires_at is not None or row.revoked_at is not None:
        refusal = row.refusal(datetime.now(UTC))
        if refusal is not None:
            raise UnauthenticatedError(f"{refusal}; ask the ledger's operator for a new one")
    if row.role not in roles:
        raise PermissionDeniedError(f"a token with role {row.role!r} may not do this")
    return token


@dataclass(frozen=True, slots=True)
class Access:
    """The check a route's shared state is provided through: the token the route needs.

    `roles`: the roles that may call the route. `public_log`: under `serve --public-log` a
    request that sends no credential is let in too, with `request.auth` None (C2SP tile
    clients send none); a credential that is sent is still checked, so a bad one is a 401.
    A route declares it once, as the provider of its `svc` dependency (`dependencies=READ`).
    """

    roles: frozenset[str]
    public_log: bool = False

    async def __call__(self, request: Request[Any, Any, Any]) -> object:
        """The app's `ServiceState`, once the request's token passed; the token becomes `request.auth`.

        Precondition: the app keeps its `ServiceState` in `app.state.svc` (ledger.service.app),
        the one Litestar hands the handler as its `svc` (typed there: its module imports this one).
        """
        svc = request.app.state.svc
        authorization = request.headers.get("authorization")  # the first one, as a header parameter read it
        if authorization is None and self.public_log and svc.public_log:
            request.scope["auth"] = None
            return svc
        tokens: Tokens = svc.tokens
        request.scope["auth"] = await tokens.authenticate(authorization, self.roles)
        return svc


def _requires(access: Access) -> dict[str, Provide]:
    return {"svc": Provide(access)}


def access_of(handler: HTTPRouteHandler) -> Access | None:
    """The access check a route declares (the provider of its `svc`), None when it declares none."""
    provider = handler.resolve_dependencies().get("svc")
    dependency = getattr(provider, "dependency", None)
    return dependency if isinstance(dependency, Access) else None


READ = _requires(Access(READ_ROLES))
"""Any token: the read routes."""
APPEND = _requires(Access(APPEND_ROLES))
"""An appender's or an admin's token: appends and gate decisions."""
LOG_READ = _requires(Access(READ_ROLES, public_log=True))
"""The C2SP log routes (`/checkpoint`, `/tile/*`): any token, or none when the log is public."""
