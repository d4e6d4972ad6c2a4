"""Replay throughput of fakellama against a minimal WSGI app, measured in the same run.

Run: python -m bench.bench_fakellama [--requests N] [--clients 1 4 16]
Prints a Markdown section: requests/s of each server per number of client processes,
with connections kept alive and with a new connection per request, and the ratio
fakellama / peer.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from fakellama.server import BackgroundServer, FakeServer

CHAT = json.dumps({"messages": [{"role": "user", "content": "Say hello."}]}).encode()
CONSTANT = b'{"status":"ok"}'


def peer_app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """The peer: a minimal WSGI app that reads the body and returns a constant."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    environ["wsgi.input"].read(length)
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(CONSTANT)))])
    return [CONSTANT]


def client(args: tuple[str, int, bool]) -> int:
    """Send count chat requests one after another; return how many got a 200.

    With reuse the connection is kept while the server keeps it (as requests' and
    httpx's pools do); without, every request opens a new one.
    """
    url, count, reuse = args
    parts = urlsplit(url)
    ok = 0
    conn: http.client.HTTPConnection | None = None
    for _ in range(count):
        if conn is None:
            conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                              timeout=10)
        conn.request("POST", "/v1/chat/completions", body=CHAT,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        ok += response.status == 200
        if not reuse or response.will_close:
            conn.close()
            conn = None
    if conn is not None:
        conn.close()
    return ok


def measure(url: str, total: int, clients: int, pool: Any, reuse: bool) -> float:
    """Return requests per second for total requests spread over clients processes."""
    pool.map(client, [(url, 20, reuse)] * clients)  # warm up
    started = time.perf_counter()
    done = sum(pool.map(client, [(url, total // clients, reuse)] * clients))
    elapsed = time.perf_counter() - started
    if done != (total // clients) * clients:
        raise SystemExit(f"{url}: only {done} requests succeeded")
    return float(done / elapsed)


MODES = ((True, "connections kept alive (as requests', httpx's and the SDK's pools do)"),
         (False, "a new connection per request"))


def main() -> None:
    """Measure both servers alternately per mode and client count; print a Markdown section."""
    from bench.machine import describe

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    rows: dict[bool, list[tuple[int, float, float]]] = {reuse: [] for reuse, _ in MODES}
    with FakeServer(strict=True) as fake, BackgroundServer(peer_app) as peer:
        for clients in args.clients:
            with multiprocessing.Pool(clients) as pool:
                for reuse, _ in MODES:
                    fake_rates, peer_rates = [], []
                    for _ in range(2):
                        peer_rates.append(measure(peer.url, args.requests, clients, pool, reuse))
                        fake_rates.append(measure(fake.url, args.requests, clients, pool, reuse))
                    rows[reuse].append((clients, max(peer_rates), max(fake_rates)))
    print("## Replay throughput of fakellama against a minimal WSGI app\n")
    print("Command: `python -m bench.bench_fakellama`  ")
    print(f"Machine: {describe()}\n")
    print(f"{args.requests} small chat requests (`Say hello.`, matched to a recorded fixture in "
          "strict mode) per measurement, sent one after another by each of N client processes "
          "on the same machine; each server measured twice, alternately, and the better run "
          "kept. The peer is a WSGI app that reads the body and returns a constant, on the "
          "same HTTP server (`fakellama.httpd`), so `fakellama / peer` is the cost of matching "
          "and replaying.\n")
    for reuse, title in MODES:
        print(f"### {title[0].upper()}{title[1:]}\n")
        print("| clients | peer requests/s | fakellama requests/s | fakellama / peer |")
        print("|---:|---:|---:|---:|")
        for clients, peer_rate, fake_rate in rows[reuse]:
            print(f"| {clients} | {peer_rate:.0f} | {fake_rate:.0f} | "
                  f"{fake_rate / peer_rate:.2f} |")
        print()
    worst = min(fake for _, _, fake in rows[True])
    print(f"Target ≥ 1,000 requests/s, judged on the kept-alive connections every client of "
          f"this project uses, at every client count: lowest {worst:.0f}/s, "
          f"{'met' if worst >= 1000 else 'not met'}. A new connection per request costs the "
          "server a thread and a handshake each, which the second table shows.")


if __name__ == "__main__":
    main()
