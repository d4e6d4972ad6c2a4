"""Pool throughput: requests per second over a pool of 1, 2 and 4 fakes, as ratios.

Run from the repository root: python -m bench.bench_pool [--requests N] [--threads T]
[--service S]

Each fake stands in for a llama-server with one slot: it serves one request at a time
(a lock held until the reply's last byte is sent) and takes ``--service`` seconds per
request (the fake's ``first_token_delay`` fault), so one server is the bottleneck and
the pool's routing is what is measured. ``--threads`` callers share one backend and
send ``--requests`` requests between them, half of them streamed. Rows give the median
requests/s of ``--runs`` runs and the ratio against one server reached directly
(a plain llamacpp backend), measured in the same run; the ideal ratio is N. A last
pair of rows has two servers, one four times slower than the other: there the ideal
is 1.25, and round robin is held to the pace of the slow one.

A second section, when llama-server is built (``python -m contracts.servers.build``),
runs multi-turn conversations over a pool of two real llama-servers (the scripted
model) with and without ``sticky``, and reports the prompt tokens each server had to
process (``timings.prompt_n``) and took from its cache (``timings.cache_n``).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench.machine import command_line, describe
from fakellama.app import FakeLlamaApp
from fakellama.server import BackgroundServer, load_fixtures
from pedrollm import Backend, InferenceRequest, Message, new_backend

MODULE = "bench.bench_pool"
PROMPT = "Say hello."  # the bundled chat-hello fixture


class OneSlot:
    """WSGI middleware: one request at a time, as a llama-server with ``-np 1`` serves."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        self.lock.acquire()
        try:
            body = self.app(environ, start_response)
        except BaseException:
            self.lock.release()
            raise
        return self._held(body)

    def _held(self, body: Iterable[bytes]) -> Iterator[bytes]:
        try:
            yield from body
        finally:
            close = getattr(body, "close", None)
            if close is not None:
                close()
            self.lock.release()


@contextmanager
def one_slot_fakes(services: list[float]) -> Iterator[list[str]]:
    """One-slot fakes taking the given seconds per request; their URLs."""
    fixtures = load_fixtures()
    with ExitStack() as stack:
        urls = []
        for service in services:
            app = FakeLlamaApp(fixtures, faults=f"first_token_delay={service}")
            server = stack.enter_context(BackgroundServer(OneSlot(app)))
            urls.append(server.url)
        yield urls


def drive(backend: Backend, requests: int, threads: int) -> float:
    """Send ``requests`` requests from ``threads`` threads; return requests/s."""
    req = InferenceRequest(user_prompt=PROMPT)

    def one(n: int) -> None:
        if n % 2:
            for _ in backend.stream(req):
                pass
        else:
            backend.infer(req)

    started = time.perf_counter()
    with ThreadPoolExecutor(threads) as workers:
        list(workers.map(one, range(requests)))
    return requests / (time.perf_counter() - started)


def measure(make: Callable[[], Backend], requests: int, threads: int, runs: int) -> float:
    """Median requests/s over ``runs`` runs, one warm-up request first."""
    rates = []
    with make() as backend:
        backend.infer(InferenceRequest(user_prompt=PROMPT))
        for _ in range(runs):
            rates.append(drive(backend, requests, threads))
    return statistics.median(rates)


def converse(backend: Backend, conversations: int, turns: int) -> tuple[int, int, int]:
    """Run the conversations turn by turn, interleaved; (processed, cached, requests)."""
    histories = [[Message.system(f"Conversation {c}. " + " ".join(
        f"Rule {i}: answer briefly and stay on topic." for i in range(30)))]
        for c in range(conversations)]
    processed = cached = asked = 0
    for turn in range(turns):
        for history in histories:
            history.append(Message.user(f"Question {turn}: what comes next?"))
            reply = backend.infer(InferenceRequest(messages=list(history), max_tokens=16))
            history.append(Message.assistant(reply.text))
            timings = reply.timings
            processed += (timings.prompt_n or 0) if timings else 0
            cached += (timings.cache_n or 0) if timings else 0
            asked += 1
    return processed, cached, asked


def sticky_section(conversations: int, turns: int) -> None:
    """Print the prompt-cache effect of sticky routing on two real llama-servers."""
    from contracts.servers.llama_server import LlamaServer
    from contracts.servers.pytest_fixtures import find_llama_server
    from contracts.servers.scripted_model import write_scripted_model

    print("\n## Sticky routing and llama-server's prompt cache\n")
    binary = find_llama_server(require=False)
    if binary is None:
        print("Not measured: llama-server is not built here "
              "(`python -m contracts.servers.build`).")
        return
    rows = []
    with tempfile.TemporaryDirectory() as work:
        model = write_scripted_model(Path(work) / "scripted.gguf")
        for sticky in (True, False):
            # Fresh servers for each mode, so neither starts with the other's cache.
            with LlamaServer(binary, model, ctx_size=16384) as one, \
                    LlamaServer(binary, model, ctx_size=16384) as two:
                pool = new_backend({"type": "pool", "strategy": "round_robin",
                                    "sticky": sticky,
                                    "servers": [{"server_url": one.url},
                                                {"server_url": two.url}]})
                with pool:
                    rows.append((sticky, *converse(pool, conversations, turns)))
    base = rows[0][1]
    print(f"{conversations} conversations of {turns} turns each, interleaved, over a pool "
          "of two llama-servers (scripted model, `--ctx-size 16384`, default slots), "
          "`round_robin`; tokens summed over every request. Without `sticky`, round robin "
          "sends each conversation to the other server every turn (an odd number of "
          "conversations over two servers), whose cache holds it as of two turns "
          "before.\n")
    print("| sticky | prompt tokens processed | per request | taken from the cache "
          "| processed, ratio vs sticky |")
    print("|---|---:|---:|---:|---:|")
    for sticky, processed, cached, asked in rows:
        print(f"| {'yes' if sticky else 'no'} | {processed} | {processed / asked:.0f} "
              f"| {cached} | {processed / base:.2f} |")


def main(argv: list[str] | None = None) -> int:
    """Print the Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=80)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--service", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1, 2, 4])
    # Odd, so that round robin without sticky moves each conversation every turn.
    parser.add_argument("--conversations", type=int, default=5)
    parser.add_argument("--turns", type=int, default=6)
    args = parser.parse_args(argv)
    rows: list[tuple[str, float]] = []
    with one_slot_fakes([args.service]) as (url,):
        direct = measure(lambda: new_backend({"server_url": url}), args.requests,
                         args.threads, args.runs)
    rows.append(("1 server, plain llamacpp backend (baseline)", direct))
    # The last case: two servers, one four times slower (a smaller GPU, a CPU box).
    cases = [(f"pool of {size}", [args.service] * size) for size in args.sizes]
    cases.append(("pool of 2, one 4x slower", [args.service, 4 * args.service]))
    for label, services in cases:
        for strategy in ("least_busy", "round_robin"):
            with one_slot_fakes(services) as urls:
                def make(urls: list[str] = urls, strategy: str = strategy) -> Backend:
                    return new_backend({"type": "pool", "strategy": strategy,
                                        "servers": [{"server_url": u} for u in urls]})
                rate = measure(make, args.requests, args.threads, args.runs)
            rows.append((f"{label}, {strategy}", rate))
    print("## Pool throughput over 1, 2 and 4 servers\n")
    print(f"Command: `{command_line(MODULE)}`\n")
    print(f"Machine: {describe()}\n")
    print(f"Each server: a one-slot fakellama taking {args.service:g} s a request; "
          f"{args.threads} threads share one backend and send {args.requests} requests "
          f"(half streamed); median of {args.runs} runs.\n")
    print("| backend | requests/s | ratio vs baseline |")
    print("|---|---:|---:|")
    for name, rate in rows:
        print(f"| {name} | {rate:.1f} | {rate / direct:.2f} |")
    sticky_section(args.conversations, args.turns)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
