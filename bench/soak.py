"""Long-run soak: many requests through one client against fakellama, random faults on a few.

Run: python bench/soak.py [--requests 10000] [--fault-rate 0.05] [--seed 1]
                          [--report reports/soak.md]

The fake runs in a child process (``python -m fakellama serve``) so that this process
holds only the SDK and its memory is what the figures show. Every request asks one of
``--prompts`` prompts whose reply is known, half of them streamed; a fault is put on the
first attempt of a random ``--fault-rate`` share of them (``X-Fake-Fault``), so a retry
goes through clean. Prints successes (and how many needed a retry), typed failures by
class, wrong replies, untyped exceptions, the outcome of each fault, resident memory
after the warm-up and at the end, and open sockets.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from pedrollm import errors
from pedrollm.server import RetryPolicy, ServerClient
from pedrollm.types import InferenceRequest, InferenceResponse

# Each fault's delay is past the read timeout, so the timeout is what ends it.
READ_TIMEOUT = 0.3
FAULTS = (
    "status=500",
    "status=429,retry_after=0",
    "loading=1",
    "close",
    "first_token_delay=0.8",
    "stall=0.8,stall_after=2",
    "disconnect_after=2",
    "malformed_json",
    "malformed_sse",
    "empty_choices",
)


class OneShotFaultSession(requests.Session):
    """A session that puts the next fault on one request only and counts every request."""

    def __init__(self) -> None:
        super().__init__()
        self.next_fault: str | None = None
        self.sent = 0

    def request(self, method: str | bytes, url: str | bytes,
                *args: Any, **kwargs: Any) -> requests.Response:
        """Send one request, with the pending fault if there is one."""
        self.sent += 1
        if self.next_fault is not None:
            kwargs["headers"] = {**(kwargs.get("headers") or {}),
                                 "X-Fake-Fault": self.next_fault}
            self.next_fault = None
        return super().request(method, url, *args, **kwargs)


def prompt(n: int) -> str:
    """The n-th prompt."""
    return f"Soak prompt {n}: repeat your number."


def answer(n: int) -> str:
    """The reply recorded for the n-th prompt."""
    return f"My number is {n}, as asked; nothing else to add."


def write_fixtures(directory: Path, count: int) -> None:
    """Write one hand-written fixture per prompt."""
    for n in range(count):
        text = answer(n)
        fixture = {
            "fakellama_fixture": 1,
            "name": f"soak-{n}",
            "request": {"method": "POST", "path": "/v1/chat/completions",
                        "body": {"messages": [{"role": "user", "content": prompt(n)}]}},
            "response": {"status": 200,
                         "headers": {"Content-Type": "application/json; charset=utf-8"},
                         "body": {"object": "chat.completion", "model": "soak",
                                  "choices": [{"index": 0, "finish_reason": "stop",
                                               "message": {"role": "assistant",
                                                           "content": text}}],
                                  "usage": {"prompt_tokens": 9, "completion_tokens": 10,
                                            "total_tokens": 19}}},
            "metadata": {"authored": "by hand", "note": "bench/soak.py"},
        }
        (directory / f"soak-{n}.json").write_text(json.dumps(fixture), encoding="utf-8")


def start_fake(fixtures: Path) -> tuple[subprocess.Popen[str], str]:
    """Start ``python -m fakellama serve`` on a free loopback port; return it and its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "fakellama", "serve", "--port", "0", "--strict",
         "--fixtures", str(fixtures)],
        stdout=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()  # "fakellama listening on http://127.0.0.1:PORT"
    if not line.startswith("fakellama listening on "):
        proc.kill()
        raise SystemExit(f"the fake did not start: {line!r}")
    return proc, line.rsplit(" ", 1)[1]


def memory_mib() -> tuple[float, float]:
    """This process's resident memory now and its peak so far, in MiB (Linux /proc)."""
    found = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            found[name] = int(value.split()[0]) / 1024
    return found.get("VmRSS", float("nan")), found.get("VmHWM", float("nan"))


def open_sockets() -> int:
    """How many sockets this process holds open."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            count += os.readlink(f"/proc/self/fd/{fd}").startswith("socket:")
        except OSError:
            pass
    return count


def one_request(client: ServerClient, n: int, streamed: bool) -> str:
    """Send prompt n; return the reply text."""
    req = InferenceRequest(user_prompt=prompt(n))
    if not streamed:
        text: str = client.infer(req).text
        return text
    final: InferenceResponse | None = None
    for delta in client.stream(req):
        if delta.response is not None:
            final = delta.response
    return final.text if final is not None else ""


def main(argv: list[str] | None = None) -> int:
    """Run the soak and print its figures; exit 1 if anything was lost or untyped."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--prompts", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--report", type=Path, default=None, help="also write Markdown here")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        write_fixtures(Path(tmp), args.prompts)
        fake, url = start_fake(Path(tmp))
        try:
            figures = soak(url, args, rng)
        finally:
            fake.terminate()
            fake.wait(timeout=10)
    lines = report_lines(figures, args)
    print("\n".join(lines))
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lost = figures["wrong"] + figures["untyped"]
    return 1 if sum(lost.values()) else 0


def soak(url: str, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """Send the requests; return the counters."""
    session = OneShotFaultSession()
    client = ServerClient(url, read_timeout=READ_TIMEOUT, connect_timeout=2.0, session=session,
                          retry=RetryPolicy(max_retries=2, budget=1.0, base_delay=0.02,
                                            max_delay=0.1))
    sockets_before = open_sockets()
    outcomes: Counter[str] = Counter()
    by_fault: dict[tuple[str, str], Counter[str]] = {}
    wrong: Counter[str] = Counter()
    untyped: Counter[str] = Counter()
    retried_ok = 0
    faults = 0
    memory: list[tuple[int, float, float]] = []
    started = time.monotonic()
    for i in range(args.requests):
        n = rng.randrange(args.prompts)
        streamed = rng.random() < 0.5
        fault = rng.choice(FAULTS) if rng.random() < args.fault_rate else None
        faults += fault is not None
        session.next_fault = fault
        sent_before = session.sent
        call = "stream" if streamed else "infer"
        try:
            text = one_request(client, n, streamed)
        except errors.PedroLLMError as exc:
            outcome = type(exc).__name__
        except Exception as exc:  # anything else escaping is what the soak is looking for
            outcome = f"untyped {type(exc).__name__}"
            untyped[f"{type(exc).__name__}: {exc}"[:120]] += 1
        else:
            if text == answer(n):
                outcome = "reply"
                retried_ok += session.sent - sent_before > 1
            else:
                outcome = "wrong reply"
                wrong[f"{fault or 'no fault'}, {call}: got {text!r:.40}"] += 1
        session.next_fault = None
        outcomes[outcome] += 1
        if fault is not None:
            by_fault.setdefault((fault, call), Counter())[outcome] += 1
        done = i + 1
        if done == args.warmup or done % max(1, args.requests // 4) == 0:
            gc.collect()
            memory.append((done, *memory_mib()))
    elapsed = time.monotonic() - started
    sockets_open = open_sockets() - sockets_before
    client.close()
    sockets_after = open_sockets() - sockets_before
    return {"outcomes": outcomes, "by_fault": by_fault, "wrong": wrong, "untyped": untyped,
            "retried_ok": retried_ok, "faults": faults, "memory": memory,
            "elapsed": elapsed, "sockets_open": sockets_open,
            "sockets_after": sockets_after, "attempts": session.sent}


def report_lines(f: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The figures as Markdown lines (also readable as plain text)."""
    outcomes: Counter[str] = f["outcomes"]
    total = sum(outcomes.values())
    typed = {k: v for k, v in outcomes.items()
             if k not in ("reply", "wrong reply") and not k.startswith("untyped")}
    memory: list[tuple[int, float, float]] = f["memory"]
    lines = [
        f"- requests: {total} through one ServerClient (half streamed), {args.prompts} "
        f"prompts, seed {args.seed}, in {f['elapsed']:.1f} s ({f['attempts']} HTTP attempts)",
        f"- faults injected: {f['faults']} ({f['faults'] / max(total, 1):.1%}) on the first "
        "attempt of a request",
        f"- successes (reply text checked): {outcomes['reply']}, of which "
        f"{f['retried_ok']} after a retry",
        f"- typed failures: {sum(typed.values())} ("
        + (", ".join(f"{k} {v}" for k, v in sorted(typed.items())) or "none") + ")",
        f"- wrong replies: {sum(f['wrong'].values())}"
        + "".join(f"; {k} x{v}" for k, v in sorted(f["wrong"].items())),
        f"- untyped exceptions: {sum(f['untyped'].values())}"
        + "".join(f"; {k} x{v}" for k, v in sorted(f["untyped"].items())),
        "- resident memory in MiB after N requests, now (peak so far): "
        + ", ".join(f"{n}: {now:.1f} ({peak:.1f})" for n, now, peak in memory),
        f"- peak resident memory after the warm-up ({memory[0][0]} requests): "
        f"{memory[0][2]:.1f} MiB; at the end: {memory[-1][2]:.1f} MiB; growth "
        f"{memory[-1][2] - memory[0][2]:+.1f} MiB" if memory else "- memory: not measured",
        f"- sockets held by the client at the end: {f['sockets_open']}; after close(): "
        f"{f['sockets_after']}",
        "",
        "| Fault (first attempt) | Call | Outcomes |",
        "|---|---|---|",
    ]
    for (fault, call), counts in sorted(f["by_fault"].items()):
        cell = ", ".join(f"{k} {v}" for k, v in sorted(counts.items()))
        lines.append(f"| `{fault}` | {call} | {cell} |")
    return lines


if __name__ == "__main__":
    sys.exit(main())
