"""Client overhead: pedrollm against openai-python (and ollama-python) on the same fakellama.

Run from the repository root: python -m bench.bench_client_overhead [--rounds N]

fakellama runs in its own process with no fault latency, so every millisecond of CPU
the client process spends is the client's own. All clients run in this one process,
interleaved request by request (the order rotates every round), on the same fixture
and byte-identical request bodies. The table gives per-request wall time and client
CPU time (median and p95) and their ratio against openai-python; the streamed-chunk
row is the marginal cost of one more chunk: (long stream - short stream) / extra chunks.
A cProfile of pedrollm follows, grouped by package.
"""

from __future__ import annotations

import argparse
import cProfile
import http.client
import json
import pstats
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from bench.machine import command_line, describe
from fakellama.fixtures import bundled_dir

MODULE = "bench.bench_client_overhead"
MODEL = "scripted-tiny.gguf"
SHORT_PROMPT = "Say hello."  # the bundled chat-hello fixture
LONG_PROMPT = "Count words for the streaming benchmark."
SERVER_START_TIMEOUT = 30.0
PACKAGES = ["pedrollm", "requests", "urllib3", "openai", "httpx", "pydantic", "ollama",
            "dataclasses-json"]

Call = Callable[[], int]


class Client(Protocol):
    """What every measured client offers."""

    def infer(self, prompt: str) -> int:
        """Send one chat request."""

    def stream(self, prompt: str) -> int:
        """Consume one streamed reply."""

    def match(self, prompt: str, stream: bool) -> str:
        """Return the fixture the fake matched."""

    def close(self) -> None:
        """Release connections."""


def calls_of(clients: dict[str, Client], method: str, prompt: str) -> dict[str, Call]:
    """Return, for each client, its bound method called with the prompt."""
    return {name: partial(getattr(client, method), prompt) for name, client in clients.items()}


# -- the fake server, in its own process ---------------------------------------------------


def write_fixtures(directory: Path, long_tokens: int) -> None:
    """Copy the bundled llama.cpp fixtures and add one long reply for the stream rows."""
    for source in bundled_dir("llamacpp").glob("*.json"):
        shutil.copy(source, directory / source.name)
    hello = json.loads((directory / "chat-hello.json").read_text(encoding="utf-8"))
    words = " ".join(f"w{i}" for i in range(long_tokens))
    long_fixture = json.loads(json.dumps(hello))
    long_fixture["name"] = "bench-long-reply"
    long_fixture["request"]["body"]["messages"][0]["content"] = LONG_PROMPT
    long_fixture["response"]["body"]["choices"][0]["message"]["content"] = words
    long_fixture["response"]["body"]["usage"]["completion_tokens"] = long_tokens
    long_fixture["response"]["body"]["usage"]["total_tokens"] = long_tokens + 20
    long_fixture["metadata"] = {"authored": "by hand", "note": "written by bench_client_overhead"}
    (directory / "bench-long-reply.json").write_text(json.dumps(long_fixture), encoding="utf-8")


@contextmanager
def fake_server(fixtures: Path, personality: str, close_each: bool = False) -> Iterator[str]:
    """Run `python -m fakellama serve` on a free loopback port; yield its URL.

    With close_each the fake closes every connection after one reply
    (``--keep-alive-max 1``); otherwise it keeps them as llama-server does.
    """
    command = [sys.executable, "-m", "fakellama", "serve", "--port", "0", "--strict",
               "--fixtures", str(fixtures), "--personality", personality]
    if close_each:
        command += ["--keep-alive-max", "1"]
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        line = ""
        while time.monotonic() < deadline and proc.poll() is None:
            ready, _, _ = select.select([proc.stdout], [], [], 0.5)
            if ready:
                line = proc.stdout.readline()
                break
        if "listening on " not in line:
            raise SystemExit(f"fakellama did not start: {line!r}")
        # Keep reading what the server prints, so a full pipe can never block it.
        threading.Thread(target=proc.stdout.read, daemon=True).start()
        yield line.split("listening on ", 1)[1].strip()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


# -- the clients ---------------------------------------------------------------------------


def chat_body(prompt: str, stream: bool) -> dict[str, Any]:
    """Return the body every client sends (pedrollm's, which the others are made to match)."""
    body: dict[str, Any] = {"messages": [{"role": "user", "content": prompt}], "model": MODEL}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


class FloorClient:
    """The floor: one kept-alive http.client connection, json.dumps out, json.loads in."""

    def __init__(self, url: str, path: str = "/v1/chat/completions") -> None:
        parts = urlsplit(url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port,
                                               timeout=30)
        self.path = path
        self.headers = {"Content-Type": "application/json"}

    def infer(self, prompt: str) -> int:
        """Send one chat request; return 1 (one reply)."""
        self.conn.request("POST", self.path, body=json.dumps(chat_body(prompt, False)),
                          headers=self.headers)
        response = self.conn.getresponse()
        data = json.loads(response.read())
        return 1 if data["choices"] else 0

    def stream(self, prompt: str) -> int:
        """Send one streamed request; decode every SSE data line; return the event count."""
        self.conn.request("POST", self.path, body=json.dumps(chat_body(prompt, True)),
                          headers=self.headers)
        response = self.conn.getresponse()
        events = 0
        for line in response:
            if line.startswith(b"data: "):
                payload = line[6:].strip()
                if payload != b"[DONE]":
                    json.loads(payload)
                events += 1
        return events

    def match(self, prompt: str, stream: bool) -> str:
        """Return the fixture and match level the fake reports for this client's request."""
        self.conn.request("POST", self.path, body=json.dumps(chat_body(prompt, stream)),
                          headers=self.headers)
        response = self.conn.getresponse()
        response.read()
        fixture, level = response.getheader("X-Fakellama-Fixture"), response.getheader(
            "X-Fakellama-Match")
        return f"{fixture}/{level}"

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class PedroClient:
    """pedrollm through the backend a user gets from new_backend."""

    def __init__(self, url: str, backend_type: str, callers_session: bool = False) -> None:
        import requests

        from pedrollm import InferenceRequest, new_backend

        self.request_type = InferenceRequest
        # A caller's session goes through Session.request on every call (all its
        # settings honoured); the SDK's own takes the prepared-once path.
        session = requests.Session() if callers_session else None
        self.backend = new_backend({"type": backend_type, "server_url": url,
                                    "model_name": MODEL}, session=session)

    def infer(self, prompt: str) -> int:
        """Send one chat request; return 1 when a reply came."""
        reply = self.backend.infer(self.request_type(user_prompt=prompt))
        return 1 if reply.text else 0

    def stream(self, prompt: str) -> int:
        """Consume one streamed reply; return the number of deltas."""
        return sum(1 for _ in self.backend.stream(self.request_type(user_prompt=prompt)))

    def match(self, prompt: str, stream: bool) -> str:
        """Return the fixture and match level the fake reports for this client's request."""
        body = self.backend.chat_body(self.request_type(user_prompt=prompt), stream=stream)
        resp = self.backend.client.request("POST", "/v1/chat/completions", json_body=body,
                                           stream=stream)
        headers = resp.headers
        resp.close()
        return f"{headers.get('X-Fakellama-Fixture')}/{headers.get('X-Fakellama-Match')}"

    def close(self) -> None:
        """Close the backend."""
        self.backend.close()


class OpenAIClient:
    """openai-python's synchronous client, pointed at the fake's /v1."""

    def __init__(self, url: str) -> None:
        import openai

        self.client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0)

    def infer(self, prompt: str) -> int:
        """Send one chat request; return 1 when a reply came."""
        reply = self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}])
        return 1 if reply.choices[0].message.content else 0

    def stream(self, prompt: str) -> int:
        """Consume one streamed reply; return the number of chunks."""
        chunks = self.client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}], stream=True,
            stream_options={"include_usage": True})
        return sum(1 for _ in chunks)

    def match(self, prompt: str, stream: bool) -> str:
        """Return the fixture and match level the fake reports for this client's request."""
        kwargs: dict[str, Any] = {"stream": True, "stream_options": {"include_usage": True}}
        raw = self.client.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": prompt}],
            **(kwargs if stream else {}))
        parsed = raw.parse()
        if stream:
            sum(1 for _ in parsed)
        return f"{raw.headers.get('X-Fakellama-Fixture')}/{raw.headers.get('X-Fakellama-Match')}"

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()


class OllamaClient:
    """ollama-python's synchronous client (Ollama's native /api/chat, NDJSON when streamed)."""

    def __init__(self, url: str) -> None:
        import ollama

        self.url = url
        self.client = ollama.Client(host=url)

    def infer(self, prompt: str) -> int:
        """Send one chat request; return 1 when a reply came."""
        reply = self.client.chat(model=MODEL, messages=[{"role": "user", "content": prompt}])
        return 1 if reply.message.content else 0

    def stream(self, prompt: str) -> int:
        """Consume one streamed reply; return the number of chunks."""
        chunks = self.client.chat(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                  stream=True)
        return sum(1 for _ in chunks)

    def match(self, prompt: str, stream: bool) -> str:
        """Return the fixture and match level the fake reports for this client's request."""
        import ollama

        seen: dict[str, str] = {}

        def keep_headers(response: Any) -> None:
            seen.update(response.headers)

        # A client of its own, so the measured one carries no response hook.
        with ollama.Client(host=self.url, event_hooks={"response": [keep_headers]}) as client:
            reply = client.chat(model=MODEL, messages=[{"role": "user", "content": prompt}],
                                stream=stream)
            if stream:
                sum(1 for _ in reply)
        return f"{seen.get('x-fakellama-fixture')}/{seen.get('x-fakellama-match')}"

    def close(self) -> None:
        """Close the client's connection pool."""
        self.client.close()


def ollama_native_answers(url: str) -> str | None:
    """Return None when the fake serves Ollama's /api/chat, else what it answered."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": SHORT_PROMPT}],
                           "stream": False})
        conn.request("POST", "/api/chat", body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        text = response.read()[:80].decode("utf-8", "replace")
        return None if response.status == 200 else f"HTTP {response.status}: {text.strip()}"
    finally:
        conn.close()


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Samples:
    """Per-request wall and client-CPU times (seconds) of one client in one scenario."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    units: int = 0


def percentile(values: list[float], q: float) -> float:
    """Return the q-quantile (0..1) of values, nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def interleave(calls: dict[str, Call], rounds: int, warmup: int) -> dict[str, Samples]:
    """Run every call once per round, rotating the order; keep the rounds after warmup."""
    names = list(calls)
    out = {name: Samples() for name in names}
    for round_no in range(warmup + rounds):
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            call = calls[name]
            wall0, cpu0 = time.perf_counter(), time.thread_time()
            units = call()
            cpu1, wall1 = time.thread_time(), time.perf_counter()
            if round_no >= warmup:
                out[name].wall.append(wall1 - wall0)
                out[name].cpu.append(cpu1 - cpu0)
                out[name].units = units
    return out


@dataclass
class Row:
    """One table row: a scenario, a client and its statistics in milliseconds."""

    scenario: str
    client: str
    wall_median: float
    wall_p95: float
    cpu_median: float
    cpu_p95: float
    units: str


def rows_for(scenario: str, samples: dict[str, Samples], unit: str) -> list[Row]:
    """Summarise samples into rows (milliseconds)."""
    rows = []
    for name, s in samples.items():
        rows.append(Row(scenario, name, 1e3 * statistics.median(s.wall),
                        1e3 * percentile(s.wall, 0.95), 1e3 * statistics.median(s.cpu),
                        1e3 * percentile(s.cpu, 0.95), f"{s.units} {unit}"))
    return rows


def ratio(value: float, peer: float) -> str:
    """Format value / peer."""
    return f"{value / peer:.2f}x" if peer > 0 else "n/a"


def versus(rows: list[Row], scenario: str, client: str, peer: str) -> str:
    """One scenario's CPU and wall ratios of client against peer, as words."""
    mine = next(r for r in rows if r.scenario == scenario and r.client == client)
    theirs = next(r for r in rows if r.scenario == scenario and r.client == peer)
    return (f"{scenario} CPU {ratio(mine.cpu_median, theirs.cpu_median)}, "
            f"wall {ratio(mine.wall_median, theirs.wall_median)}")


def table(rows: list[Row], peer: str) -> str:
    """Return the Markdown table; ratios are against the peer client in the same scenario."""
    lines = [
        "| scenario | client | wall median ms | wall p95 ms | client CPU median ms "
        f"| client CPU p95 ms | wall / {peer} | CPU / {peer} | per request |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        base = next((r for r in rows if r.scenario == row.scenario and r.client == peer), None)
        lines.append(
            f"| {row.scenario} | {row.client} | {row.wall_median:.3f} | {row.wall_p95:.3f} "
            f"| {row.cpu_median:.3f} | {row.cpu_p95:.3f} "
            f"| {ratio(row.wall_median, base.wall_median) if base else 'n/a'} "
            f"| {ratio(row.cpu_median, base.cpu_median) if base else 'n/a'} | {row.units} |"
        )
    return "\n".join(lines)


@dataclass
class ChunkCost:
    """Marginal cost of one streamed chunk for one client, in microseconds."""

    client: str
    wall_us: float
    cpu_us: float


def chunk_costs(short: dict[str, Samples], long: dict[str, Samples],
                extra_chunks: int) -> list[ChunkCost]:
    """Return (median long - median short) / extra chunks for each client."""
    out = []
    for name in long:
        wall = statistics.median(long[name].wall) - statistics.median(short[name].wall)
        cpu = statistics.median(long[name].cpu) - statistics.median(short[name].cpu)
        out.append(ChunkCost(name, 1e6 * wall / extra_chunks, 1e6 * cpu / extra_chunks))
    return out


def chunk_table(costs: list[ChunkCost], peer: str) -> str:
    """Return the Markdown table of marginal per-chunk costs with ratios against the peer."""
    base = next(c for c in costs if c.client == peer)
    lines = [
        f"| client | wall µs per chunk | client CPU µs per chunk | wall / {peer} "
        f"| CPU / {peer} |",
        "|---|---:|---:|---:|---:|",
    ]
    for c in costs:
        lines.append(f"| {c.client} | {c.wall_us:.1f} | {c.cpu_us:.1f} "
                     f"| {ratio(c.wall_us, base.wall_us)} | {ratio(c.cpu_us, base.cpu_us)} |")
    return "\n".join(lines)


# -- profile -------------------------------------------------------------------------------

GROUPS = [
    ("pedrollm", ("/pedrollm/",)),
    ("dataclasses_json + marshmallow", ("/dataclasses_json/", "/marshmallow/",
                                        "/typing_inspect", "/mypy_extensions")),
    ("requests", ("/requests/",)),
    ("urllib3", ("/urllib3/",)),
    ("openai", ("/openai/",)),
    ("httpx + httpcore + h11", ("/httpx", "/httpcore", "/h11/", "/anyio/", "/sniffio/")),
    ("pydantic", ("/pydantic",)),
    ("http.client + email (stdlib)", ("/http/", "/email/")),
    ("socket + selectors (stdlib)", ("/socket.py", "/selectors.py", "/ssl.py")),
    ("json (stdlib)", ("/json/",)),
    ("urllib.parse + os.environ + abc (stdlib)", ("/urllib/", "<frozen ")),
    ("typing + dataclasses (stdlib)", ("/typing.py", "/dataclasses.py", "/copy.py",
                                       "/abc.py", "/enum.py")),
]


def group_of(filename: str) -> str:
    """Return the package group a profiled function belongs to."""
    for name, needles in GROUPS:
        if any(n in filename for n in needles):
            return name
    if filename == "~":
        return "C built-ins (socket calls, json scanner, str/bytes methods)"
    return "other"


def short_name(key: tuple[str, int, str]) -> str:
    """Return a function's location relative to its package."""
    filename, line, name = key
    if filename == "~":
        return name
    for marker in ("site-packages/", "/sdk/", "/python3.11/"):
        if marker in filename:
            filename = filename.rsplit(marker, 1)[-1]
            break
    return f"{filename}:{line} {name}"


def profile_section(call: Call, repeats: int, title: str) -> str:
    """Profile repeats calls on CPU time; return the share per package and the top functions."""
    profiler = cProfile.Profile(time.thread_time)  # CPU time: waiting on the socket is free
    profiler.enable()
    for _ in range(repeats):
        call()
    profiler.disable()
    raw: dict[Any, Any] = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    total = sum(v[2] for v in raw.values()) or 1e-9
    by_group: dict[str, float] = {}
    for key, value in raw.items():
        group = group_of(key[0])
        by_group[group] = by_group.get(group, 0.0) + value[2]
    lines = [f"**{title}** ({repeats} calls, {1e3 * total / repeats:.3f} ms CPU per call under "
             "the profiler, which inflates Python-heavy code: read the shares)", "",
             "| package | share of own CPU time |", "|---|---:|"]
    for group, spent in sorted(by_group.items(), key=lambda kv: -kv[1]):
        lines.append(f"| {group} | {100 * spent / total:.1f}% |")
    own = sorted(raw.items(), key=lambda kv: -kv[1][2])[:10]
    lines += ["", "| function (by own time) | calls per request | own share |",
              "|---|---:|---:|"]
    for key, value in own:
        lines.append(f"| `{short_name(key)}` | {value[1] / repeats:.4g} "
                     f"| {100 * value[2] / total:.1f}% |")
    library = [kv for kv in raw.items() if "/bench/" not in kv[0][0] and kv[0][0] != "~"]
    cumulative = sorted(library, key=lambda kv: -kv[1][3])[:12]
    lines += ["", "| function (by cumulative time) | calls per request | cumulative share |",
              "|---|---:|---:|"]
    for key, value in cumulative:
        lines.append(f"| `{short_name(key)}` | {value[1] / repeats:.4g} "
                     f"| {100 * value[3] / total:.0f}% |")
    return "\n".join(lines)


# -- main ----------------------------------------------------------------------------------


@dataclass
class Pass:
    """One server's measurements: chat, short and long streams, and what the fake matched."""

    infer: dict[str, Samples]
    short: dict[str, Samples]
    long: dict[str, Samples]
    short_events: int
    long_events: int
    matches: dict[str, tuple[str, str]]

    def rows(self) -> list[Row]:
        """Return the table rows of this pass."""
        return (rows_for("chat", self.infer, "reply")
                + rows_for(f"stream, {self.short_events} events", self.short, "items")
                + rows_for(f"stream, {self.long_events} events", self.long, "items"))

    def costs(self) -> list[ChunkCost]:
        """Return the marginal per-chunk costs."""
        return chunk_costs(self.short, self.long, self.long_events - self.short_events)

    def target_line(self) -> str:
        """Say how pedrollm compares with the 0.5x openai-python target."""
        rows, costs = self.rows(), self.costs()
        pedro = next(r for r in rows if r.client == "pedrollm" and r.scenario == "chat")
        oai = next(r for r in rows if r.client == "openai-python" and r.scenario == "chat")
        pedro_c = next(c for c in costs if c.client == "pedrollm")
        oai_c = next(c for c in costs if c.client == "openai-python")
        return (f"Target pedrollm ≤ 0.5x openai-python: per request CPU "
                f"{ratio(pedro.cpu_median, oai.cpu_median)}, wall "
                f"{ratio(pedro.wall_median, oai.wall_median)}; per streamed chunk CPU "
                f"{ratio(pedro_c.cpu_us, oai_c.cpu_us)}, wall "
                f"{ratio(pedro_c.wall_us, oai_c.wall_us)}.")

    def chunk_text(self) -> list[str]:
        """Return the per-chunk paragraph and table."""
        extra = self.long_events - self.short_events
        return [f"Per streamed chunk (marginal: the {self.long_events}-event stream minus the "
                f"{self.short_events}-event one, divided by the {extra} extra events):", "",
                chunk_table(self.costs(), "openai-python")]


def llama_pass(url: str, rounds: int, stream_rounds: int, warmup: int) -> tuple[Pass, Any]:
    """Measure the three clients against a llama-server personality; return them too."""
    floor, pedro, oai = FloorClient(url), PedroClient(url, "llamacpp"), OpenAIClient(url)
    clients: dict[str, Client] = {"http.client (floor)": floor, "pedrollm": pedro,
                                  "pedrollm (caller's session)":
                                      PedroClient(url, "llamacpp", callers_session=True),
                                  "openai-python": oai}
    matches = {name: (c.match(SHORT_PROMPT, False), c.match(LONG_PROMPT, True))
               for name, c in clients.items()}
    result = Pass(
        infer=interleave(calls_of(clients, "infer", SHORT_PROMPT), rounds, warmup),
        short=interleave(calls_of(clients, "stream", SHORT_PROMPT), rounds, warmup),
        long=interleave(calls_of(clients, "stream", LONG_PROMPT), stream_rounds, warmup // 4),
        short_events=floor.stream(SHORT_PROMPT),
        long_events=floor.stream(LONG_PROMPT),
        matches=matches,
    )
    return result, clients


def run(rounds: int, stream_rounds: int, warmup: int, long_tokens: int,
        profile_calls: int, close_each: bool) -> str:
    """Run every scenario and return the Markdown section."""
    with tempfile.TemporaryDirectory(prefix="bench-fixtures-") as tmp:
        fixtures = Path(tmp)
        write_fixtures(fixtures, long_tokens)
        with fake_server(fixtures, "llamacpp") as url:
            main_pass, clients = llama_pass(url, rounds, stream_rounds, warmup)
            pedro, oai = clients["pedrollm"], clients["openai-python"]
            profiles = [
                profile_section(lambda: pedro.infer(SHORT_PROMPT), profile_calls,
                                "pedrollm, non-streamed chat"),
                profile_section(lambda: pedro.stream(LONG_PROMPT), max(1, profile_calls // 20),
                                f"pedrollm, streamed chat of {main_pass.long_events} events"),
                profile_section(lambda: oai.infer(SHORT_PROMPT), profile_calls,
                                "openai-python, non-streamed chat (for comparison)"),
            ]
            for c in clients.values():
                c.close()
        closed_pass: Pass | None = None
        if close_each:
            with fake_server(fixtures, "llamacpp", close_each=True) as url:
                closed_pass, clients = llama_pass(url, rounds // 2, stream_rounds // 2, warmup)
                for c in clients.values():
                    c.close()
        with fake_server(fixtures, "ollama") as url:
            ollama_clients: dict[str, Client] = {
                "http.client (floor)": FloorClient(url),
                "pedrollm": PedroClient(url, "ollama"),
                "openai-python": OpenAIClient(url),
            }
            native = ollama_native_answers(url)
            if native is None:
                ollama_clients["ollama-python"] = OllamaClient(url)
            o_matches = {name: (c.match(SHORT_PROMPT, False), c.match(SHORT_PROMPT, True))
                         for name, c in ollama_clients.items()}
            o_infer = interleave(calls_of(ollama_clients, "infer", SHORT_PROMPT), rounds // 2,
                                 warmup)
            o_stream = interleave(calls_of(ollama_clients, "stream", SHORT_PROMPT),
                                  rounds // 2, warmup)
            for c in ollama_clients.values():
                c.close()
    o_rows = (rows_for("chat", o_infer, "reply")
              + rows_for(f"stream, {main_pass.short_events} events", o_stream, "items"))

    out = [
        "## Client overhead: pedrollm vs openai-python and ollama-python",
        "",
        f"Command: `{command_line(MODULE)}`  ",
        f"Machine: {describe(PACKAGES)}",
        "",
        "fakellama (`python -m fakellama serve --strict`, no faults, no realtime pacing) runs "
        "in its own process; the clients run in this process, interleaved request by request "
        f"with the order rotating each round ({rounds} rounds for chat and the short stream, "
        f"{stream_rounds} for the long stream, after {warmup} warm-up rounds). Every client "
        "sends the same body and the fake matched each to the same fixture ("
        + "; ".join(f"{n}: {m[0]}, {m[1]}" for n, m in main_pass.matches.items()) + "). "
        "Wall time includes the fake's own time, the same for every client; client CPU is "
        "this thread's CPU time (`time.thread_time`), the client's own cost, which is what "
        "the ratios are about. Ratios are medians over medians against openai-python "
        "measured in the same run. `per request` is what the client yields (pedrollm yields "
        "content deltas and a final one; openai-python every chunk).",
        "",
        "### llama-server personality",
        "",
        "fakellama keeps connections open as llama-server does (`Keep-Alive: timeout=5, "
        "max=100`), so every client here reuses its pooled connection.",
        "",
        table(main_pass.rows(), "openai-python"),
        "",
        *main_pass.chunk_text(),
        "",
        main_pass.target_line(),
        "",
    ]
    if closed_pass is not None:
        out += [
            "### llama-server personality, a new connection per request",
            "",
            "The same fake started with `--keep-alive-max 1`, so it closes every connection "
            "after its reply and each request opens a new loopback connection, in every "
            f"client alike; {rounds // 2} and {stream_rounds // 2} rounds.",
            "",
            table(closed_pass.rows(), "openai-python"),
            "",
            *closed_pass.chunk_text(),
            "",
            closed_pass.target_line(),
            "",
        ]
    out += [
        "### Ollama personality",
        "",
        "pedrollm, openai-python and the floor use Ollama's OpenAI-compatible `/v1`; "
        "ollama-python uses Ollama's native `POST /api/chat` (one JSON object, or NDJSON "
        f"lines when streamed); {rounds // 2} rounds. The fake matched "
        + ("every client's request to the same fixture (" if len(set(o_matches.values())) == 1
           else "the clients' requests to DIFFERENT fixtures (")
        + "; ".join(f"{n}: {m[0]}, {m[1]}" for n, m in o_matches.items()) + ").",
        "",
        table(o_rows, "openai-python"),
        "",
    ]
    if native is None:
        out += ["pedrollm against ollama-python, the native client, in the same run: "
                + "; ".join(versus(o_rows, scenario, "pedrollm", "ollama-python")
                            for scenario in dict.fromkeys(r.scenario for r in o_rows))
                + ".", ""]
    if native is not None:
        out += [
            "ollama-python was not measured: it speaks Ollama's native API (`POST /api/chat`), "
            f"and the fake's Ollama personality answers that route with `{native}`; "
            "pedrollm and openai-python both use Ollama's OpenAI-compatible `/v1`.",
            "",
        ]
    out += ["### Where pedrollm's time goes (cProfile)", ""]
    for section in profiles:
        out += [section, ""]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, run the benchmark and print its Markdown section."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=1000,
                        help="measured rounds for chat and the short stream")
    parser.add_argument("--stream-rounds", type=int, default=200,
                        help="measured rounds for the long stream")
    parser.add_argument("--warmup", type=int, default=40)
    parser.add_argument("--long-tokens", type=int, default=256,
                        help="words in the long streamed reply (one event each)")
    parser.add_argument("--profile-calls", type=int, default=400)
    parser.add_argument("--no-close-each", action="store_true",
                        help="skip the pass with a new connection per request")
    args = parser.parse_args(argv)
    print(run(args.rounds, args.stream_rounds, args.warmup, args.long_tokens,
              args.profile_calls, not args.no_close_each))


if __name__ == "__main__":
    main()
