"""Replay throughput of fakellama against a minimal werkzeug app, measured in the same run.

Run: python -m bench.bench_fakellama [--requests N] [--clients 1 4 16]
Prints a Markdown section: requests/s of each server per number of client processes
and the ratio fakellama / peer.
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


def client(args: tuple[str, int]) -> int:
    """Send count chat requests sequentially; return how many got a 200."""
    url, count = args
    parts = urlsplit(url)
    ok = 0
    for _ in range(count):
        conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
        conn.request("POST", "/v1/chat/completions", body=CHAT,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        ok += response.status == 200
        conn.close()
    return ok


def measure(url: str, total: int, clients: int, pool: Any) -> float:
    """Return requests per second for total requests spread over clients processes."""
    pool.map(client, [(url, 20)] * clients)  # warm up
    started = time.perf_counter()
    done = sum(pool.map(client, [(url, total // clients)] * clients))
    elapsed = time.perf_counter() - started
    if done != (total // clients) * clients:
        raise SystemExit(f"{url}: only {done} requests succeeded")
    return float(done / elapsed)


def main() -> None:
    """Measure both servers alternately for each client count; print a Markdown section."""
    from bench.machine import describe

    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 4, 16])
    args = parser.parse_args()
    rows = []
    with FakeServer(strict=True) as fake, BackgroundServer(peer_app) as peer:
        for clients in args.clients:
            with multiprocessing.Pool(clients) as pool:
                fake_rates, peer_rates = [], []
                for _ in range(2):
                    peer_rates.append(measure(peer.url, args.requests, clients, pool))
                    fake_rates.append(measure(fake.url, args.requests, clients, pool))
            rows.append((clients, max(peer_rates), max(fake_rates)))
    best = max(fake for _, _, fake in rows)
    print("## Replay throughput of fakellama against a minimal werkzeug app\n")
    print("Command: `python -m bench.bench_fakellama`  ")
    print(f"Machine: {describe()}\n")
    print(f"{args.requests} chat requests per measurement (a new connection each, as werkzeug's "
          "server closes every connection), spread over N client processes; each server "
          "measured twice, alternately, and the better run kept. The peer is a WSGI app "
          "that reads the body and returns a constant, on the same server.\n")
    print("| clients | peer requests/s | fakellama requests/s | fakellama / peer |")
    print("|---:|---:|---:|---:|")
    for clients, peer_rate, fake_rate in rows:
        print(f"| {clients} | {peer_rate:.0f} | {fake_rate:.0f} | {fake_rate / peer_rate:.2f} |")
    print(f"\nTarget ≥ 1,000 requests/s: best {best:.0f}/s, "
          f"{'met' if best >= 1000 else 'not met'}.")


if __name__ == "__main__":
    main()
