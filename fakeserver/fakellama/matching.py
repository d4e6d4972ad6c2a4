"""Matching a request to a fixture: canonical forms, the fallback order, closest candidates."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fakellama.convert import assemble
from fakellama.fixtures import Fixture

# Fields that change between otherwise identical requests, or only choose the framing;
# "model" too: llama-server serves its one model whatever a request names.
VOLATILE_FIELDS = frozenset(
    {"stream", "stream_options", "seed", "id", "user", "cache_prompt", "timings_per_token",
     "model"}
)
# Fields that tune sampling but not what the conversation asks.
SAMPLING_FIELDS = frozenset(
    {
        "temperature", "top_p", "top_k", "min_p", "typical_p", "max_tokens",
        "max_completion_tokens", "n_predict", "frequency_penalty", "presence_penalty",
        "repeat_penalty", "repeat_last_n", "stop", "logit_bias", "n", "parallel_tool_calls",
    }
)
LEVELS = ("exact", "sampling", "conversation")
# Fields that change what a successful reply may hold: a fixture matched at the sampling or
# conversation level answers only if the request asks the same of them.
CONSTRAINT_FIELDS = ("response_format", "json_schema", "grammar", "tool_choice", "logprobs",
                     "top_logprobs", "n_probs", "n", "n_cmpl", "continue_final_message",
                     "add_generation_prompt", "ignore_eos")


def request_limit(body: Any) -> int | None:
    """The most tokens a request lets the server generate (None: no limit)."""
    if not isinstance(body, dict):
        return None
    # n_predict wins over its aliases (llama-server reads it last).
    for name in ("n_predict", "max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return None if value < 0 else int(value)
    return None


def request_stops(body: Any) -> list[str]:
    """The stop strings a request gives."""
    stop = body.get("stop") if isinstance(body, dict) else None
    if isinstance(stop, str):
        return [stop] if stop else []
    if isinstance(stop, list):
        return [s for s in stop if isinstance(s, str) and s]
    return []


def _reply_summary(reply: Any) -> tuple[str, str | None, int | None]:
    """(generated text, finish reason, completion tokens) of a recorded successful reply."""
    if not isinstance(reply, dict):
        return "", None, None
    usage: dict[str, Any] = reply["usage"] if isinstance(reply.get("usage"), dict) else {}
    tokens = usage.get("completion_tokens", reply.get("tokens_predicted"))
    choices = reply.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        message: dict[str, Any] = (choice["message"] if isinstance(choice.get("message"), dict)
                                   else {})
        text = str(message.get("content") or choice.get("text") or "")
        for call in message.get("tool_calls") or []:
            text += str((call.get("function") or {}).get("arguments", ""))
        return text, choice.get("finish_reason"), tokens
    stop_type = reply.get("stop_type")
    return (str(reply.get("content", "")), "length" if stop_type == "limit" else "stop", tokens)


def recorded_reply_fits(fixture: Fixture, body: Any) -> bool:
    """Whether a fixture recorded for a similar request is what this request would get.

    The request may differ in sampling fields, but not in a way that changes the reply: a
    token limit below what was generated, a stop string the reply contains, a different
    limit where the recorded reply was cut by its own, a different constraint (schema,
    grammar, tool choice, logprobs, number of choices).
    """
    if not isinstance(body, dict) or not isinstance(fixture.body, dict):
        return False
    if any(body.get(f) != fixture.body.get(f) for f in CONSTRAINT_FIELDS):
        return False
    if fixture.events is not None:
        try:
            reply: Any = assemble(fixture.events)[1]
        except (ValueError, KeyError, TypeError):
            return False
    else:
        reply = fixture.response_body
    text, finish, tokens = _reply_summary(reply)
    limit = request_limit(body)
    if finish == "length":
        return limit == request_limit(fixture.body)
    if limit is not None and (not isinstance(tokens, int) or limit < tokens):
        return False
    stops = request_stops(body)
    return stops == request_stops(fixture.body) or not any(s in text for s in stops)


def _strip_ids(messages: Any) -> Any:
    if not isinstance(messages, list):
        return messages
    out = []
    for message in messages:
        if not isinstance(message, dict):
            out.append(message)
            continue
        clean = {k: v for k, v in message.items() if k != "tool_call_id"}
        calls = clean.get("tool_calls")
        if isinstance(calls, list):
            clean["tool_calls"] = [
                {k: v for k, v in c.items() if k != "id"} if isinstance(c, dict) else c
                for c in calls
            ]
        out.append(clean)
    return out


def canonical_body(body: Any) -> Any:
    """Return the body without volatile fields (stream framing, seed, ids)."""
    if not isinstance(body, dict):
        return body
    clean = {k: v for k, v in body.items() if k not in VOLATILE_FIELDS}
    if "messages" in clean:
        clean["messages"] = _strip_ids(clean["messages"])
    return clean


def _without_sampling(body: Any) -> Any:
    if not isinstance(body, dict):
        return body
    return {k: v for k, v in body.items() if k not in SAMPLING_FIELDS}


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return " ".join(content.split())
    if isinstance(content, list):
        parts = [p["text"] for p in content
                 if isinstance(p, dict) and isinstance(p.get("text"), str)]
        return " ".join(" ".join(parts).split())
    return ""


def _listed(value: Any) -> list[Any]:
    """The value if it is a list, else no items (a request body may hold anything)."""
    return value if isinstance(value, list) else []


def _tool_names(body: dict[str, Any]) -> tuple[str, ...]:
    names = []
    for tool in _listed(body.get("tools")):
        if isinstance(tool, dict):
            function = tool.get("function")
            if isinstance(function, dict) and isinstance(function.get("name"), str):
                names.append(function["name"])
    return tuple(sorted(names))


def conversation_key(body: Any) -> Any:
    """Return what a chat asks, ignoring parameters: roles, texts, tool calls, tool names."""
    if not isinstance(body, dict):
        return body
    turns = []
    for message in _listed(body.get("messages")):
        if not isinstance(message, dict):
            continue
        calls = tuple(
            str(c["function"].get("name"))
            for c in _listed(message.get("tool_calls"))
            if isinstance(c, dict) and isinstance(c.get("function"), dict)
        )
        turns.append((message.get("role"), _text_of(message.get("content")), calls))
    prompt = body.get("prompt")
    system = _text_of(body.get("system"))  # the Anthropic API's system prompt, beside messages
    return (tuple(turns), _text_of(prompt) if prompt is not None else None, _tool_names(body),
            system)


def _fingerprint(key: Any) -> str:
    return json.dumps(key, sort_keys=True, ensure_ascii=False, default=str)


def key_for(level: str, body: Any) -> Any:
    """Return the comparison key of a body at one matching level."""
    clean = canonical_body(body)
    if level == "exact":
        return clean
    if level == "sampling":
        return _without_sampling(clean)
    if not isinstance(clean, dict) or ("messages" not in clean and "prompt" not in clean):
        # Only chats and prompts have a conversation to compare; anything else (the
        # Anthropic and Responses shapes) must match at the sampling level.
        return ("no conversation", _without_sampling(clean))
    return conversation_key(clean)


def differences(fixture: Any, request: Any, path: str = "", limit: int = 6) -> list[str]:
    """List the JSON paths where a fixture's body and a request's differ (at most limit)."""
    out: list[str] = []

    def walk(a: Any, b: Any, where: str) -> None:
        if len(out) >= limit:
            return
        if isinstance(a, dict) and isinstance(b, dict):
            for key in list(a) + [k for k in b if k not in a]:
                sub = f"{where}.{key}" if where else str(key)
                if key not in a:
                    out.append(f"{sub} (only in request)")
                elif key not in b:
                    out.append(f"{sub} (only in fixture)")
                else:
                    walk(a[key], b[key], sub)
        elif isinstance(a, list) and isinstance(b, list):
            if len(a) != len(b):
                out.append(f"{where or 'body'} (length {len(a)} in fixture, {len(b)} in request)")
            for i, (x, y) in enumerate(zip(a, b, strict=False)):
                walk(x, y, f"{where}[{i}]")
        elif a != b:
            out.append(where or "body")

    walk(fixture, request, path)
    return out


def _structure(body: Any) -> tuple[Any, ...]:
    if not isinstance(body, dict):
        return (type(body).__name__,)
    messages = [m for m in _listed(body.get("messages")) if isinstance(m, dict)]
    last_role = messages[-1].get("role") if messages else None
    return (last_role, len(messages), _tool_names(body), "prompt" in body)


def distance(request_body: Any, fixture_body: Any) -> tuple[int, int]:
    """Order candidates: structural mismatches (last role, turn count, tools) then field diffs."""
    a, b = _structure(canonical_body(request_body)), _structure(canonical_body(fixture_body))
    structural = sum(1 for x, y in zip(a, b, strict=False) if x != y) + abs(len(a) - len(b))
    return structural, len(differences(canonical_body(request_body), canonical_body(fixture_body),
                                       limit=1000))


@dataclass(frozen=True)
class Match:
    """The fixture chosen for a request and the level that chose it."""

    fixture: Fixture
    level: str


class FixtureStore:
    """A thread-safe set of fixtures, indexed by endpoint, answering match queries."""

    def __init__(self, endpoint_of: Callable[[str, str], str | None]) -> None:
        """Create an empty store; endpoint_of maps (method, path) to an endpoint name."""
        self._endpoint_of = endpoint_of
        self._lock = threading.Lock()
        self._by_endpoint: dict[str, list[Fixture]] = {}
        self._names: set[str] = set()
        # endpoint -> level -> request fingerprint -> fixtures, in load order: a lookup
        # per level instead of a scan of every fixture on every request.
        self._index: dict[str, dict[str, dict[str, list[Fixture]]]] = {}

    def add(self, fixtures: Iterable[Fixture], replace: bool = False) -> None:
        """Add fixtures; a later fixture with a taken name replaces it only when replace."""
        with self._lock:
            replaced = False
            for fixture in fixtures:
                endpoint = self._endpoint_of(fixture.method, fixture.path) or (
                    f"{fixture.method} {fixture.path}"
                )
                if fixture.name in self._names:
                    if not replace:
                        raise ValueError(f"fixture name {fixture.name!r} is already loaded")
                    for bucket in self._by_endpoint.values():
                        bucket[:] = [f for f in bucket if f.name != fixture.name]
                    replaced = True
                self._names.add(fixture.name)
                self._by_endpoint.setdefault(endpoint, []).append(fixture)
                if not replaced:
                    self._index_one(endpoint, fixture)
            if replaced:
                self._index = {}
                for endpoint, bucket in self._by_endpoint.items():
                    for fixture in bucket:
                        self._index_one(endpoint, fixture)

    def _index_one(self, endpoint: str, fixture: Fixture) -> None:
        """Add one fixture to the fingerprint index (the lock is held)."""
        levels = self._index.setdefault(endpoint, {level: {} for level in LEVELS})
        for level in LEVELS:
            key = _fingerprint(key_for(level, fixture.body))
            levels[level].setdefault(key, []).append(fixture)

    def all(self) -> list[Fixture]:
        """Return every fixture in load order."""
        with self._lock:
            return [f for bucket in self._by_endpoint.values() for f in bucket]

    def candidates(self, endpoint: str) -> list[Fixture]:
        """Return the fixtures recorded for one endpoint."""
        with self._lock:
            return list(self._by_endpoint.get(endpoint, ()))

    def find(self, endpoint: str, body: Any, stream: bool) -> Match | None:
        """Find a fixture by the fallback order exact, sampling, conversation; None if none."""
        with self._lock:
            levels = self._index.get(endpoint, {})
        for level in LEVELS:
            hits = levels.get(level, {}).get(_fingerprint(key_for(level, body)), [])
            if hits:
                same_form = [f for f in hits if f.streamed == stream]
                return Match((same_form or hits)[0], level)
        return None

    def closest(self, endpoint: str, body: Any, stream: bool, count: int = 3) -> list[Fixture]:
        """Return up to count fixtures of the endpoint, nearest first."""
        pool = self.candidates(endpoint)
        pool.sort(key=lambda f: (*distance(body, f.body), f.streamed != stream, f.name))
        return pool[:count]

    def describe_miss(self, method: str, path: str, endpoint: str, body: Any, stream: bool) -> str:
        """Explain a strict-mode miss: the closest fixtures and how each differs."""
        near = self.closest(endpoint, body, stream)
        if not near:
            return f"fakellama: no fixture for {method} {path} (no fixtures for this endpoint)"
        parts = []
        for fixture in near:
            diffs = differences(canonical_body(fixture.body), canonical_body(body))
            parts.append(f"'{fixture.name}' differs in: {', '.join(diffs) or 'nothing'}")
        return f"fakellama: no fixture matches {method} {path}; closest: " + "; ".join(parts)
