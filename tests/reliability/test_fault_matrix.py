"""Every fault of fakellama, through infer and stream: the typed outcome a caller sees.

Each case checks the outcome class, that it arrived within its bound (timeouts and
retry waits the case configures) plus ``MARGIN``, and for an interrupted stream that
``partial`` holds exactly the text the caller had already received. The run writes
``reports/fault-matrix.md``; ``python -m tests.reliability.write_docs`` copies it into
``docs/reliability.md``.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from fakellama.server import FakeServer
from pedrollm import errors
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.client import RetryPolicy
from pedrollm.types import InferenceRequest, InferenceResponse
from tests.reliability.replies import reply_fixture
from tests.transport import backend_at

REPORT = Path(__file__).resolve().parents[2] / "reports" / "fault-matrix.md"
PROMPT = "Count to six."
FULL_TEXT = "one two three four five six"
# Slack for scheduling on a loaded machine; the bounds themselves are the timeouts.
MARGIN = 1.0
READ_TIMEOUT = 0.3
QUICK = RetryPolicy(max_retries=2, budget=2.0, base_delay=0.05, max_delay=0.4)
PATIENT = RetryPolicy(max_retries=12, budget=1.5, base_delay=0.1, max_delay=0.4)


def worst_wait(policy: RetryPolicy) -> float:
    """The longest a policy can sleep before giving up (capped by its budget)."""
    total = sum(min(policy.max_delay, policy.base_delay * 2 ** i)
                for i in range(policy.max_retries))
    return float(min(total, policy.budget))


@dataclass(frozen=True)
class Case:
    """One fault and call, with the outcome the SDK documents for it."""

    fault: str
    call: str
    expected: type[Exception] | None  # None: a successful reply
    bound: float
    header: str = ""  # X-Fake-Fault on every request of the call
    server_faults: str = ""  # set on the fake just before the call
    policy: RetryPolicy = QUICK
    partial: str | None = None  # the text StreamInterrupted.partial must hold
    attempts: int | None = None
    min_elapsed: float = 0.0
    refused: bool = False  # talk to a port nobody listens on
    clear_on_retry: bool = False  # the fault goes away when the SDK backs off
    retry_after: float | None = None
    bug: str = ""  # a known SDK defect: the case is expected to fail until it is fixed

    @property
    def id(self) -> str:
        """A pytest id."""
        return f"{self.fault}-{self.call}".replace(" ", "_")


def _cases() -> list[Case]:
    quick = worst_wait(QUICK)
    out: list[Case] = []
    for call in ("infer", "stream"):
        streamed = call == "stream"
        out += [
            Case("503 loading for 0.6 s, within the retry budget", call, None,
                 bound=0.6 + PATIENT.max_delay, server_faults="loading=0.6", policy=PATIENT,
                 min_elapsed=0.6),
            Case("503 loading past the retry budget", call, errors.ModelLoading,
                 bound=PATIENT.budget, server_faults="loading=30", policy=PATIENT),
            Case("500 internal error", call, errors.ServerError, bound=0.0,
                 header="status=500", attempts=1),
            Case("429 with Retry-After 0.3 s, within the budget", call, None,
                 bound=0.3, server_faults="status=429,retry_after=0.3", attempts=2,
                 min_elapsed=0.3, clear_on_retry=True),
            Case("429 with Retry-After 60 s, past the budget", call, errors.RateLimited,
                 bound=0.0, header="status=429,retry_after=60", attempts=1,
                 retry_after=60.0),
            Case("connection refused", call, errors.ConnectionFailed, bound=quick,
                 refused=True, attempts=QUICK.max_retries + 1),
            Case("server closes the connection before replying", call,
                 errors.ConnectionFailed, bound=quick, header="close",
                 attempts=QUICK.max_retries + 1),
            Case("first token after 1 s, read timeout 0.3 s", call, errors.ReadTimeout,
                 bound=READ_TIMEOUT, header="first_token_delay=1", attempts=1),
            Case("1 s stall after 2 chunks, read timeout 0.3 s", call,
                 errors.StreamInterrupted if streamed else None, bound=READ_TIMEOUT,
                 header="stall=1,stall_after=2", attempts=1,
                 partial="one" if streamed else None),
            Case("disconnect after 2 chunks (half the body)", call,
                 errors.StreamInterrupted if streamed else errors.ConnectionFailed,
                 bound=0.0 if streamed else quick, header="disconnect_after=2",
                 attempts=1 if streamed else QUICK.max_retries + 1,
                 partial="one" if streamed else None),
            Case("malformed JSON body", call,
                 errors.StreamInterrupted if streamed else errors.InvalidResponse,
                 bound=0.0, header="malformed_json", attempts=1,
                 partial="" if streamed else None),
            Case("malformed SSE line", call, errors.StreamInterrupted if streamed else None,
                 bound=0.0, header="malformed_sse", attempts=1,
                 partial="" if streamed else None),
            Case("empty choices", call, errors.InvalidResponse, bound=0.0,
                 header="empty_choices", attempts=1),
        ]
    return out


CASES = _cases()


@dataclass
class Row:
    """What one case observed, for the report."""

    case: Case
    outcome: str
    attempts: int
    took: float
    ok: bool
    notes: list[str] = field(default_factory=list)


ROWS: dict[str, Row] = {}


@pytest.fixture(scope="module", autouse=True)
def _write_report() -> Iterator[None]:
    """Write the matrix report once the module's cases have run."""
    yield
    if ROWS:
        write_report(REPORT)


def write_report(path: Path) -> None:
    """Write the observed matrix as a Markdown table, in the cases' order."""
    lines = [
        f"Generated by `pytest tests/reliability/test_fault_matrix.py` on "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC: {len(ROWS)} of {len(CASES)} cases ran, "
        f"{sum(r.ok for r in ROWS.values())} as documented. Margin on every bound: "
        f"{MARGIN:g} s (Allowed = the case's timeouts and retry waits + margin). "
        f"Read timeout {READ_TIMEOUT:g} s; retries: up to "
        f"{QUICK.max_retries} (budget {QUICK.budget:g} s), or {PATIENT.max_retries} "
        f"(budget {PATIENT.budget:g} s) for the loading cases.",
        "",
        "| Fault | Call | Documented outcome | Observed | Attempts | Took (s) "
        "| Allowed (s) | As documented |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in CASES:
        row = ROWS.get(case.id)
        if row is None:
            continue
        expected = case.expected.__name__ if case.expected else "reply"
        if case.partial is not None:
            expected += f", partial {case.partial!r}"
        verdict = "yes" if row.ok else f"**no**: SDK bug ({case.bug})" if case.bug else "**no**"
        lines.append(
            f"| {case.fault} | {case.call} | {expected} | {row.outcome} | {row.attempts} "
            f"| {row.took:.2f} | {case.bound + MARGIN:.2f} | {verdict} |"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _refused_url() -> str:
    """Return a loopback URL on a port that was just free (nothing listens there)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _run(client: OpenAIBackend, call: str, seen: list[str]) -> InferenceResponse:
    """Make the call; for a stream, note each content delta as the caller receives it."""
    req = InferenceRequest(user_prompt=PROMPT)
    if call == "infer":
        return client.infer(req)
    final: InferenceResponse | None = None
    for delta in client.stream(req):
        seen.append(delta.content)
        if delta.response is not None:
            final = delta.response
    assert final is not None, "the stream ended without a final response"
    return final


def _describe(result: InferenceResponse | Exception) -> str:
    """One table cell: the reply's text or the error class (and what it carries)."""
    if isinstance(result, InferenceResponse):
        return f"reply {result.text!r}"
    text = type(result).__name__
    if isinstance(result, errors.StreamInterrupted):
        text += f", partial {result.partial.text!r}"
    if isinstance(result, errors.RateLimited):
        text += f" (retry_after={result.retry_after:g})"
    return text


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.id, marks=[pytest.mark.xfail(strict=True, reason=c.bug)]
                  if c.bug else []) for c in CASES],
)
def test_fault_gives_its_documented_outcome_in_time(case: Case) -> None:
    with FakeServer(strict=True) as fake:
        fake.add_fixture(reply_fixture("count-to-six", PROMPT, FULL_TEXT))
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            if case.clear_on_retry:
                fake.set_faults("")
            time.sleep(seconds)

        session = requests.Session()
        if case.header:
            session.headers["X-Fake-Fault"] = case.header
        url = _refused_url() if case.refused else fake.url
        client = backend_at(url, read_timeout=READ_TIMEOUT, connect_timeout=2.0,
                            retry=case.policy, session=session, sleep=sleep)
        if case.server_faults:
            fake.set_faults(case.server_faults)
        seen: list[str] = []
        started = time.monotonic()
        result: InferenceResponse | Exception
        try:
            result = _run(client, case.call, seen)
        except errors.PedroLLMError as exc:
            result = exc
        took = time.monotonic() - started
        client.close()
        fake.set_faults("")

    attempts = len(waits) + 1
    ok = (
        (result.text == FULL_TEXT if case.expected is None
         else type(result) is case.expected)
        and took <= case.bound + MARGIN and took >= case.min_elapsed
        and (case.attempts is None or attempts == case.attempts)
    )
    if isinstance(result, errors.StreamInterrupted):
        ok = ok and result.partial.text == "".join(seen) == case.partial
    ROWS[case.id] = Row(case, _describe(result), attempts, took, ok)

    if case.expected is None:
        assert isinstance(result, InferenceResponse), _describe(result)
        assert result.text == FULL_TEXT
    else:
        assert type(result) is case.expected, _describe(result)
    assert case.min_elapsed <= took <= case.bound + MARGIN
    if case.attempts is not None:
        assert attempts == case.attempts
    if case.partial is not None:
        assert isinstance(result, errors.StreamInterrupted)
        assert result.partial.text == "".join(seen) == case.partial
    if case.retry_after is not None:
        assert isinstance(result, errors.RateLimited)
        assert result.retry_after == case.retry_after
    if case.clear_on_retry:
        assert waits == [pytest.approx(0.3)]  # the server's Retry-After, not a backoff
