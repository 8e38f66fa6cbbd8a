"""HTTP load generator for the service benchmarks: wrk (C, epoll) driven by `loadgen.lua`.

The load runs in a separate process that is not the server under test and
costs little CPU per request (one wrk thread does tens of thousands of requests
a second), which matters on a 2-core machine where client and server share the
cores. Every run is bounded: wrk stops by itself after `seconds`, and this
module kills it if it has not exited 30 s after that.

Each connection is an HTTP/1.1 keep-alive connection with one request in
flight (closed loop): `connections` is the number of concurrent clients.
Latency is measured by wrk per request, from send to complete response.
A body file may hold several JSON bodies, one per line; requests take them in turn.
wrk counts responses with status >= 400 as errors; they are reported.

Run alone: `.venv/bin/python benchmarks/loadgen.py URL [--method POST --body-file F]
[--token T] [--connections 64] [--seconds 5] [--random LO HI]`; it prints the
rate, p50/p90/p99/max latency and error counts. Install wrk with
`apt-get install -y wrk`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LUA_SCRIPT = Path(__file__).resolve().with_name("loadgen.lua")
GRACE_SECONDS = 30.0  # beyond the run's own duration, before wrk is killed
REQUEST_TIMEOUT = "30s"  # per request: a 1,000-envelope batch may take seconds on a busy machine


@dataclass(frozen=True, slots=True)
class LoadResult:
    """What one bounded load run measured."""

    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    mean_ms: float
    errors: int  # connect/read/write errors, timeouts and responses with status >= 400
    error_detail: str

    @property
    def rate(self) -> float:
        """Completed requests per second."""
        return self.requests / self.seconds if self.seconds else 0.0


def wrk_binary() -> str:
    """The wrk executable; SystemExit with the install command when there is none."""
    found = shutil.which("wrk")
    if found is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    return found


def run_load(  # noqa: PLR0913 - each knob is one wrk/loadgen option, named at every call site
    url: str,
    *,
    method: str = "GET",
    body_file: Path | None = None,
    token: str | None = None,
    connections: int = 64,
    seconds: float = 5.0,
    threads: int = 1,
    random_range: tuple[int, int] = (0, 0),
) -> LoadResult:
    """Run wrk against `url` (its path may hold `{r}`) for `seconds`; return what it measured."""
    parts = urlsplit(url)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    base = f"{parts.scheme}://{parts.netloc}/"
    env = {
        **os.environ,
        "LOADGEN_METHOD": method,
        "LOADGEN_PATH": path or "/",
        "LOADGEN_BODY_FILE": str(body_file) if body_file else "",
        "LOADGEN_TOKEN": token or "",
        "LOADGEN_LO": str(random_range[0]),
        "LOADGEN_HI": str(random_range[1]),
    }
    command = [
        wrk_binary(),
        f"-t{min(threads, connections)}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={REQUEST_TIMEOUT}",
        f"-s{LUA_SCRIPT}",
        base,
    ]
    done = subprocess.run(  # noqa: S603 - wrk with arguments built here
        command, env=env, capture_output=True, text=True, timeout=seconds + GRACE_SECONDS, check=False
    )
    line = next((x for x in done.stdout.splitlines() if x.startswith("LOADGEN ")), None)
    if done.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    data = json.loads(line.removeprefix("LOADGEN "))
    kinds = ("connect", "read", "write", "status", "timeout")
    errors = sum(data[k] for k in kinds)
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1e3,
        p90_ms=data["p90_us"] / 1e3,
        p99_ms=data["p99_us"] / 1e3,
        max_ms=data["max_us"] / 1e3,
        mean_ms=data["mean_us"] / 1e3,
        errors=errors,
        error_detail=", ".join(f"{k}={data[k]}" for k in kinds if data[k]),
    )


def main() -> None:
    """Command line: one bounded run, printed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url", help="full URL; every {r} in it is replaced by a random integer per request")
    parser.add_argument("--method", default="GET")
    parser.add_argument(
        "--body-file", type=Path, help="request body (application/json); several: one per line, sent in turn"
    )
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--connections", type=int, default=64, help="concurrent keep-alive clients")
    parser.add_argument("--seconds", type=float, default=5.0, help="duration (the run stops by itself)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument("--random", type=int, nargs=2, default=(0, 0), metavar=("LO", "HI"))
    args = parser.parse_args()
    result = run_load(
        args.url,
        method=args.method,
        body_file=args.body_file,
        token=args.token,
        connections=args.connections,
        seconds=args.seconds,
        threads=args.threads,
        random_range=tuple(args.random),
    )
    print(
        f"{result.requests:,} requests in {result.seconds:.2f} s: {result.rate:,.0f} req/s; "
        f"latency p50 {result.p50_ms:.2f} ms, p90 {result.p90_ms:.2f} ms, p99 {result.p99_ms:.2f} ms, "
        f"max {result.max_ms:.2f} ms; errors {result.errors} {result.error_detail}".rstrip()
    )


if __name__ == "__main__":
    main()
