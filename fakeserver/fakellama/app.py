"""The fake server as a WSGI app: auth, routing, validation, matching, replay and faults."""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from werkzeug.wrappers import Request

from fakellama import api_streams, convert, ollama_native, synthesize
from fakellama import embeddings as fake_embeddings
from fakellama.faults import FAULT_HEADER, Faults, parse_faults
from fakellama.fixtures import Fixture, SseEvent
from fakellama.httpd import SOCKET_KEY
from fakellama.kept import DEFAULT_MAX_BYTES, DEFAULT_MAX_REQUESTS, KeptRequests
from fakellama.matching import (
    FixtureStore,
    Match,
    canonical_body,
    conversation_key,
    recorded_reply_fits,
)
from fakellama.personalities import ModelInfo, Reply, json_reply, sourced
from fakellama.personalities import personality as personality_named
from fakellama.prompt import count_prompt_tokens
from fakellama.schema_instance import Unsatisfiable
from fakellama.validation import Refusal
from fakellama.wire import SSE_CONTENT_TYPE, dumps, parse_sse_block, random_id, sse_event

StartResponse = Callable[..., Any]
DEFAULT_CTX_SIZE = 4096
MATCH_HEADER = "X-Fakellama-Match"
FIXTURE_HEADER = "X-Fakellama-Fixture"
# What X-Fakellama-Match says beyond a fixture's match level (exact, sampling, conversation).
VALIDATION = "validation"    # llama-server's own refusal: the status, type and message it sends
BUILTIN = "builtin"          # a model-free answer computed as llama-server computes it
SYNTHESIZED = "synthesized"  # a valid request no fixture covers: a reply built for it
FAULT = "fault"              # an injected fault
MISS = "none"                # fakellama's own refusal (strict mode, or nothing it can answer)
# Called with one line per request (method, path, status, tier, fixture).
RequestLog = Callable[[str], None]
# What malformed_sse / malformed_json put in place of the second streamed event.
_BROKEN_EVENT = {SSE_CONTENT_TYPE: "data: {\"choices\":[{\"delta\":{\"content\":\"\n\n",
                 ollama_native.NDJSON_CONTENT_TYPE: "{\"message\":{\"role\":\"assistant\","
                                                    "\"content\":\"\n"}


@dataclass(frozen=True)
class ReceivedRequest:
    """A request the fake received, as a test wants to inspect it."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    raw: bytes
    status: int = 0
    fixture: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class _Outcome:
    reply: Reply | None = None
    events: tuple[SseEvent, ...] | None = None
    fixture: str | None = None
    level: str | None = None
    faults: Faults = field(default_factory=Faults)
    extra_headers: list[tuple[str, str]] = field(default_factory=list)
    body: Any = None
    content_type: str = SSE_CONTENT_TYPE


# How a matched fixture becomes an outcome: (fixture, match level, body, stream, faults).
Replay = Callable[[Fixture, str, Any, bool, Faults], _Outcome]


def _find_nested(value: Any, key: str) -> Any:
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for item in value.values():
            found = _find_nested(item, key)
            if found is not None:
                return found
    elif isinstance(value, list):
        for item in value:
            found = _find_nested(item, key)
            if found is not None:
                return found
    return None


class FakeLlamaApp:
    """A WSGI app that answers like llama-server (or another personality) from fixtures."""

    def __init__(
        self,
        fixtures: Iterable[Fixture] = (),
        *,
        personality: str = "llamacpp",
        personality_options: dict[str, str] | None = None,
        api_key: str | None = None,
        ctx_size: int | None = None,
        model: str | None = None,
        strict: bool = False,
        faults: str | Faults = "",
        metrics: bool = False,
        realtime: bool = False,
        request_log: RequestLog | None = None,
        keep_requests: int = DEFAULT_MAX_REQUESTS,
        keep_request_bytes: int = DEFAULT_MAX_BYTES,
        embeddings: bool = False,
        ubatch_size: int = fake_embeddings.DEFAULT_UBATCH,
    ) -> None:
        """Create the app; ctx_size and model default to what the fixtures recorded.

        personality: which server to be, ``NAME[@VERSION]`` (llamacpp, ollama, vllm,
        lmstudio; a bare name is the newest version emulated, see
        :func:`fakellama.personalities.all_versions`); personality_options: that server's
        start-up options (vLLM's ``tool_parser``, Ollama's ``context_shift``); api_key:
        refuse requests without it, as the server's own key setting; ctx_size, model: what
        the server reports (and the context a prompt must fit); strict: answer only from fixtures;
        faults: a fault spec every request gets; metrics: serve /metrics (--metrics);
        realtime: replay streams with their recorded timing; request_log: called with one
        line per request (what ``python -m fakellama serve`` prints); keep_requests,
        keep_request_bytes: how many requests (and bytes of their bodies) ``requests``
        keeps, the oldest dropped first (see :mod:`fakellama.kept`); embeddings: serve
        llama-server's embeddings routes, as ``--embeddings`` does (501 otherwise; the other
        personalities always serve theirs), with vectors as wide as the recorded ones (else
        256) and inputs longer than ubatch_size tokens refused as ``--ubatch-size`` does
        (see :mod:`fakellama.embeddings`).
        """
        self.personality = personality_named(personality, personality_options)
        if api_key and not self.personality.takes_api_key:
            raise ValueError(f"{self.personality.spec} cannot require an API key: "
                             f"{self.personality.no_key_reason}")
        self.store = FixtureStore(self.personality.endpoint)
        self._initial_fixtures = tuple(fixtures)
        self._initial_faults = faults
        self.store.add(self._initial_fixtures)
        self.api_key = api_key
        self.strict = strict
        self.realtime = realtime
        self.request_log = request_log
        self._explicit_ctx = ctx_size is not None
        self.info = ModelInfo(metrics=metrics)
        self.info.ctx_size = ctx_size or self._recorded("n_ctx") or DEFAULT_CTX_SIZE
        self.info.name = model or self._recorded_model() or self.info.name
        if isinstance(ubatch_size, bool) or not isinstance(ubatch_size, int) or ubatch_size < 1:
            raise ValueError(f"ubatch_size must be a positive integer, not {ubatch_size!r}")
        self.info.embeddings = bool(embeddings)
        self.info.ubatch_size = ubatch_size
        recorded_embeddings = [*self.store.candidates(fake_embeddings.OAI),
                               *self.store.candidates(fake_embeddings.LLAMA_NATIVE)]
        self.info.n_embd = fake_embeddings.recorded_width(recorded_embeddings) \
            or self.info.n_embd
        self._recorded_vectors = fake_embeddings.recorded_vectors(recorded_embeddings)
        build = self._recorded("build_info")
        if isinstance(build, str):
            self.info.build_info = build
        self._lock = threading.Lock()
        self._streaming = 0  # streams being sent now: the slots /slots shows as processing
        self._requests = KeptRequests(keep_requests, keep_request_bytes)
        self._faults = Faults()
        self._loading_until = 0.0
        self._replay_cache: dict[tuple[int, bool, bool], tuple[Fixture, Reply | None,
                                                              tuple[SseEvent, ...] | None]] = {}
        self._native_cache: dict[tuple[int, str, bool],
                                 tuple[Fixture, ollama_native.NativeReply]] = {}
        self.set_faults(faults)

    def _recorded(self, key: str) -> Any:
        for fixture in self.store.candidates("props"):
            if fixture.status == 200:
                found = _find_nested(fixture.response_body, key)
                if found is not None:
                    return found
        return None

    def _recorded_model(self) -> str | None:
        for fixture in self.store.candidates("models"):
            data = (fixture.response_body or {}).get("data") if fixture.status == 200 else None
            if isinstance(data, list) and data and isinstance(data[0].get("id"), str):
                return str(data[0]["id"])
        return None

    # -- configuration a test changes while the server runs ---------------------------------

    def add_fixtures(self, fixtures: Iterable[Fixture], replace: bool = False) -> None:
        """Add fixtures to the running app."""
        fixtures = list(fixtures)
        self.store.add(fixtures, replace=replace)
        self._recorded_vectors.update(fake_embeddings.recorded_vectors(fixtures))

    def set_faults(self, faults: str | Faults) -> None:
        """Set the faults every request gets ("" clears them); loading=N starts now."""
        parsed = parse_faults(faults) if isinstance(faults, str) else faults
        with self._lock:
            self._faults = parsed
            self._loading_until = time.monotonic() + parsed.loading if parsed.loading else 0.0

    @property
    def requests(self) -> list[ReceivedRequest]:
        """Return a copy of the requests kept so far (the newest keep_requests), oldest first."""
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def reset(self) -> None:
        """Go back to the fixtures and faults it was created with, and forget every request."""
        store = FixtureStore(self.personality.endpoint)
        store.add(self._initial_fixtures)
        with self._lock:
            self.store = store
            self._replay_cache.clear()
            self._native_cache.clear()
            self._requests.clear()
        self.set_faults(self._initial_faults)

    # -- WSGI ---------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        """Answer one WSGI request."""
        request = Request(environ)
        raw = request.get_data(cache=True)
        # Auth first: a client without the key gets no say in faults (its header is not
        # even parsed), so it cannot make a guarded server stall, drop or 500.
        spec = "" if self.api_key and not self._authorized(request) else (
            request.headers.get(FAULT_HEADER, ""))
        try:
            header_faults = parse_faults(spec)
        except ValueError as exc:
            header_faults = Faults()
            outcome = _Outcome(reply=self.personality.error(400, f"fakellama: {exc}",
                                                            "invalid_request_error"))
        else:
            outcome = self._handle(request, raw, header_faults)
        if (outcome.reply is not None and outcome.reply.status >= 400
                and self.personality.endpoint(request.method, request.path)
                in ollama_native.ENDPOINTS):
            outcome.reply = ollama_native.as_native_error(outcome.reply)
        body: Any = outcome.body
        status = outcome.reply.status if outcome.reply else 200
        if status == 401:  # a client without the key gets nothing kept, nor parsed, of its body
            body, raw = None, b""
        if body is None and raw:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                body = None
        with self._lock:
            self._requests.append(ReceivedRequest(
                request.method, request.path, dict(request.headers.items()), body, raw,
                status, outcome.fixture))
        if self.request_log is not None:
            self.request_log(f"{request.method} {request.path} {status} {outcome.level or '-'}"
                             + (f" {outcome.fixture}" if outcome.fixture else ""))
        faults = outcome.faults
        sock = environ.get(SOCKET_KEY) or environ.get("werkzeug.socket")
        if faults.close:
            _drop(sock)
        if faults.first_token_delay and outcome.events is None:
            time.sleep(faults.first_token_delay)
        headers = self.personality.cors(request.headers.get("Origin"))
        headers.extend(outcome.extra_headers)
        if outcome.fixture:
            headers.append((FIXTURE_HEADER, outcome.fixture))
        if outcome.level:
            headers.append((MATCH_HEADER, outcome.level))
        if outcome.events is not None:
            if self.personality.name == "llamacpp":
                headers.append(("X-Accel-Buffering", "no"))  # as llama-server, for nginx
            start_response("200 OK", [*headers, ("Content-Type", outcome.content_type)])
            return self._stream(outcome.events, faults, sock, _BROKEN_EVENT[outcome.content_type])
        assert outcome.reply is not None
        reply = outcome.reply
        payload = reply.body
        if faults.malformed_json and payload:
            payload = payload[: max(1, len(payload) // 2)]
        cors = {name.lower() for name, _ in headers}
        all_headers = [*headers, *(h for h in reply.headers if h[0].lower() not in cors),
                       ("Content-Length", str(len(payload)))]
        if reply.status >= 400 and self.personality.closes_on_error:
            all_headers.append(("Connection", "close"))
        start_response(f"{reply.status} {_reason(reply.status)}", all_headers)
        if faults.disconnect_after is not None:
            return _cut(payload[: len(payload) // 2], sock)
        return [payload]

    # -- the decision ---------------------------------------------------------------------------

    def _handle(self, request: Request, raw: bytes, header_faults: Faults) -> _Outcome:
        persona = self.personality
        with self._lock:
            faults = self._faults.merged(header_faults)
            loading = time.monotonic() < self._loading_until or header_faults.loading > 0
        method, path = request.method, request.path
        if faults.close:
            return _Outcome(reply=Reply(0, b""), faults=faults, level=FAULT)
        if method == "OPTIONS" and (preflight := persona.preflight(request.headers.get("Origin"))):
            # A browser's preflight carries no key: answered before the key and loading checks.
            return _Outcome(reply=preflight, faults=faults, level=BUILTIN)
        info = self.info
        if loading:
            if persona.loading_behaviour == "absent":
                # Nothing listens until the model is loaded: the connection just ends.
                return _Outcome(reply=Reply(0, b""), faults=replace(faults, close=True),
                                level=FAULT)
            if persona.loading_behaviour == "refuse":
                return _Outcome(reply=persona.loading(), faults=faults, level=FAULT)
            info = replace(self.info, loaded=False)  # "hold": the model loads on demand
        if faults.status:
            return _Outcome(reply=self._fault_status(faults), faults=faults, level=FAULT)
        if self.api_key and persona.guards(method, path) and not self._authorized(request):
            presented = request.headers.get("Authorization")
            return _Outcome(reply=persona.unauthorized(presented), faults=faults,
                            level=VALIDATION)
        endpoint = persona.endpoint(method, path)
        if endpoint is None:
            return _Outcome(reply=persona.not_found(method, path), faults=faults,
                            level=VALIDATION)
        refused = persona.check_request(endpoint, request.headers, raw)
        if refused is not None:
            return _Outcome(reply=refused, faults=faults, level=VALIDATION)
        if loading and (endpoint in persona.generating or endpoint in ollama_native.ENDPOINTS):
            self._wait_for_load(header_faults)
        if endpoint in ollama_native.ENDPOINTS:
            return self._native(endpoint, method, path, raw, faults)
        if endpoint in fake_embeddings.ENDPOINTS and (
                persona.name != "llamacpp" or self.info.embeddings):
            return self._embeddings(endpoint, method, path, raw, faults)
        body: Any = None
        if endpoint in persona.json_body:
            body, bad = persona.parse_body(raw)
            if bad is not None:
                return _Outcome(reply=bad, faults=faults, level=VALIDATION)
        elif endpoint in ("model_one", "model_v0"):
            body = {"model": persona.path_model(path)}
        stream = isinstance(body, dict) and body.get("stream") is True
        if endpoint in persona.generating:
            return self._generate(endpoint, method, path, body, stream, faults, self._replay)
        refusal = persona.validate(endpoint, body) if endpoint in persona.json_body else None
        if refusal is not None:
            return _Outcome(reply=persona.error(refusal.status, refusal.message,
                                                refusal.error_type),
                            faults=faults, level=VALIDATION, body=body)
        # /slots is live state (which slots are generating now): a recording of it is a past
        # moment, so the fake always answers it itself.
        match = self.store.find(endpoint, body, stream) if endpoint != "slots" else None
        if match is not None and (
            match.fixture.metadata.get("personality", "llamacpp") != persona.name
            or (match.fixture.status >= 400 and match.level != "exact")
        ):
            match = None  # another server's recorded /health is not ours; nor another's error
        if match is not None:
            outcome = self._replay(match.fixture, match.level, body, stream, faults)
            outcome.body = body
            return outcome
        if endpoint == "tokenize" and persona.name == "vllm":
            recorded = self._recorded_chat_tokens(body)
            if recorded is not None:
                return recorded
        builtin = persona.builtin(endpoint)
        if builtin is not None:
            reply = builtin(info, body)
            if endpoint == "slots" and reply.status == 200:
                reply = self._slots_in_use(reply)
            return _Outcome(reply=reply, faults=faults, body=body,
                            level=VALIDATION if reply.status >= 400 else BUILTIN)
        message = self.store.describe_miss(method, path, endpoint, body, stream)
        return _Outcome(reply=persona.error(400, message, "invalid_request_error"), faults=faults,
                        body=body, level=MISS)

    def _generate(self, endpoint: str, method: str, path: str, body: Any, stream: bool,
                  faults: Faults, replay: Replay) -> _Outcome:
        """Answer a generating request by the three tiers: fixture, validation, synthesis.

        A fixture answers when it was recorded for this request (any status) or for one that
        differs only in fields that cannot change a successful reply; otherwise llama-server's
        own checks answer an invalid request with its error; otherwise the reply is
        synthesized. Strict mode allows the fixture tier only.
        """
        persona = self.personality
        refusal = persona.validate(endpoint, body)
        early = self._handler_refusal(body) if refusal is None else None
        if early is not None:
            # The server's own handler refuses it (unknown model, tools it was not started
            # for): no fixture recorded from llama-server can answer for it.
            return _Outcome(reply=early, faults=faults, body=body, level=VALIDATION)
        # What was sent is kept as the request; matching and synthesis read it as
        # llama-server would (the same object for llama-server itself).
        sent, body = body, persona.as_llama_request(body)
        if refusal is None and self._explicit_ctx:
            refusal = self._overflow_refusal(body)
        match = self.store.find(endpoint, body, stream)
        if match is not None and not self._honest(match, body, refusal is not None):
            match = None
        if match is not None:
            outcome = replay(match.fixture, match.level, body, stream, faults)
            outcome.body = sent
            return outcome
        if refusal is None:
            refusal = self._overflow_refusal(body)
        if self.strict:
            message = self.store.describe_miss(method, path, endpoint, body, stream)
            if refusal is not None:
                message += (f" (llama-server would answer {refusal.status} {refusal.error_type}: "
                            f"{refusal.message})")
            return _Outcome(reply=persona.error(400, message, "invalid_request_error"),
                            faults=faults, body=sent, level=MISS)
        if refusal is not None:
            extra = dict(refusal.extra)
            source = extra.pop("source", None)
            reply = persona.error(refusal.status, refusal.message, refusal.error_type, **extra)
            if source:
                reply = sourced(reply, source)
            return _Outcome(reply=reply, faults=faults, body=sent, level=VALIDATION)
        try:
            fixture = synthesize.as_fixture(endpoint, body, self.info, stream)
        except Unsatisfiable as exc:
            message = (f"fakellama: cannot synthesize a reply for {method} {path}: {exc}; "
                       f"record a fixture for this request")
            return _Outcome(reply=persona.error(400, message, "invalid_request_error"),
                            faults=faults, body=sent, level=MISS)
        outcome = replay(fixture, SYNTHESIZED, body, stream, faults)
        outcome.fixture = None
        outcome.body = sent
        return outcome

    def _embeddings(self, endpoint: str, method: str, path: str, raw: bytes,
                    faults: Faults) -> _Outcome:
        """An embeddings request: the recorded reply, the server's refusal, or synthesized.

        Only a recording of this very request replays (vectors belong to their inputs);
        its errors come from validation.
        """
        persona = self.personality
        body, bad = persona.parse_body(raw)
        if bad is not None:
            if endpoint == fake_embeddings.OLLAMA_NATIVE:
                bad = ollama_native.as_native_error(bad)
            return _Outcome(reply=bad, faults=faults, level=VALIDATION)
        wanted = canonical_body(body)
        # Only a success answers: a recorded refusal may come from a server with embeddings
        # off (the contract suite's recordings have one), which this server is not.
        fixture = next((f for f in self.store.candidates(endpoint) if f.status == 200
                        and f.metadata.get("personality", "llamacpp") == persona.name
                        and canonical_body(f.body) == wanted), None)
        if fixture is not None:
            outcome = self._replay(fixture, "exact", body, False, faults)
            outcome.body = body
            reply = outcome.reply
            asked = body.get("model") if isinstance(body, dict) else None
            if reply is not None and reply.status == 200 and reply.body.startswith(b'{"model":'):
                # llama-server echoes the request's model, else names its own (--alias).
                named = asked if asked is not None else self.info.name
                model_field = f'"model":{json.dumps(named, ensure_ascii=False)}'
                outcome.reply = Reply(reply.status, _RECORDED_MODEL.sub(
                    lambda _: model_field, reply.body.decode("utf-8"), count=1).encode("utf-8"),
                    reply.headers)
            return outcome
        if self.strict:
            message = self.store.describe_miss(method, path, endpoint, body, False)
            return _Outcome(reply=persona.error(400, message, "invalid_request_error"),
                            faults=faults, body=body, level=MISS)
        model = body.get("model") if isinstance(body, dict) else None
        name = model if isinstance(model, str) and model else self.info.name
        n_embd = self.info.n_embd
        value: Any
        try:
            if persona.name == "llamacpp":
                read = fake_embeddings.read_llama(endpoint, body, self.info.ubatch_size)
                if isinstance(read, Refusal):
                    return _Outcome(reply=persona.error(read.status, read.message,
                                                        read.error_type),
                                    faults=faults, body=body, level=VALIDATION)
                value = fake_embeddings.llama_reply(read, n_embd, name, self._recorded_vectors)
            else:
                texts = fake_embeddings.read_plain(
                    body, empty_ok=endpoint == fake_embeddings.OLLAMA_NATIVE)
                if isinstance(texts, str):
                    refused = (ollama_native.error_reply(400, texts)
                               if endpoint == fake_embeddings.OLLAMA_NATIVE
                               else persona.error(400, texts, "invalid_request_error"))
                    return _Outcome(reply=refused, faults=faults, body=body, level=VALIDATION)
                if persona.name == "ollama":
                    if not isinstance(model, str) or not model:
                        return _Outcome(reply=ollama_native.error_reply(400, "model is required"),
                                        faults=faults, body=body, level=VALIDATION)
                    if model not in (self.info.name, f"{self.info.name}:latest"):
                        return _Outcome(reply=ollama_native.error_reply(
                            404, f"model '{model}' not found"), faults=faults, body=body,
                            level=VALIDATION)
                if endpoint == fake_embeddings.OLLAMA_NATIVE:
                    value = fake_embeddings.ollama_embed_reply(texts, n_embd, name)
                else:
                    value = fake_embeddings.openai_reply(persona.name, texts, n_embd, name)
        except fake_embeddings.CannotSynthesize as exc:
            message = (f"fakellama: cannot synthesize a reply for {method} {path}: {exc}; "
                       f"record a fixture for this request")
            return _Outcome(reply=persona.error(400, message, "invalid_request_error"),
                            faults=faults, body=body, level=MISS)
        return _Outcome(reply=json_reply(200, value), faults=faults, body=body,
                        level=SYNTHESIZED)
    def _handler_refusal(self, body: Any) -> Reply | None:
        """What another server's chat handler refuses before generating (None: it goes on)."""
        persona = self.personality
        if persona.name == "llamacpp" or not isinstance(body, dict):
            return None
        model_check = getattr(persona, "model_refusal", None)
        if model_check is not None:
            refused: Reply | None = model_check(body.get("model"), self.info)
            if refused is not None:
                return refused
        tools_check = getattr(persona, "tools_refusal", None)
        return tools_check(body) if tools_check is not None else None

    def _wait_for_load(self, header_faults: Faults) -> None:
        """Hold a request until the model has loaded (a server that loads on demand)."""
        with self._lock:
            remaining = self._loading_until - time.monotonic()
        time.sleep(max(remaining, header_faults.loading, 0.0))

    def _honest(self, match: Match, body: Any, invalid: bool) -> bool:
        """Whether a matched fixture's reply is what this server would give this request."""
        fixture = match.fixture
        if fixture.status >= 400 and \
                fixture.metadata.get("personality", "llamacpp") != self.personality.name:
            return False  # another server's recorded error is never this one's
        if match.level == "exact":
            # Equal but for stream framing, seed and ids: the recorded answer, error or not.
            # An invalid request is equal only if its volatile fields were valid too.
            return not invalid or fixture.status >= 400
        if invalid or fixture.status >= 400:
            return False  # a recorded error answers only the very request that got it
        return recorded_reply_fits(fixture, body)

    def _native(self, endpoint: str, method: str, path: str, raw: bytes,
                faults: Faults) -> _Outcome:
        """Answer Ollama's /api/chat or /api/generate from the chat fixtures /v1 replays."""
        try:
            request = ollama_native.parse_request(endpoint, raw, self.info.name)
        except ollama_native.NativeError as exc:
            return _Outcome(reply=ollama_native.error_reply(exc.status, str(exc)), faults=faults)
        if request.loading:
            return _Outcome(reply=ollama_native.load_reply(request), faults=faults,
                            body=request.body)

        def replay(fixture: Fixture, level: str, body: Any, stream: bool,
                   faults: Faults) -> _Outcome:
            return self._native_replay(request, fixture, level, faults)

        outcome = self._generate("chat", method, path, request.chat, request.stream, faults,
                                 replay)
        outcome.body = request.body
        return outcome

    def _native_replay(self, request: ollama_native.NativeRequest, fixture: Fixture, level: str,
                       faults: Faults) -> _Outcome:
        """The fixture's reply in Ollama's native shape (rendered once per fixture and form)."""
        if fixture.faults:
            faults = parse_faults(fixture.faults).merged(faults)
        outcome = _Outcome(fixture=fixture.name, level=level, faults=faults)
        if faults.status:
            outcome.reply = self._fault_status(faults)
            return outcome
        key = (id(fixture), request.endpoint, request.thinking)
        cached = self._native_cache.get(key)
        if level == SYNTHESIZED:  # one use: not cached
            cached = (fixture, ollama_native.render(fixture, request.endpoint, request.thinking))
        elif cached is None or cached[0] is not fixture:
            cached = (fixture, ollama_native.render(fixture, request.endpoint, request.thinking))
            with self._lock:
                self._native_cache[key] = cached
        if request.stream and cached[1].error is None:
            outcome.events = cached[1].events(request.model)
            outcome.content_type = ollama_native.NDJSON_CONTENT_TYPE
        else:
            outcome.reply = cached[1].reply(request.model)
        return outcome

    def _authorized(self, request: Request) -> bool:
        # Each server reads its key from its own header (llama-server also takes X-Api-Key).
        return self.api_key is not None and self.personality.key_matches(request.headers,
                                                                         self.api_key)

    def _overflow_refusal(self, body: Any) -> Refusal | None:
        if not isinstance(body, dict):
            return None
        n_prompt = count_prompt_tokens(body)
        max_tokens = None
        for key in ("max_completion_tokens", "max_tokens", "n_predict"):
            value = body.get(key)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                max_tokens = value
                break
        return self.personality.overflow(n_prompt, self.info.ctx_size, max_tokens)

    def _fault_status(self, faults: Faults) -> Reply:
        status = faults.status or 500
        kinds = {429: ("Too many requests", "rate_limit_error"),
                 503: ("Loading model", "unavailable_error")}
        message, kind = kinds.get(status, ("Internal server error (injected fault)",
                                           "server_error"))
        reply = self.personality.error(status, message, kind)
        if faults.retry_after is not None:
            value = f"{faults.retry_after:g}"
            reply = Reply(reply.status, reply.body, (*reply.headers, ("Retry-After", value)))
        return reply

    def _replay(self, fixture: Fixture, level: str, body: Any, stream: bool,
                faults: Faults) -> _Outcome:
        if fixture.faults:
            faults = parse_faults(fixture.faults).merged(faults)
        options = body.get("stream_options") if isinstance(body, dict) else None
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        outcome = _Outcome(fixture=fixture.name, level=level, faults=faults)
        if faults.status:
            outcome.reply = self._fault_status(faults)
            return outcome
        key = (id(fixture), stream, include_usage)
        cached = self._replay_cache.get(key)
        if level == SYNTHESIZED:
            self._render(fixture, stream, include_usage, outcome)  # one use: not cached
        elif cached is not None and cached[0] is fixture:
            outcome.reply, outcome.events = cached[1], cached[2]
        else:
            self._render(fixture, stream, include_usage, outcome)
            with self._lock:
                self._replay_cache[key] = (fixture, outcome.reply, outcome.events)
        if level != SYNTHESIZED:
            _refresh_ids(outcome, self.info.name)
        if outcome.events is not None and faults.empty_choices:
            outcome.events = _empty_choices(outcome.events)
        if outcome.reply is not None and faults.empty_choices:
            outcome.reply = _empty_choices_reply(outcome.reply)
        return outcome

    def _render(self, fixture: Fixture, stream: bool, include_usage: bool,
                outcome: _Outcome) -> None:
        """Fill outcome with the fixture's reply in the form the request asked for."""
        persona = self.personality
        if fixture.streamed and fixture.events is not None:
            if stream:
                events = _fit_usage(fixture.events, include_usage)
                outcome.events = _adapt_events(events, persona.adapt_stream)
            else:
                status, assembled = convert.assemble(fixture.events)
                outcome.reply = json_reply(status, self._patch(persona.adapt_body(assembled)))
        elif stream and fixture.status == 200 and isinstance(fixture.response_body, dict):
            events = convert.split(fixture.response_body, include_usage)
            outcome.events = _adapt_events(events, persona.adapt_stream)
        elif fixture.response_text is not None:
            outcome.reply = Reply(fixture.status, fixture.response_text.encode(),
                                  _replay_headers(fixture))
        else:
            value = self._patch(persona.adapt_body(fixture.response_body))
            headers = _replay_headers(fixture) or json_reply(200, None).headers
            outcome.reply = Reply(fixture.status, dumps(value).encode(), headers)

    def _patch(self, body: Any) -> Any:
        """Make recorded context sizes agree with an explicitly configured --ctx-size.

        With embeddings on, a recorded model listing's ``n_embd`` becomes the width of the
        vectors this server sends (the embeddings fixtures come from another model).
        """
        if not isinstance(body, dict):
            return body
        if self.info.embeddings:
            body = _replace_key(body, "n_embd", self.info.n_embd)
        if not self._explicit_ctx:
            return body
        return _replace_key(body, "n_ctx", self.info.ctx_size)

    def _recorded_chat_tokens(self, body: Any) -> _Outcome | None:
        """vLLM's /tokenize of chat messages, from llama-server's recordings of the same model.

        vLLM renders the chat template and tokenizes the prompt; where llama-server's
        ``/apply-template`` of these messages and ``/tokenize`` of that prompt were
        recorded, they give the real token ids, so the count agrees with the
        ``prompt_tokens`` of a recorded chat reply. Only the fixtures it started with are
        searched. None: answer with the fake's tokenizer.
        """
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list) \
                or body.get("add_generation_prompt") is False or body.get("return_token_strs"):
            return None
        wanted = conversation_key({"messages": body["messages"], "tools": body.get("tools")})
        # By path: this personality's routes hold no /apply-template to index them under.
        recorded = [f for f in self._initial_fixtures if f.method == "POST"]
        for rendered in (f for f in recorded if f.path == "/apply-template"):
            if rendered.status != 200 or conversation_key(rendered.body) != wanted \
                    or not isinstance(rendered.response_body, dict):
                continue
            prompt = rendered.response_body.get("prompt")
            for tokenized in (f for f in recorded if f.path == "/tokenize"):
                asked = tokenized.body if isinstance(tokenized.body, dict) else {}
                answer = tokenized.response_body if isinstance(tokenized.response_body,
                                                                dict) else {}
                ids = answer.get("tokens")
                if tokenized.status == 200 and asked.get("content") == prompt \
                        and asked.get("add_special") is True and isinstance(ids, list) \
                        and all(isinstance(t, int) for t in ids):
                    return _Outcome(reply=json_reply(200, {
                        "count": len(ids), "max_model_len": self.info.ctx_size,
                        "tokens": ids, "token_strs": None}),
                        fixture=tokenized.name, level="conversation", body=body)
        return None

    def _slots_in_use(self, reply: Reply) -> Reply:
        """Mark as processing one slot per stream still being sent, as llama-server shows it."""
        with self._lock:
            busy = self._streaming
        slots = json.loads(reply.body)
        for slot in slots[:busy]:
            slot["is_processing"] = True
        return json_reply(200, slots)

    def _stream(self, events: tuple[SseEvent, ...], faults: Faults,
                sock: socket.socket | None, broken: str) -> Iterator[bytes]:
        # A stream holds a slot until its last event is sent or the client leaves (the
        # server then closes this iterator), so /slots tells a client when generation stops.
        with self._lock:
            self._streaming += 1
        try:
            yield from self._stream_events(events, faults, sock, broken)
        finally:
            with self._lock:
                self._streaming -= 1

    def _stream_events(self, events: tuple[SseEvent, ...], faults: Faults,
                       sock: socket.socket | None, broken: str) -> Iterator[bytes]:
        if faults.first_token_delay:
            time.sleep(faults.first_token_delay)
        previous_t = 0.0
        for index, event in enumerate(events):
            if faults.disconnect_after is not None and index >= faults.disconnect_after:
                _drop(sock)
            if index > 0:
                if faults.tokens_per_second:
                    time.sleep(1.0 / faults.tokens_per_second)
                elif self.realtime:
                    time.sleep(max(0.0, event.t - previous_t))
                if faults.stall and index == faults.stall_after:
                    time.sleep(faults.stall)
            previous_t = event.t
            raw = event.raw
            if (faults.malformed_sse or faults.malformed_json) and index == min(1, len(events) - 1):
                named = api_streams.named_event(raw)
                # A named event (Anthropic, Responses) keeps its name; its data is cut.
                raw = broken if named is None else \
                    f"event: {named[0]}\ndata: {named[1][: len(named[1]) // 2]}\n\n"
            yield raw.encode("utf-8")


_FRAMING_HEADERS = frozenset({"content-length", "transfer-encoding", "connection"})


def _replay_headers(fixture: Fixture) -> tuple[tuple[str, str], ...]:
    """The fixture's response headers, less those the server sets for its own framing."""
    return tuple((k, v) for k, v in fixture.headers.items() if k.lower() not in _FRAMING_HEADERS)


def _drop(sock: socket.socket | None) -> None:
    """Cut the client's connection now (a fault), without a proper end of response."""
    if sock is not None:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
    raise ConnectionAbortedError("fakellama: connection dropped by a fault")


def _cut(payload: bytes, sock: socket.socket | None) -> Iterator[bytes]:
    yield payload
    _drop(sock)


def _reason(status: int) -> str:
    from http import HTTPStatus

    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


# A recorded completion id, tool-call id and creation time: llama-server makes new ones for
# every reply, so a replay does too (one new value per recorded one, the same in every event).
# The Responses API names one call by two ids with one random part ("fc_X", "call_X") and
# refers to items by "item_id": the random part is what is replaced, so they stay paired.
_RECORDED_ID = re.compile(
    r'"(id|item_id|call_id)":"(chatcmpl-|resp_|msg_|fc_|call_|rs_)?([A-Za-z0-9]{32})"')
_RECORDED_CREATED = re.compile(r'"(created|created_at|completed_at)":\d+')
_RECORDED_MODEL = re.compile(r'"model":"(?:[^"\\]|\\.)*"')


def _refresh_ids(outcome: _Outcome, model_name: str) -> None:
    """Give a replayed reply fresh ids and the current time, as a new reply would have.

    The reply's model becomes the one this server reports (fixtures recorded without
    --alias name the model file's temporary path).
    """
    fresh: dict[str, str] = {}
    model = f'"model":{json.dumps(model_name, ensure_ascii=False)}' if model_name else ""
    now = int(time.time())

    def new_id(match: re.Match[str]) -> str:
        key, prefix, old = match.group(1), match.group(2) or "", match.group(3)
        if old not in fresh:
            fresh[old] = random_id()  # the same prefix, a new id
        return f'"{key}":"{prefix}{fresh[old]}"'

    def refresh(text: str) -> str:
        text = _RECORDED_MODEL.sub(lambda _: model, text) if model else text
        text = _RECORDED_ID.sub(new_id, text)
        return _RECORDED_CREATED.sub(lambda m: f'"{m.group(1)}":{now}', text)

    if outcome.events is not None:
        outcome.events = tuple(SseEvent(e.t, refresh(e.raw)) for e in outcome.events)
    elif outcome.reply is not None and outcome.reply.status < 400 and (
            b'"created' in outcome.reply.body or b'"id":"' in outcome.reply.body):
        body = refresh(outcome.reply.body.decode("utf-8")).encode("utf-8")
        outcome.reply = Reply(outcome.reply.status, body, outcome.reply.headers)


def _replace_key(value: Any, key: str, new: Any) -> Any:
    if isinstance(value, dict):
        return {k: (new if k == key else _replace_key(v, key, new)) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_key(v, key, new) for v in value]
    return value


def _payloads(events: tuple[SseEvent, ...]) -> list[tuple[str, str]]:
    return [parse_sse_block(e.raw) for e in events]


def _adapt_events(events: tuple[SseEvent, ...],
                  adapt: Callable[[list[str]], list[str]]) -> tuple[SseEvent, ...]:
    pairs = _payloads(events)
    if any(f != "data" for f, _ in pairs):
        return events
    payloads = [p for _, p in pairs]
    adapted = adapt(payloads)
    if adapted == payloads:
        return events
    return tuple(SseEvent(0.0, sse_event(p)) for p in adapted)


def _fit_usage(events: tuple[SseEvent, ...], include_usage: bool) -> tuple[SseEvent, ...]:
    """Drop or add the usage chunk so the stream answers what the request asked."""
    decoded: list[Any] = []
    for field_name, payload in _payloads(events):
        try:
            decoded.append(json.loads(payload) if field_name == "data" else None)
        except ValueError:
            decoded.append(None)
    usage_at = [i for i, d in enumerate(decoded)
                if isinstance(d, dict) and d.get("choices") == [] and "usage" in d]
    chat = any(isinstance(d, dict) and d.get("object") == "chat.completion.chunk"
               for d in decoded)
    if not chat or bool(usage_at) == include_usage:
        return events
    out = list(events)
    if usage_at:
        index = usage_at[0]
        timings = decoded[index].get("timings")
        del out[index]
        if timings is not None and index > 0 and isinstance(decoded[index - 1], dict):
            previous = dict(decoded[index - 1], timings=timings)
            out[index - 1] = SseEvent(out[index - 1].t, sse_event(dumps(previous)))
        return tuple(out)
    finals = [i for i, d in enumerate(decoded) if isinstance(d, dict)
              and any(c.get("finish_reason") for c in d.get("choices") or [])]
    if not finals:
        return events
    index = finals[-1]
    final = dict(decoded[index])
    timings = final.pop("timings", None)
    usage_chunk: dict[str, Any] = {k: final[k] for k in final if k != "choices"}
    usage_chunk = {"choices": [], **usage_chunk,
                   "usage": convert.usage_from_timings(timings or {})}
    if timings is not None:
        usage_chunk["timings"] = timings
    out[index] = SseEvent(out[index].t, sse_event(dumps(final)))
    out.insert(index + 1, SseEvent(out[index].t, sse_event(dumps(usage_chunk))))
    return tuple(out)


def _empty_choices(events: tuple[SseEvent, ...]) -> tuple[SseEvent, ...]:
    out = []
    for event in events:
        field_name, payload = parse_sse_block(event.raw)
        try:
            value = json.loads(payload)
        except ValueError:
            out.append(event)
            continue
        if isinstance(value, dict) and "choices" in value:
            value["choices"] = []
            out.append(SseEvent(event.t, sse_event(dumps(value), field_name)))
        else:
            out.append(event)
    return tuple(out)


def _empty_choices_reply(reply: Reply) -> Reply:
    try:
        value = json.loads(reply.body)
    except ValueError:
        return reply
    if isinstance(value, dict) and "choices" in value:
        value["choices"] = []
        return Reply(reply.status, dumps(value).encode(), reply.headers)
    return reply
