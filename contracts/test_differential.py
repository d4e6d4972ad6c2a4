"""Differential fuzzing: generated requests sent to fakellama and to the real llama-server.

Every request, valid or not (wrong field types, missing fields, bodies that are not JSON,
unknown routes and methods, CORS origins), goes to both servers; their answers must agree
in what a client can see: the status, the error's ``type`` and ``message``, the content
type, whether the connection is closed, and the CORS header. This keeps the fake honest
as llama-server changes: re-run it against a newer pin (``--real-llama-server``).

What may differ, and is not compared (docs/fixtures.md, "What the fake cannot know"):

- everything a model decides: generated text, token counts, ``finish_reason``, tool-call
  arguments, logprob values; ids, ``created`` and ``timings``;
- the bodies of ``/slots``, ``/props`` and ``/completion``'s ``generation_settings``;
- requests the generator does not make because the fake declines them by design: GBNF
  ``grammar`` (the fake cannot parse or satisfy one), a named ``tool_choice`` (the scripted
  model cannot follow it; the fake answers as a compliant model), prompts near the context
  size (the two count tokens differently), ``/detokenize`` of ids outside the fake's
  vocabulary (the real error names the real model's vocabulary size), an
  empty completion prompt with ``n`` (the pinned llama-server never answers it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .target import Target

pytestmark = pytest.mark.real_server

# The acceptance run is 2,000 examples; FAKELLAMA_DIFF_EXAMPLES sets fewer for a quick look.
EXAMPLES = int(os.environ.get("FAKELLAMA_DIFF_EXAMPLES", "2000"))
# Examples are drawn from a fixed seed, so a CI run cannot fail by chance on a case no
# earlier run met; FAKELLAMA_DIFF_RANDOM=1 draws new ones, to look for more gaps.
DERANDOMIZE = os.environ.get("FAKELLAMA_DIFF_RANDOM", "") in ("", "0")
CHAT = ("POST", "/v1/chat/completions")
ROUTES = [CHAT] * 8 + [
    ("POST", "/chat/completions"), ("POST", "/completion"), ("POST", "/v1/completions"),
    ("POST", "/tokenize"), ("POST", "/detokenize"), ("POST", "/apply-template"),
    ("POST", "/v1/chat/completions/input_tokens"), ("GET", "/health"), ("GET", "/v1/models"),
    ("GET", "/props"), ("GET", "/slots"), ("GET", "/lora-adapters"), ("POST", "/v1/embeddings"),
    ("POST", "/embedding"), ("POST", "/rerank"), ("POST", "/infill"), ("GET", "/cors-proxy"),
    ("GET", "/"), ("GET", "/no/such/route"), ("DELETE", "/health"), ("POST", "/health"),
    ("OPTIONS", "/v1/chat/completions"), ("GET", "/metrics"), ("GET", "/v1/chat/completions"),
    ("HEAD", "/health"), ("HEAD", "/v1/models"), ("PUT", "/health"), ("PATCH", "/props"),
    ("HEAD", "/no/such/route"), ("POST", "/v1/messages"), ("POST", "/v1/responses"),
    ("POST", "/v1/messages/count_tokens"),
]
SCALARS = (st.none() | st.booleans() | st.integers(-3, 40)
           | st.floats(-2, 2, allow_nan=False, allow_infinity=False)
           | st.text(st.characters(codec="utf-8"), max_size=6))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=2)
                    | st.dictionaries(st.sampled_from(["type", "text", "role", "content", "a"]),
                                      inner, max_size=2), max_leaves=6)
TEXT = st.sampled_from(["Say hello.", "Hi", "What is the weather in Paris?", ""])
MESSAGE = st.fixed_dictionaries({}, optional={
    "role": st.sampled_from(["user", "assistant", "system", "tool"]) | JSON,
    "content": TEXT | JSON | st.lists(st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "image_url", "weird"]), "text": TEXT}), max_size=2),
    "tool_calls": JSON,
})
SCHEMA = st.sampled_from([{"type": "object"}, {"type": 123}, {"type": "hiccup"}, {},
                          {"type": ["string", "null"]}, {"enum": []},
                          {"type": "object", "properties": 5}])
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "stream": st.booleans() | JSON,
    "max_tokens": st.integers(0, 6) | JSON,
    "n_predict": st.integers(-1, 6),
    "n": st.integers(1, 2) | JSON,
    "temperature": st.floats(0, 1) | JSON,
    "top_p": JSON,
    "seed": st.integers(0, 9) | JSON,
    "stop": st.lists(TEXT, max_size=2) | JSON,
    "tools": st.none() | st.just([]) | st.just("x") | st.just(
        [{"type": "function", "function": {"name": "get_weather", "parameters": {
            "type": "object", "properties": {"city": {"type": "string"}}}}}]),
    "tool_choice": st.sampled_from(["auto", "none", "required"]),
    "response_format": st.fixed_dictionaries(
        {"type": st.sampled_from(["text", "json_object", "json_schema", "sound", ""])},
        optional={"json_schema": st.fixed_dictionaries({"schema": SCHEMA}), "schema": SCHEMA}),
    "json_schema": SCHEMA,
    "logprobs": st.booleans(),
    "top_logprobs": st.integers(0, 2) | st.none(),
    "continue_final_message": st.booleans(),
    "add_generation_prompt": st.booleans(),
    "stream_options": st.fixed_dictionaries({"include_usage": st.booleans()}),
    "cache_prompt": st.booleans() | JSON,
    # Thinking control, read per request (server-common.cpp, server-schema.cpp).
    "reasoning_format": st.sampled_from(["none", "auto", "deepseek", "deepseek-legacy",
                                         "bogus"]) | JSON,
    "chat_template_kwargs": st.fixed_dictionaries(
        {}, optional={"enable_thinking": st.booleans() | TEXT | JSON}) | JSON,
    "reasoning_effort": st.sampled_from(["low", "medium", "high", "none"]) | JSON,
    "reasoning_budget_tokens": st.integers(-1, 8) | JSON,
}
BODY_FIELDS = st.dictionaries(st.sampled_from(sorted(FIELD_VALUES)), st.none(), max_size=4)


@st.composite
def bodies(draw: st.DrawFn, path: str) -> bytes | None:
    """A request body for a route: mostly a near-valid JSON object, sometimes anything."""
    kind = draw(st.sampled_from(["valid"] * 6 + ["json", "raw", "none"]))
    if kind == "none":
        return None
    if kind == "raw":
        return draw(st.sampled_from([b"", b"{not json", b'{"messages": [', b"[1,2", b"nul",
                                     b'{"a":"\\u12"}', b"\xef\xbb\xbf{}", b'{"a":1}}']))
    if kind == "json":
        return json.dumps(draw(JSON)).encode()
    body: dict[str, Any]
    if path in ("/completion", "/v1/completions"):
        body = {"prompt": draw(TEXT | JSON)}
    elif path == "/tokenize":
        body = {"content": draw(TEXT | JSON)}
    elif path == "/detokenize":
        body = {"tokens": draw(st.lists(st.integers(32, 120), max_size=4)
                               | JSON.filter(lambda v: not _ids_outside_vocab(v)))}
    elif path == "/v1/responses":
        body = {"input": draw(TEXT | st.lists(MESSAGE, max_size=2) | JSON)}
    else:
        body = {"messages": draw(st.lists(MESSAGE, max_size=3)
                                 | st.just([{"role": "user", "content": "Say hello."}]))}
    for name in draw(BODY_FIELDS):
        body[name] = draw(FIELD_VALUES[name])
    if draw(st.booleans()):
        body.pop(draw(st.sampled_from(sorted(body))), None)
    if path in ("/v1/messages", "/v1/responses"):
        # Chat-shaped tools become nameless tools that the scripted model's tool grammar
        # then fails on (a model's doing, not the API's).
        for name in ("tools", "tool_choice"):
            body.pop(name, None)
    if body.get("prompt") in ("", []) and "n" in body:
        del body["n"]  # llama-server never answers an empty prompt with n > 1 (it hangs)
    _bound(body)
    return json.dumps(body).encode()


def _bound(body: dict[str, Any]) -> None:
    """Make sure generation stops early: the scripted model may otherwise fill the context.

    The limit llama-server reads is the first of n_predict, max_completion_tokens,
    max_tokens that is not null; where that is missing or unlimited (-1) it becomes 8.
    A value of the wrong type is left alone: it is refused before anything is generated.
    """
    for name in ("n_predict", "max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if value is None:
            continue
        if isinstance(value, (int, float)) and int(value) == -1:
            body[name] = 8
        return
    body["max_tokens"] = 8


@st.composite
def exchanges(draw: st.DrawFn) -> tuple[str, str, bytes | None, dict[str, str]]:
    """(method, path, body, headers) for one generated request."""
    method, path = draw(st.sampled_from(ROUTES))
    body = draw(bodies(path)) if method == "POST" else None
    headers = {"Content-Type": "application/json"}
    origin = draw(st.sampled_from([None, "http://app.example", "http://localhost:3000"]))
    if origin:
        headers["Origin"] = origin
    return method, path, body, headers


def seen(reply: requests.Response) -> dict[str, Any]:
    """What a client can see of a reply, less what may legitimately differ."""
    out: dict[str, Any] = {
        "status": reply.status_code,
        "content-type": reply.headers.get("Content-Type"),
        "connection": reply.headers.get("Connection"),
        "cors": reply.headers.get("Access-Control-Allow-Origin"),
    }
    if reply.status_code >= 400:
        try:
            error = reply.json().get("error")
        except ValueError:
            error = reply.text
        out["error"] = ({"type": error.get("type"), "message": error.get("message")}
                        if isinstance(error, dict) else error)
    return out


@pytest.fixture(scope="module")
def servers(target: Target) -> Iterator[tuple[str, str]]:
    """(real URL, fake URL): the fake with its bundled fixtures."""
    if target.kind != "real":
        pytest.skip("the differential test compares the fake with a real llama-server: "
                    "run with --real-llama-server")
    from fakellama.server import FakeServer

    with FakeServer() as fake:
        yield target.url, fake.url


def _ids_outside_vocab(value: object) -> bool:
    """A token list with an id the fake's 256-token vocabulary lacks.

    llama-server answers /detokenize of such an id with a 500 naming its own model's
    vocabulary size ("... >= this->size() (which is 271)"), which the fake cannot know.
    """
    return isinstance(value, list) and any(
        isinstance(v, int) and not isinstance(v, bool) and not 0 <= v < 256 for v in value)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(exchange=exchanges())
def test_the_fake_answers_every_generated_request_as_llama_server_does(
        servers: tuple[str, str], exchange: tuple[str, str, bytes | None, dict[str, str]]
) -> None:
    method, path, body, headers = exchange
    answers = []
    for url in servers:
        with requests.Session() as session:
            reply = session.request(method, url + path, data=body, headers=headers, timeout=60)
        answers.append(seen(reply))
    real, fake = answers
    assert fake == real, f"{method} {path} {body!r}"
