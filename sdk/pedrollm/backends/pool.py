"""A pool: one backend over several servers, routed by readiness and load, with failover.

Each request goes to one server of the pool, chosen by ``strategy``:

- ``least_busy`` (default): the server with the most free slots. llama-server says how
  many of its slots are processing at ``GET /slots`` (on unless it was started with
  ``--no-slots``); that answer is read at most once a second and adjusted by the
  requests this pool has started or finished since. A server that does not say is
  counted by the requests this pool has in flight to it, as if it had one slot.
  Ties go round the pool.
- ``round_robin``: each ready server in turn.
- ``first``: the first ready server in the list (a primary and its backups).

With ``sticky``, every turn of a conversation (the same system prompt and first user
message) goes to the same server while it is ready, chosen by rendezvous hashing, so
llama-server's prompt cache holds the conversation's prefix; when that server fails,
only its conversations move.

A request moves to another server when the one it went to refused the connection,
timed out, answered 5xx (503 while loading included) or 429 -- and, for a stream,
only while nothing has reached the caller: once a delta is yielded, a failure is the
caller's to see (:class:`~pedrollm.errors.StreamInterrupted` with the partial reply),
never a second answer. A 4xx other than 429 is the request's fault and is raised
at once. A server that failed is cooled down (1 s, doubling to 30 s) and is tried
again only after a health probe says it is ready, or as a last resort when every
other server failed too. When every server failed, the pool waits and tries another
round (``max_retries`` rounds within ``retry_budget`` seconds), then raises
:class:`~pedrollm.errors.NoServerAvailable` listing each server's last state. A
``deadline`` (the request's, else the config's) bounds all of that together.

One pool may be shared by many threads: the routing state is guarded by a lock, and
no lock is held while a request is on the wire.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Self, TypeVar

import requests

from ..backend import Backend, Health
from ..client import RetryPolicy
from ..errors import (
    ConfigError,
    ConnectionFailed,
    DeadlineExceeded,
    EndpointState,
    MediaNotSupported,
    ModelLoading,
    NoServerAvailable,
    PedroLLMError,
    RateLimited,
    ServerError,
    StreamInterrupted,
    Timeout,
)
from ..redaction import redact_url
from ..tokens import TokenCount
from ..types import InferenceRequest, InferenceResponse, ModelInfo, ServerInfo, StreamDelta
from ..validation import validate_request

T = TypeVar("T")

#: How a pool picks a server for each request (the values of ``model.strategy``).
POOL_STRATEGIES = ("least_busy", "round_robin", "first")

#: Seconds an answer of ``/slots`` is trusted before it is asked again.
SLOTS_TTL = 1.0


@dataclass
class Endpoint:
    """One server of a pool and what the pool knows of it (guarded by the pool's lock)."""

    backend: Backend
    url: str
    state: str = "unknown"  # ok, loading, unreachable, error, busy, timeout, unknown
    detail: str = ""
    failures: int = 0  # consecutive failures, for the cooldown's doubling
    cooldown_until: float = 0.0
    probing: bool = False
    in_flight: int = 0
    served: int = 0
    # From llama-server's /slots: None where the server does not say.
    slots_total: int | None = None
    slots_busy: int | None = None
    slots_at: float = -SLOTS_TTL
    in_flight_at_slots: int = 0
    slots_supported: bool | None = None
    slots_refreshing: bool = False

    def load(self) -> float:
        """Busy share of the server's slots (one slot assumed where it does not say)."""
        if self.slots_total and self.slots_busy is not None:
            busy = max(self.in_flight,
                       self.slots_busy + self.in_flight - self.in_flight_at_slots)
            return busy / self.slots_total
        return float(self.in_flight)

    def shown(self) -> EndpointState:
        """The endpoint as a NoServerAvailable error lists it."""
        return EndpointState(self.url, self.state, self.detail)


def fails_over(exc: PedroLLMError) -> bool:
    """Whether another server may take a request that failed this way on one.

    The server's fault (refused, timed out, 5xx, loading, 429), never the request's
    (any other 4xx) and never the caller's own deadline.
    """
    if isinstance(exc, DeadlineExceeded):
        return False
    if isinstance(exc, MediaNotSupported):
        # A 500 for what the model cannot take, not a failing server: the caller hears
        # why (and about --mmproj) instead of every server being marked down in turn.
        return False
    return isinstance(exc, ConnectionFailed | Timeout | ServerError | RateLimited
                      | StreamInterrupted)


def _state_of(exc: PedroLLMError) -> str:
    """The state a failure leaves its server in."""
    if isinstance(exc, ModelLoading):
        return "loading"
    if isinstance(exc, ConnectionFailed):
        return "unreachable"
    if isinstance(exc, Timeout):
        return "timeout"
    if isinstance(exc, RateLimited):
        return "busy"
    return "error"


def conversation_key(req: InferenceRequest) -> str:
    """What stays the same over the turns of one conversation: its opening.

    The opening is every message up to and including the first user message (system
    prompt and first question): later turns only add messages after it.
    """
    opening = []
    for message in req.all_messages():
        opening.append(message.to_dict())
        if message.role == "user":
            break
    return hashlib.sha256(json.dumps(opening, sort_keys=True, default=str).encode()).hexdigest()


def _rank(key: str, url: str) -> int:
    """The rendezvous-hash weight of a server for a conversation."""
    return int.from_bytes(hashlib.sha256(f"{key}\0{url}".encode()).digest()[:8], "big")


class PoolBackend(Backend):
    """Several servers of one model family behind one backend (see the module's doc)."""

    name = "pool"
    #: Backend type name -> class, for the servers of a pool built from a config; set
    #: by :mod:`pedrollm.backends` (importing it here would make a cycle).
    member_types: Mapping[str, type[Backend]] = {}

    def __init__(
        self,
        members: Sequence[Backend],
        *,
        strategy: str = "least_busy",
        sticky: bool = False,
        max_retries: int = 3,
        retry_budget: float = 30.0,
        deadline: float | None = None,
        cooldown: float = 1.0,
        max_cooldown: float = 30.0,
        slots: bool = True,
    ) -> None:
        if not members:
            raise ConfigError("model.servers: a pool needs at least one server")
        if strategy not in POOL_STRATEGIES:
            raise ConfigError(f"model.strategy: must be one of {', '.join(POOL_STRATEGIES)}, "
                              f"got {strategy!r}")
        self.endpoints = [Endpoint(member, _url_of(member)) for member in members]
        seen: dict[str, int] = {}
        for index, endpoint in enumerate(self.endpoints):
            if endpoint.url in seen:
                raise ConfigError(
                    f"model.servers[{index}].server_url: {redact_url(endpoint.url)!r} is "
                    f"already model.servers[{seen[endpoint.url]}]; list each server once")
            seen[endpoint.url] = index
        self.strategy = strategy
        self.sticky = sticky
        self.retry = RetryPolicy(max_retries=max_retries, budget=retry_budget)
        self.cooldown = cooldown
        self.max_cooldown = max_cooldown
        self.slots = slots
        self.deadline = deadline
        self._lock = threading.Lock()
        self._turn = 0

    @classmethod
    def from_config(cls, cfg: Any, session: requests.Session | None = None) -> Self:
        """Build the pool and each of its servers from a ``ModelConfig`` of type pool."""
        members = [cls.member_types[member.type].from_config(member, session=session)
                   for member in cfg.pool_servers()]
        return cls(members, strategy=cfg.strategy, sticky=cfg.sticky,
                   max_retries=cfg.max_retries, retry_budget=cfg.retry_budget,
                   deadline=cfg.deadline)

    def __repr__(self) -> str:
        shown = ", ".join(redact_url(e.url) for e in self.endpoints)
        return f"PoolBackend(servers=[{shown}], strategy={self.strategy!r})"

    # -- routing -------------------------------------------------------------------

    def _order(self, candidates: list[Endpoint], key: str | None) -> list[Endpoint]:
        """Candidates best first, by stickiness, else by the strategy."""
        if key is not None:
            return sorted(candidates, key=lambda e: _rank(key, e.url), reverse=True)
        if self.strategy == "first":
            return candidates
        count = len(self.endpoints)
        turn = self._turn
        self._turn += 1
        position = {id(e): (self.endpoints.index(e) - turn) % count for e in candidates}
        if self.strategy == "round_robin":
            return sorted(candidates, key=lambda e: position[id(e)])
        return sorted(candidates, key=lambda e: (e.load(), position[id(e)]))

    def _choose(self, tried: list[Endpoint], key: str | None) -> tuple[Endpoint | None, bool]:
        """Pick the next server for a request; (server, whether to probe it first).

        Under the lock. Servers cooling down come last, soonest-ready first: a
        last resort when every ready one failed.
        """
        now = time.monotonic()
        fresh = [e for e in self.endpoints if e not in tried]
        ready = [e for e in fresh
                 if e.cooldown_until <= now and not e.probing]
        if ready:
            chosen = self._order(ready, key)[0]
            # A server back from a cooldown is probed before it gets a request.
            probe = chosen.failures > 0
            if probe:
                chosen.probing = True
            return chosen, probe
        if not fresh:
            return None, False
        return min(fresh, key=lambda e: e.cooldown_until), False

    def _acquire(self, tried: list[Endpoint], key: str | None) -> Endpoint | None:
        """Choose, probe where due, and count the request in flight; None: none left."""
        if self.strategy == "least_busy" and key is None and self.slots:
            self._refresh_slots()
        while True:
            with self._lock:
                endpoint, probe = self._choose(tried, key)
                if endpoint is None:
                    return None
                if not probe:
                    endpoint.in_flight += 1
                    return endpoint
            try:
                status = endpoint.backend.health()
            except BaseException:
                with self._lock:
                    endpoint.probing = False
                raise
            with self._lock:
                endpoint.probing = False
                if status.ready:
                    self._mark_ok(endpoint)
                    endpoint.in_flight += 1
                    return endpoint
                self._mark_failed(endpoint, status.state, status.detail)
                tried.append(endpoint)

    def _refresh_slots(self) -> None:
        """Ask llama-servers whose /slots answer is stale how many slots are busy."""
        now = time.monotonic()
        due: list[Endpoint] = []
        with self._lock:
            for e in self.endpoints:
                if (e.backend.name == "llamacpp" and e.slots_supported is not False
                        and not e.slots_refreshing and e.cooldown_until <= now
                        and now - e.slots_at >= SLOTS_TTL):
                    e.slots_refreshing = True
                    due.append(e)
        for e in due:
            client = getattr(e.backend, "client", None)
            total: int | None = None
            busy: int | None = None
            supported: bool | None = None
            try:
                if client is not None:
                    total, busy = _read_slots(client.get_json("/slots", retry=False))
                    supported = total is not None
            except ServerError as exc:
                # 501: started with --no-slots. Other 5xx: ask again later.
                supported = False if exc.status == 501 else None
            except PedroLLMError as exc:
                # 404 (not llama-server after all) or an unreadable answer: stop asking.
                supported = None if isinstance(exc, ConnectionFailed | Timeout) else False
            with self._lock:
                e.slots_refreshing = False
                e.slots_at = time.monotonic()
                if supported is not None:
                    e.slots_supported = supported
                e.slots_total, e.slots_busy = total, busy
                e.in_flight_at_slots = e.in_flight

    def _mark_ok(self, endpoint: Endpoint) -> None:
        """Under the lock: the server answered."""
        if endpoint.state != "ok":
            endpoint.detail = ""
        endpoint.state = "ok"
        endpoint.failures = 0
        endpoint.cooldown_until = 0.0

    def _mark_failed(self, endpoint: Endpoint, state: str, detail: str,
                     wait: float | None = None) -> None:
        """Under the lock: the server failed; cool it down, longer each time in a row.

        Requests that were in flight together and fail together are one failure: a
        server already cooling down is not cooled down longer for them.
        """
        endpoint.state = state
        endpoint.detail = detail
        if wait is None and endpoint.cooldown_until > time.monotonic():
            return
        pause = wait if wait is not None else min(
            self.max_cooldown, self.cooldown * (2.0 ** endpoint.failures))
        endpoint.failures += 1
        endpoint.cooldown_until = time.monotonic() + pause

    def _release(self, endpoint: Endpoint, exc: PedroLLMError | None) -> None:
        """A request on ``endpoint`` ended: count it out, and learn from how it ended."""
        with self._lock:
            endpoint.in_flight -= 1
            if exc is None:
                endpoint.served += 1
                self._mark_ok(endpoint)
            elif fails_over(exc):
                wait = exc.retry_after if isinstance(exc, RateLimited) else None
                self._mark_failed(endpoint, _state_of(exc), _first_line(exc), wait)

    def _all_failed(self, errors: list[PedroLLMError]) -> NoServerAvailable:
        with self._lock:
            states = [e.shown() for e in self.endpoints]
        error = NoServerAvailable(
            f"none of the {len(self.endpoints)} servers of the pool could take the request",
            states)
        if errors:
            error.__cause__ = errors[-1]
        return error

    def _rounds(self, until: float | None) -> Iterator[int]:
        """Round numbers; between rounds, the retry policy's wait, within its budget.

        The wait never runs past the deadline ``until``: the round after it finds the
        deadline passed.
        """
        waited = 0.0
        for attempt in range(self.retry.max_retries + 1):
            if attempt:
                delay = self.retry.delay(attempt - 1)
                if waited + delay > self.retry.budget:
                    return
                if until is not None:
                    delay = max(0.0, min(delay, until - time.monotonic()))
                time.sleep(delay)
                waited += delay
            yield attempt

    def _key(self, req: InferenceRequest) -> str | None:
        return conversation_key(req) if self.sticky else None

    def _budget(self, req: InferenceRequest
                ) -> tuple[Callable[[], InferenceRequest], float | None]:
        """The request for each attempt, its deadline what is left of the whole one's.

        The deadline (the request's, else the pool's) bounds every server tried
        together, not each one: DeadlineExceeded once it has passed. Also returns when
        it passes (a ``time.monotonic()`` value), None without a deadline.
        """
        total = req.deadline if req.deadline is not None else self.deadline
        if total is None:
            return (lambda: req), None
        until = time.monotonic() + total

        def attempt() -> InferenceRequest:
            left = until - time.monotonic()
            if left <= 0:
                raise DeadlineExceeded(f"the pool's request passed its deadline of {total:g}s")
            return dataclasses.replace(req, deadline=left)

        return attempt, until

    def _run(self, req: InferenceRequest,
             call: Callable[[Backend, InferenceRequest], T]) -> T:
        """Run ``call`` on one server after another until one answers."""
        key = self._key(req)
        next_req, until = self._budget(req)
        errors: list[PedroLLMError] = []
        for _ in self._rounds(until):
            tried: list[Endpoint] = []
            while (endpoint := self._acquire(tried, key)) is not None:
                tried.append(endpoint)
                try:
                    result = call(endpoint.backend, next_req())
                except PedroLLMError as exc:
                    self._release(endpoint, exc)
                    if not fails_over(exc):
                        raise
                    errors.append(exc)
                    continue
                except BaseException:
                    self._release(endpoint, None)
                    raise
                self._release(endpoint, None)
                return result
        raise self._all_failed(errors)

    # -- the Backend interface -----------------------------------------------------

    def infer(self, req: InferenceRequest) -> InferenceResponse:
        """Send a request to one server, moving it on where that server fails."""
        validate_request(req)
        return self._run(req, lambda backend, attempt: backend.infer(attempt))

    def stream(self, req: InferenceRequest) -> Iterator[StreamDelta]:
        """Stream from one server; move on only while nothing has reached the caller."""
        validate_request(req)
        return self._stream(req)

    def _stream(self, req: InferenceRequest) -> Iterator[StreamDelta]:
        key = self._key(req)
        next_req, until = self._budget(req)
        errors: list[PedroLLMError] = []
        for _ in self._rounds(until):
            tried: list[Endpoint] = []
            while (endpoint := self._acquire(tried, key)) is not None:
                tried.append(endpoint)
                deltas: Iterator[StreamDelta] | None = None
                try:
                    deltas = endpoint.backend.stream(next_req())
                    first = next(deltas)
                except StopIteration:
                    self._release(endpoint, None)
                    return
                except PedroLLMError as exc:
                    self._release(endpoint, exc)
                    _close(deltas)
                    if not fails_over(exc):
                        raise
                    errors.append(exc)
                    continue
                except BaseException:
                    self._release(endpoint, None)
                    raise
                # From here on the caller has data: whatever happens is theirs to see.
                outcome: PedroLLMError | None = None
                try:
                    yield first
                    yield from deltas
                except PedroLLMError as exc:
                    outcome = exc
                    raise
                finally:
                    _close(deltas)
                    self._release(endpoint, outcome)
                return
        raise self._all_failed(errors)

    def parallel_slots(self) -> int:
        """The servers' slots added up: what the pool can work on at once."""
        total = 0
        for endpoint in self.endpoints:
            try:
                total += endpoint.backend.parallel_slots()
            except PedroLLMError:
                total += 1
        return max(total, 1)

    def chat_body(self, req: InferenceRequest, *, stream: bool = False) -> dict[str, Any]:
        """The body the pool's first server would send for ``req``."""
        return self.endpoints[0].backend.chat_body(req, stream=stream)

    def count_tokens(self, req: InferenceRequest) -> TokenCount:
        """The prompt tokens as the pool's first server counts them (its model is the pool's)."""
        return self.endpoints[0].backend.count_tokens(req)

    def count_text_tokens(self, text: str) -> TokenCount:
        """The text's tokens as the pool's first server counts them."""
        return self.endpoints[0].backend.count_text_tokens(text)

    def reply_token_limit(self, req: InferenceRequest) -> int | None:
        """The reply limit the pool's first server would apply."""
        return self.endpoints[0].backend.reply_token_limit(req)

    def _each(self, ask: Callable[[Backend], T]) -> list[T | PedroLLMError]:
        """Ask every server; a server's error is kept in its place."""
        answers: list[T | PedroLLMError] = []
        for e in self.endpoints:
            try:
                answers.append(ask(e.backend))
            except PedroLLMError as exc:
                answers.append(exc)
        return answers

    def get_context_window(self) -> int:
        """The smallest window of the servers that say: a request must fit wherever it goes."""
        answers = self._each(lambda backend: backend.get_context_window())
        windows = [a for a in answers if isinstance(a, int)]
        if windows:
            return min(windows)
        raise next(a for a in answers if isinstance(a, PedroLLMError))

    def get_configured_usable_context(self) -> int | None:
        """The smallest usable context a server is configured with, if any is."""
        configured = [c for e in self.endpoints
                      if (c := e.backend.get_configured_usable_context()) is not None]
        return min(configured) if configured else None

    def supports_native_tools(self) -> bool:
        """True when every server returns tool calls natively."""
        return all(e.backend.supports_native_tools() for e in self.endpoints)

    def endpoint_health(self) -> list[tuple[str, Health]]:
        """Probe every server once, all at the same time; (URL, its health), in order.

        What a probe shows is remembered: a ready server is routed to again at once, one
        that is not is cooled down.
        """
        out: list[tuple[str, Health]] = []
        # All at once: an unreachable server may take its whole connect timeout.
        with ThreadPoolExecutor(len(self.endpoints)) as probes:
            statuses = list(probes.map(lambda e: e.backend.health(), self.endpoints))
        for e, status in zip(self.endpoints, statuses, strict=True):
            with self._lock:
                if status.ready:
                    self._mark_ok(e)
                elif e.state in ("ok", "unknown") or e.state != status.state:
                    self._mark_failed(e, status.state, status.detail)
            out.append((e.url, status))
        return out

    def health(self) -> Health:
        """Ready when any server is; the detail has one line per server."""
        probes = self.endpoint_health()
        states = [status.state for _, status in probes]
        ready = states.count("ok")
        lines = [f"{ready} of {len(probes)} servers ready"]
        lines += [f"  {redact_url(url)}: {status.state}: {status.detail}"
                  for url, status in probes]
        detail = "\n".join(lines)
        if ready:
            return Health("ok", detail)
        for state in ("loading", "error", "unreachable"):
            if state in states:
                return Health(state, detail)
        return Health("error", detail)

    def list_models(self) -> list[ModelInfo]:
        """The models of every server that answers, each id once."""
        seen: dict[str, ModelInfo] = {}
        answers = self._each(lambda backend: backend.list_models())
        for answer in answers:
            if isinstance(answer, list):
                for model in answer:
                    seen.setdefault(model.id, model)
        if not seen and all(isinstance(a, PedroLLMError) for a in answers):
            raise next(a for a in answers if isinstance(a, PedroLLMError))
        return list(seen.values())

    def endpoints_info(self) -> list[dict[str, Any]]:
        """What the pool knows of each server: state, load, what it served."""
        rows = []
        with self._lock:
            for e in self.endpoints:
                rows.append({
                    "server_url": redact_url(e.url), "backend": e.backend.name,
                    "state": e.state, "detail": e.detail, "in_flight": e.in_flight,
                    "served": e.served, "slots_total": e.slots_total,
                    "slots_busy": e.slots_busy,
                })
        return rows

    def server_info(self) -> ServerInfo:
        """Discovery over the pool; ``extra["endpoints"]`` holds each server's own."""
        infos: list[ServerInfo | None] = []
        for e in self.endpoints:
            try:
                infos.append(e.backend.server_info())
            except PedroLLMError:
                infos.append(None)
        rows = self.endpoints_info()
        for row, info in zip(rows, infos, strict=True):
            if info is not None:
                row.update(model=info.model, context_window=info.context_window,
                           native_tools=info.native_tools, tool_mode=info.tool_mode,
                           version=info.version)
        known = [i for i in infos if i is not None]
        windows = [i.context_window for i in known if i.context_window]
        first = known[0] if known else None
        return ServerInfo(
            backend=self.name,
            server_url=", ".join(redact_url(e.url) for e in self.endpoints),
            model=first.model if first else None,
            context_window=min(windows) if windows else None,
            native_tools=all(i.native_tools for i in known) if known else None,
            version=None,
            tool_call_format=first.tool_call_format if first else None,
            tool_mode=first.tool_mode if first else None,
            extra={"strategy": self.strategy, "sticky": self.sticky, "endpoints": rows},
        )

    def close(self) -> None:
        """Close every server's connections."""
        for e in self.endpoints:
            e.backend.close()


def _url_of(backend: Backend) -> str:
    """A member's address, the key the pool knows it by."""
    url = getattr(backend, "server_url", None)
    return url if isinstance(url, str) else repr(backend)


def _close(deltas: Iterator[StreamDelta] | None) -> None:
    """Close a member's stream (its connection) where it can be closed."""
    close = getattr(deltas, "close", None)
    if close is not None:
        close()


def _first_line(exc: BaseException) -> str:
    text = str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _read_slots(data: Any) -> tuple[int | None, int | None]:
    """(slots, busy slots) from llama-server's /slots list; (None, None) if unreadable."""
    if not isinstance(data, list) or not data:
        return None, None
    busy = 0
    for slot in data:
        if not isinstance(slot, Mapping) or not isinstance(slot.get("is_processing"), bool):
            return None, None
        busy += slot["is_processing"]
    return len(data), busy


__all__ = ["POOL_STRATEGIES", "Endpoint", "PoolBackend", "conversation_key", "fails_over"]
