"""`lyricgen serve` under load: 10 clients posting a typical request for 30 s.

    python benchmarks/serve_latency.py checkpoints/default [--clients 10] [--seconds 30]

Starts the real server (`serve_main`, uvicorn) in a subprocess on a free loopback port, so
that the clients do not share its interpreter; measures the median latency of one client
alone (the baseline), then runs --clients threads, each posting `{"start": "星星",
"lines": 4, "line_length": 7, "seed": N}` with its own seeds back to back on a keep-alive
connection for --seconds. Prints a markdown table: requests, errors, throughput, p50/p90/
p99/max latency and p50 as a multiple of the baseline. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import harness as H

BODY = {"start": "星星", "lines": 4, "line_length": 7}


def start_server(run: Path) -> tuple[subprocess.Popen, str]:
    """The server in a subprocess on a free port, and its URL once it answers."""
    code = (
        "import sys; from pathlib import Path; from lyricgen.frontend.serve import serve_main; "
        "serve_main([Path(sys.argv[1])], port=0)"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(run)], stdout=subprocess.PIPE, text=True
    )
    line = proc.stdout.readline() if proc.stdout else ""  # "serving 1 run at http://..."
    if not line.startswith("serving"):
        proc.kill()
        sys.exit(f"the server did not start: {line.strip() or 'no output'}")
    return proc, line.split(" at ")[-1].strip()


def post(conn: http.client.HTTPConnection, seed: int) -> tuple[float, bool]:
    """One request's latency in seconds and whether it succeeded."""
    body = json.dumps({**BODY, "seed": seed}).encode("utf-8")
    t0 = time.perf_counter()
    try:
        conn.request("POST", "/api/generate", body, {"Content-Type": "application/json"})
        response = conn.getresponse()
        ok = response.status == 200 and bool(json.loads(response.read())["samples"])
    except (OSError, http.client.HTTPException, ValueError, KeyError):
        conn.close()  # reconnects on the next request
        ok = False
    return time.perf_counter() - t0, ok


def client(host: str, port: int, first_seed: int, deadline: float, out: list, limit: int) -> None:
    """Post back to back until the deadline (or `limit` requests)."""
    conn = http.client.HTTPConnection(host, port, timeout=60)
    for n in range(limit):
        if time.monotonic() >= deadline:
            break
        out.append(post(conn, first_seed + n))
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, nargs="?", default=Path("checkpoints/default"))
    ap.add_argument("--clients", type=int, default=10)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--baseline", type=int, default=20, help="requests of one client alone")
    args = ap.parse_args()

    proc, url = start_server(args.run)
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 80
        conn = http.client.HTTPConnection(host, port, timeout=60)
        post(conn, 0)  # warm up: first-use tables, caches
        alone = [post(conn, 10_000 + i) for i in range(args.baseline)]
        conn.close()
        base = H.median(t for t, _ in alone)

        results: list[list[tuple[float, bool]]] = [[] for _ in range(args.clients)]
        deadline = time.monotonic() + args.seconds
        threads = [
            threading.Thread(
                target=client, args=(host, port, 1_000_000 * (i + 1), deadline, results[i], 100_000)
            )
            for i in range(args.clients)
        ]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
    finally:
        proc.terminate()
        proc.wait(10)

    flat = [r for rs in results for r in rs]
    times = [t for t, ok in flat if ok]
    errors = sum(not ok for _, ok in flat)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"{H.machine_line()}, load average {load:.2f} (a shared machine: absolute times "
        f"drift); run {args.run}, NumPy backend\n"
    )
    print(f"request: POST /api/generate {json.dumps({**BODY, 'seed': 'N'}, ensure_ascii=False)}\n")

    def ms(values: list[float], q: float | None = None) -> str:
        """The median (q 50), another percentile (nearest rank) or the maximum, in ms."""
        x = max(values) if q is None else H.median(values) if q == 50 else H.percentile(values, q)
        return f"{x * 1e3:.0f}"

    solo = [t for t, _ in alone]
    rows = [["1 (alone)", "-", len(alone), sum(not ok for _, ok in alone), f"{1 / base:.1f}",
             ms(solo, 50), ms(solo, 90), ms(solo, 99), ms(solo), "1.0"]]  # fmt: skip
    if times:
        rows.append([args.clients, f"{elapsed:.0f}", len(flat), errors,
                     f"{len(times) / elapsed:.1f}", ms(times, 50), ms(times, 90), ms(times, 99),
                     ms(times), f"{H.median(times) / base:.1f}"])  # fmt: skip
    else:
        rows.append([args.clients, f"{elapsed:.0f}", len(flat), errors, *["-"] * 6])
    H.table(
        ["clients", "seconds", "requests", "errors", "req/s", "p50 ms", "p90 ms", "p99 ms",
         "max ms", "p50 / alone"],
        rows, "r" * 10,
    )  # fmt: skip


if __name__ == "__main__":
    main()
