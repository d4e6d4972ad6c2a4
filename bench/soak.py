"""Long-run soak: many requests through one backend against fakellama, random faults on a few.

Run: python bench/soak.py [--requests 10000] [--fault-rate 0.05] [--seed 1]
                          [--report reports/soak.md]

The fake runs in a child process so that this process holds only the SDK and its
memory is what the figures show. Every request asks one of ``--prompts`` prompts whose
reply is known, half of them streamed, through a backend built as a user builds one
(its own session, the SDK's default path). Faults are injected on the server side:
before a request, the soak tells the child which fault the next request it receives
gets (as fakellama's ``X-Fake-Fault`` header, added there), so the first attempt fails
and a retry goes through clean. The child also counts the HTTP attempts it received.

Prints successes (and how many needed a retry), typed failures by class, wrong
replies, untyped exceptions, the outcome of each fault, resident memory after the
warm-up and at the end, and open sockets. Exits 1 when a reply was wrong or an
untyped exception escaped, and also when the soak could not have failed: no HTTP
attempt counted, no fault injected or taking effect, or retryable faults injected
with no request retried.
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
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

from pedrollm import errors
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.client import HTTPClient, RetryPolicy
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


# The WSGI environ key of the header fakellama reads faults from (X-Fake-Fault).
FAULT_ENVIRON_KEY = "HTTP_X_FAKE_FAULT"
# Faults after which the SDK retries; the others end in a typed error.
RETRYABLE = ("status=429,retry_after=0", "loading=1", "close")


class FaultScheduler:
    """WSGI middleware in the fake's process: counts attempts, faults the next one on demand.

    Driven over the child's stdin: ``fault SPEC`` puts SPEC on the next request
    received, ``count`` answers ``ATTEMPTS APPLIED``.
    """

    def __init__(self, app: Callable[..., Iterable[bytes]],
                 environ_key: str = FAULT_ENVIRON_KEY) -> None:
        self.app = app
        self.environ_key = environ_key
        self.attempts = 0
        self.applied = 0
        self.pending: str | None = None
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        with self._lock:
            self.attempts += 1
            fault, self.pending = self.pending, None
        if fault is not None:
            environ[self.environ_key] = fault
            with self._lock:
                self.applied += 1
        return self.app(environ, start_response)

    def serve_commands(self, commands: TextIO, answers: TextIO) -> None:
        """Answer the parent's commands until its pipe closes."""
        for line in commands:
            verb, _, arg = line.strip().partition(" ")
            with self._lock:
                if verb == "fault":
                    self.pending = arg or None
                    reply = "ok"
                else:
                    reply = f"{self.attempts} {self.applied}"
            answers.write(reply + "\n")
            answers.flush()


def serve_fake(fixtures: Path, environ_key: str) -> None:
    """The child: fakellama (strict, these fixtures) behind a FaultScheduler."""
    from fakellama.app import FakeLlamaApp
    from fakellama.server import BackgroundServer, load_fixtures

    scheduler = FaultScheduler(FakeLlamaApp(load_fixtures(fixtures), strict=True),
                               environ_key)
    with BackgroundServer(scheduler) as server:
        print(f"fakellama listening on {server.url}", flush=True)
        scheduler.serve_commands(sys.stdin, sys.stdout)


class FakeProcess:
    """The parent's handle on the child: its URL and the fault/count commands."""

    def __init__(self, fixtures: Path, environ_key: str = FAULT_ENVIRON_KEY) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve-fake", str(fixtures),
             "--fault-environ-key", environ_key],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if not line.startswith("fakellama listening on "):
            self.proc.kill()
            raise SystemExit(f"the fake did not start: {line!r}")
        self.url = line.rsplit(" ", 1)[1]

    def _ask(self, command: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().strip()

    def fault_next(self, fault: str | None) -> None:
        """Put ``fault`` on the next request the fake receives (None: clear it)."""
        self._ask(f"fault {fault or ''}")

    def counts(self) -> tuple[int, int]:
        """(HTTP attempts received, faults applied) so far."""
        attempts, applied = self._ask("count").split()
        return int(attempts), int(applied)

    def stop(self) -> None:
        """End the child."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.terminate()
        self.proc.wait(timeout=10)


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


def one_request(client: OpenAIBackend, n: int, streamed: bool) -> str:
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
    parser.add_argument("--serve-fake", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--fault-environ-key", default=FAULT_ENVIRON_KEY,
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fake is not None:
        serve_fake(args.serve_fake, args.fault_environ_key)
        return 0
    rng = random.Random(args.seed)

    with tempfile.TemporaryDirectory() as tmp:
        write_fixtures(Path(tmp), args.prompts)
        fake = FakeProcess(Path(tmp), args.fault_environ_key)
        try:
            figures = soak(fake, args, rng)
        finally:
            fake.stop()
    lines = report_lines(figures, args)
    print("\n".join(lines))
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
    lost = figures["wrong"] + figures["untyped"]
    problems = [f"{sum(lost.values())} requests lost (wrong reply or untyped exception)"
                ] if sum(lost.values()) else []
    problems += could_not_fail(figures, args)
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


def could_not_fail(f: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """Reasons this run proves nothing: faults that never reached the SDK, no attempts."""
    reasons = []
    if f["attempts"] == 0:
        reasons.append("the fake counted 0 HTTP attempts")
    if args.fault_rate > 0 and f["faults"] == 0:
        reasons.append("no fault was injected (raise --requests or --fault-rate)")
    if f["applied"] != f["faults"]:
        reasons.append(f"{f['faults']} faults injected but {f['applied']} reached the fake")
    if f["retryable"] and not f["retried_ok"]:
        reasons.append(f"{f['retryable']} retryable faults injected but no request was "
                       "retried to success: the faults did not take effect")
    typed = sum(v for k, v in f["outcomes"].items()
                if k not in ("reply", "wrong reply") and not k.startswith("untyped"))
    if f["faults"] - f["retryable"] > 0 and typed == 0:
        reasons.append(f"{f['faults'] - f['retryable']} non-retryable faults injected but "
                       "no typed failure was seen: the faults did not take effect")
    return reasons


def soak(fake: FakeProcess, args: argparse.Namespace, rng: random.Random) -> dict[str, Any]:
    """Send the requests; return the counters."""
    client = OpenAIBackend(transport=HTTPClient(
        fake.url, read_timeout=READ_TIMEOUT, connect_timeout=2.0,
        retry=RetryPolicy(max_retries=2, budget=1.0, base_delay=0.02, max_delay=0.1)))
    sockets_before = open_sockets()
    outcomes: Counter[str] = Counter()
    by_fault: dict[tuple[str, str], Counter[str]] = {}
    wrong: Counter[str] = Counter()
    untyped: Counter[str] = Counter()
    retried_ok = 0
    faults = 0
    retryable = 0
    memory: list[tuple[int, float, float]] = []
    started = time.monotonic()
    for i in range(args.requests):
        n = rng.randrange(args.prompts)
        streamed = rng.random() < 0.5
        fault = rng.choice(FAULTS) if rng.random() < args.fault_rate else None
        faults += fault is not None
        retryable += fault in RETRYABLE
        if fault is not None:
            fake.fault_next(fault)
            sent_before = fake.counts()[0]
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
                retried_ok += fault is not None and fake.counts()[0] - sent_before > 1
            else:
                outcome = "wrong reply"
                wrong[f"{fault or 'no fault'}, {call}: got {text!r:.40}"] += 1
        if fault is not None:
            fake.fault_next(None)
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
    attempts, applied = fake.counts()
    return {"outcomes": outcomes, "by_fault": by_fault, "wrong": wrong, "untyped": untyped,
            "retried_ok": retried_ok, "faults": faults, "retryable": retryable,
            "applied": applied, "memory": memory, "elapsed": elapsed,
            "sockets_open": sockets_open, "sockets_after": sockets_after,
            "attempts": attempts}


def report_lines(f: dict[str, Any], args: argparse.Namespace) -> list[str]:
    """The figures as Markdown lines (also readable as plain text)."""
    outcomes: Counter[str] = f["outcomes"]
    total = sum(outcomes.values())
    typed = {k: v for k, v in outcomes.items()
             if k not in ("reply", "wrong reply") and not k.startswith("untyped")}
    memory: list[tuple[int, float, float]] = f["memory"]
    lines = [
        f"- requests: {total} through one backend (half streamed), {args.prompts} "
        f"prompts, seed {args.seed}, in {f['elapsed']:.1f} s ({f['attempts']} HTTP attempts "
        "counted by the fake)",
        f"- faults injected: {f['faults']} ({f['faults'] / max(total, 1):.1%}) on the first "
        f"attempt of a request, {f['applied']} applied by the fake, {f['retryable']} of "
        "a kind the SDK retries",
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
