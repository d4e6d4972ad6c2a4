"""Replay throughput of fakellama against a minimal werkzeug app, measured in the same run.

Run: python bench/bench_fakellama.py [--requests N] [--clients C]
Prints requests/s for each server and the ratio fakellama / peer.
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
    """Run both servers, measure each twice alternately, print rates and the ratio."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--clients", type=int, default=2)
    args = parser.parse_args()
    with FakeServer(strict=True) as fake, BackgroundServer(peer_app) as peer, \
            multiprocessing.Pool(args.clients) as pool:
        fake_rates, peer_rates = [], []
        for _ in range(2):
            peer_rates.append(measure(peer.url, args.requests, args.clients, pool))
            fake_rates.append(measure(fake.url, args.requests, args.clients, pool))
    fake_rate, peer_rate = max(fake_rates), max(peer_rates)
    print(f"peer (minimal werkzeug app): {peer_rate:8.0f} requests/s")
    print(f"fakellama (chat replay):     {fake_rate:8.0f} requests/s")
    print(f"ratio fakellama / peer:      {fake_rate / peer_rate:8.2f}")
    print(f"target >= 1000 requests/s:  {'met' if fake_rate >= 1000 else 'NOT met'}")


if __name__ == "__main__":
    main()
