"""Slow clients for the availability benchmark: a slowloris and slow bodies, in a process of their own.

- `headers`: each connection sends the start of a request head, then one more header byte
  a second, never finishing it (a slowloris; no token needed).
- `bodies`: each connection sends a complete head with a valid appender token and a
  Content-Length of 60,000 bytes, then one body byte a second.

A connection the server closes is opened again at once, so the attack holds `connections`
connections for its whole duration. At the end it prints one JSON line: connections
opened, connections the server closed, and the statuses it answered them with.

Run: `.venv/bin/python benchmarks/slow_clients.py MODE PORT SECONDS [--connections 1100] [--token T]`.
It runs apart from the probe client so that its event loop never delays the probe's timings.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import Counter

BODY_LENGTH = 60_000
DRIP_INTERVAL = 1.0  # seconds between the bytes each connection sends


class Attack:
    """`connections` slow clients of one kind against 127.0.0.1:`port`, for `seconds`."""

    def __init__(self, mode: str, port: int, token: str, connections: int) -> None:
        """Prepare the attack (nothing is opened yet)."""
        self.mode, self.port, self.token, self.connections = mode, port, token, connections
        self.opened = 0
        self.closed_by_server = 0
        self.refused = 0
        self.statuses: Counter[str] = Counter()

    def _head(self, n: int) -> bytes:
        if self.mode == "headers":
            return f"GET /v1/checkpoint HTTP/1.1\r\nHost: bench\r\nX-Slow-{n}: ".encode()
        return (
            f"POST /v1/entries HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {self.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {BODY_LENGTH}\r\n\r\n"
        ).encode()

    async def _one(self, n: int, until: float) -> None:
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                self.refused += 1
                await asyncio.sleep(0.1)
                continue
            self.opened += 1
            try:
                writer.write(self._head(n))
                answer = asyncio.create_task(reader.read(256))
                while time.monotonic() < until and not answer.done():
                    writer.write(b"a" if self.mode == "headers" else b" ")
                    await writer.drain()
                    await asyncio.wait([answer], timeout=DRIP_INTERVAL)
                if answer.done():
                    self.closed_by_server += 1
                    data = answer.result() if not answer.exception() else b""
                    self.statuses[data[9:12].decode(errors="replace") or "closed"] += 1
                else:
                    answer.cancel()
            except OSError:
                self.closed_by_server += 1
                self.statuses["reset"] += 1
            finally:
                writer.transport.abort()

    async def run(self, seconds: float) -> dict[str, object]:
        """Hold the connections for `seconds`; what happened to them."""
        until = time.monotonic() + seconds
        # Open them over about a second, as a real attacker's script would.
        tasks = []
        for n in range(self.connections):
            tasks.append(asyncio.create_task(self._one(n, until)))
            if n % 100 == 99:
                await asyncio.sleep(0.1)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.gather(*tasks)
        return {
            "mode": self.mode,
            "connections": self.connections,
            "opened": self.opened,
            "closed_by_server": self.closed_by_server,
            "refused": self.refused,
            "answers": dict(self.statuses),
        }


def main() -> None:
    """Run one attack and print what happened as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=["headers", "bodies"])
    parser.add_argument("port", type=int)
    parser.add_argument("seconds", type=float)
    parser.add_argument("--connections", type=int, default=1100)
    parser.add_argument("--token", default="", help="appender token (bodies)")
    args = parser.parse_args()
    attack = Attack(args.mode, args.port, args.token, args.connections)
    print(json.dumps(asyncio.run(attack.run(args.seconds))), flush=True)


if __name__ == "__main__":
    main()
