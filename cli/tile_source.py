"""The tiles of a log served over HTTP: the CLI's `TileSource` for `verify-log --server URL`.

`ledger.verify.tile_source` defines the interface and the directory copy; this
source reads the same C2SP tlog-tiles paths (`GET /checkpoint`, `GET /tile/...`,
docs/formats.md) from a ledger server through the CLI's HTTP client. Nothing
read here is trusted: the walk checks every byte against the signed checkpoint.
"""

from __future__ import annotations

from cli.client import LedgerClient
from ledger.errors import TooLargeError


class HttpTiles:
    """Tiles from a ledger server (`GET /checkpoint`, `GET /tile/...`) through one LedgerClient."""

    def __init__(self, client: LedgerClient, server: str) -> None:
        """Read through `client`, which talks to `server` (the base URL, used in messages)."""
        self._client = client
        self._server = server.rstrip("/")

    def describe(self, path: str) -> str:
        """The URL of `path`."""
        return f"{self._server}/{path}"

    def read(self, path: str, limit: int) -> bytes:
        """GET `/path`; LedgerError for an error status, UnavailableError when the server is unreachable."""
        data = self._client.get(f"/{path}").content
        if len(data) > limit:
            raise TooLargeError(f"{self.describe(path)} is over {limit} bytes")
        return data
