"""A real HTTP proxy between a command and a live server, which may alter one answer (an attack).

A thread of `http.server` forwards every GET, with its Authorization header, to the
upstream server and hands the answer to `alter` first, if set: a test stands for a server
that withholds, swaps or changes what it serves, and the command must fail naming it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import httpx
from ledger_harness import free_port

# Alter an answer: (path with query, status, body) -> (status, body)
Alter = Callable[[str, int, bytes], tuple[int, bytes]]


@dataclass
class Proxy:
    """A real HTTP server forwarding GETs to `upstream`; `alter` may change one answer."""

    upstream: str
    url: str = ""
    alter: Alter | None = None
    server: ThreadingHTTPServer | None = field(default=None, repr=False)

    def __enter__(self) -> Self:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() == "authorization"}
                answer = httpx.get(proxy.upstream + self.path, headers=headers, timeout=30)
                status, body = answer.status_code, answer.content
                if proxy.alter is not None:
                    status, body = proxy.alter(self.path, status, body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: object) -> None:
                return

        port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(self, *_: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
