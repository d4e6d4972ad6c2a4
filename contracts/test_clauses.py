"""The contract clauses: one test each, with a stable id and a one-line statement.

Every clause goes through the SDK, the way a user's code would. Clauses check
structure, not wording, so a scripted model and a real one both pass. A clause a
server cannot support reports "unsupported" with the reason.

A clause tests the contract, not the model. Where the outcome depends on what a
model chooses to say, the request constrains it (grammar, json_schema, max_tokens)
so any model can comply; where a model still does not (an empty reply, a text answer
where a tool call was only offered), the clause first checks everything the server
and the SDK owe, then reports "inconclusive" with the reason. "fail" is kept for the
server or the SDK breaking the contract.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import time
from collections.abc import Callable, Iterator
from typing import NoReturn, TypeVar

import pytest

from pedrollm.backend import Backend
from pedrollm.errors import (
    AuthenticationError,
    BadRequest,
    ContextOverflow,
    MediaNotSupported,
    NotFound,
    PedroLLMError,
    StructuredOutputError,
    UnsupportedFeature,
)
from pedrollm.types import InferenceRequest, InferenceResponse, StreamDelta

from . import sample_requests as reqs
from .report import INCONCLUSIVE_PREFIX, UNSUPPORTED_PREFIX, Report
from .servers.llama_server import LlamaServerError
from .target import CHAT_PATH, Target


def unsupported(reason: str) -> NoReturn:
    """Report the clause as not supported by this server, with the reason."""
    pytest.skip(UNSUPPORTED_PREFIX + reason)


def inconclusive(reason: str) -> NoReturn:
    """Report that the model did not do what the clause needs, though constrained."""
    pytest.skip(INCONCLUSIVE_PREFIX + reason)


def clause(clause_id: str, statement: str) -> pytest.MarkDecorator:
    """Mark a test as a contract clause."""
    return pytest.mark.clause(clause_id, statement)


@pytest.fixture
def backend(target: Target) -> Iterator[Backend]:
    """A fresh backend for the target, closed after the clause."""
    with target.backend() as b:
        yield b


@pytest.fixture(scope="module", autouse=True)
def _server_version(target: Target, report: Report) -> None:
    """Put the server's version into the report."""
    with target.backend() as b:
        try:
            report.version = b.server_info().version
        except PedroLLMError:
            report.version = None


def collect(deltas: Iterator[StreamDelta]) -> tuple[list[StreamDelta], InferenceResponse]:
    """Drain a stream; return its deltas and the final response."""
    seen = list(deltas)
    assert seen, "the stream yielded nothing"
    final = seen[-1].response
    assert final is not None, "the last delta carries no response"
    return seen[:-1], final


T = TypeVar("T")


def call_or_unsupported(fn: Callable[..., T], *args: object) -> T:
    """Run fn; a feature the SDK knows this server lacks becomes 'unsupported'."""
    try:
        return fn(*args)
    except UnsupportedFeature as exc:
        unsupported(str(exc))


@clause("C01", "the server reports ready on its health endpoint")
def test_c01_ready(backend: Backend) -> None:
    status = backend.wait_until_ready(timeout=120)
    assert status.ready and status.state == "ok"


@clause("C02", "a server still loading its model is waited out until ready")
def test_c02_loading_waited_out(target: Target, backend: Backend) -> None:
    if target.set_loading is not None and target.loading_holds_requests:
        # A server that loads on demand (Ollama, LM Studio's JIT loading) answers its
        # health check at once and holds a request until the model is loaded.
        target.set_loading(1.0)
        started = time.monotonic()
        assert backend.infer(reqs.chat()).finish_reason in ("stop", "length")
        assert time.monotonic() - started >= 0.8, "the request was not held for the load"
        assert backend.health().ready
        return
    if target.set_loading is not None:
        target.set_loading(1.0)
        assert backend.health().state == "loading"
        status = backend.wait_until_ready(timeout=30, interval=0.2)
        assert status.ready
        assert backend.infer(reqs.chat()).finish_reason in ("stop", "length")
        return
    if target.start_loading is None:
        unsupported(target.loading_unavailable)
    # A real server cannot go back to loading: a second one is started on a model that
    # takes seconds to load, and a request sent during its 503 phase must be held by
    # the SDK's retries until the model is ready, then answered.
    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(target.start_loading())
        except LlamaServerError as exc:
            # The machine loaded the model too fast (a warm page cache): there was no
            # loading phase to hold a request through, so nothing could be checked.
            unsupported(str(exc))
        loading = stack.enter_context(
            target.backend(server_url=url, max_retries=100, retry_budget=300.0))
        state = loading.health().state
        if state == "ok":
            # The load ended between the server's 503 and this check: again no loading
            # phase left to hold a request through.
            unsupported("the model finished loading before a request could be sent")
        assert state == "loading"
        resp = loading.infer(reqs.chat())
        assert resp.finish_reason in ("stop", "length")
        assert loading.health().ready


@clause("C03", "the server lists at least one model, each with an id")
def test_c03_model_list(backend: Backend) -> None:
    models = backend.list_models()
    assert models, "no models listed"
    assert all(isinstance(m.id, str) and m.id for m in models)


@clause("C04", "the context window is discovered from the server and is positive")
def test_c04_context_window(backend: Backend) -> None:
    window = call_or_unsupported(backend.get_context_window)
    assert isinstance(window, int) and window > 0
    assert 0 < backend.get_usable_context() <= window


@clause("C05", "a non-streamed chat reply has text, a finish reason and consistent usage")
def test_c05_chat_shape_and_usage(backend: Backend) -> None:
    resp = backend.infer(reqs.chat())
    assert isinstance(resp.text, str)
    assert resp.finish_reason in ("stop", "length")
    assert resp.next_action == "COMPLETE" and not resp.tool_calls
    assert resp.usage is not None and resp.usage.prompt_tokens > 0
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens
    if not resp.text.strip() and resp.finish_reason == "stop":
        # A model may end its turn at once; the wire was still right up to here.
        inconclusive(f"the model ended its reply without text "
                     f"({resp.usage.completion_tokens} token(s))")
    assert resp.text.strip(), f"no text although finish_reason is {resp.finish_reason!r}"
    assert resp.usage.completion_tokens > 0


@clause("C06", "a streamed reply assembles to the same message as the non-streamed one")
def test_c06_stream_equals_infer(backend: Backend) -> None:
    whole = backend.infer(reqs.chat())
    deltas, final = collect(backend.stream(reqs.chat()))
    assert "".join(d.content for d in deltas) == final.text
    assert final.text == whole.text
    assert final.finish_reason == whole.finish_reason
    assert final.usage is not None and whole.usage is not None
    assert final.usage.completion_tokens == whole.usage.completion_tokens


@clause("C07", "a stream ends with a finish reason and the [DONE] sentinel")
def test_c07_stream_ends_properly(target: Target, backend: Backend) -> None:
    body = backend.chat_body(reqs.chat(), stream=True)
    # Through the SDK's transport, so a failure is its typed error, not a library's.
    events = target.raw_client().open_stream(CHAT_PATH, body)
    assert events.response.status_code == 200
    assert events.response.headers.get("Content-Type", "").startswith("text/event-stream")
    data = list(events)
    assert data and data[-1] == "[DONE]", f"last event: {data[-1:]!r}"
    chunks = [json.loads(d) for d in data[:-1]]
    finishes = [c["choices"][0].get("finish_reason") for c in chunks if c.get("choices")]
    assert any(f in ("stop", "length") for f in finishes)


def _tool_call_request(backend: Backend) -> InferenceRequest:
    """The weather question as this server takes tools; unsupported where it cannot.

    Native tools ask as a user would (the model decides, so a model answering in
    words is inconclusive); constrained mode, for a server with no tool calls of its
    own (a template without tools, llama-server without --jinja), requires the call,
    so any model can meet the contract.
    """
    mode = backend.server_info().tool_mode
    if mode == "native":
        return reqs.tool_call()
    if mode == "constrained":
        return dataclasses.replace(reqs.tool_call(), tool_choice="required")
    unsupported(f"tools reach this server only in the prompt (tool mode {mode!r}): "
                "neither native nor constrained tool calls")


def _looks_like_a_call(text: str) -> bool:
    """Whether reply text carries a tool call, in any format the SDK's parsers know."""
    return any(mark in text for mark in ("<tool_call>", '"name"', "get_weather", "[TOOL_CALLS]",
                                         "<function", "<|python_tag|>"))


def _call_or_inconclusive(resp: InferenceResponse, how: str) -> None:
    """No call and no call-like text: the model chose to answer in words."""
    if not resp.tool_calls and not _looks_like_a_call(resp.text):
        inconclusive(f"the model answered in text instead of calling the tool ({how}): "
                     f"{resp.text[:80]!r}")


@clause("C08", "a tool call (native, or constrained where the server has none) comes back "
               "with its name and arguments as a dict")
def test_c08_tool_call(backend: Backend) -> None:
    req = _tool_call_request(backend)
    resp = backend.infer(req)
    _call_or_inconclusive(resp, f"tool_choice {req.tool_choice or 'auto'}")
    assert resp.next_action == "CONTINUE", f"no tool call; text was {resp.text!r}"
    call = resp.tool_calls[0]
    assert call.name == "get_weather" and isinstance(call.args, dict)
    assert isinstance(call.args.get("city"), str) and call.args["city"]
    assert call.id
    assert resp.finish_reason == "tool_calls"


@clause("C09", "a streamed tool call assembles to the same call as the non-streamed one")
def test_c09_streamed_tool_call(backend: Backend) -> None:
    req = _tool_call_request(backend)
    whole = backend.infer(req)
    deltas, final = collect(backend.stream(req))
    assert final.text == whole.text
    _call_or_inconclusive(whole, f"tool_choice {req.tool_choice or 'auto'}")
    assert [(c.name, c.args) for c in final.tool_calls] == [
        (c.name, c.args) for c in whole.tool_calls]
    assert final.tool_calls, "no tool call streamed"
    assert any(d.tool_call is not None and d.tool_call.name == "get_weather" for d in deltas)


@clause("C10", "a tool call written in the reply's text is found by the SDK's text parser")
def test_c10_tool_call_from_text(target: Target) -> None:
    # Tools go into the system prompt instead of the request, as for a server
    # without native tool calling; the call must come back parsed from the text.
    # The call is required, so where the server takes GBNF the SDK makes the model
    # write one in the format the parser reads.
    req = dataclasses.replace(reqs.tool_call(), tool_choice="required")
    with target.backend(tool_mode="prompt") as b:
        resp = call_or_unsupported(b.infer, req)
        sent = b.chat_body(req)
    assert "tools" not in sent
    _call_or_inconclusive(resp, "tools described in the system prompt only")
    assert resp.tool_calls, f"no tool call found in {resp.text!r}"
    assert resp.tool_calls[0].name == "get_weather"
    assert "<tool_call>" not in resp.text


@clause("C11", "a conversation ending in a tool result gets an assistant reply")
def test_c11_multi_turn_with_tool_result(backend: Backend) -> None:
    resp = backend.infer(reqs.tool_result_turn())
    assert resp.finish_reason in ("stop", "length", "tool_calls")
    if not (resp.text.strip() or resp.tool_calls) and resp.finish_reason == "stop":
        inconclusive("the model ended its turn without text or a call")
    assert resp.text.strip() or resp.tool_calls


@clause("C12", "json_schema constrains the reply to JSON that validates against it")
def test_c12_json_schema(backend: Backend) -> None:
    resp = call_or_unsupported(backend.infer, reqs.json_schema())
    if resp.finish_reason == "length":
        # The schema allows bounded whitespace; a model may still spend max_tokens on it.
        inconclusive(f"the model had not closed the JSON after max_tokens: {resp.text[:80]!r}")
    value = json.loads(resp.text)
    assert isinstance(value, dict) and set(value) == {"ok"}
    assert isinstance(value["ok"], bool)


@clause("C13", "a GBNF grammar constrains the reply to the grammar's language")
def test_c13_grammar(backend: Backend) -> None:
    resp = call_or_unsupported(backend.infer, reqs.grammar())
    assert resp.text.strip() in ("yes", "no")


@clause("C14", "max_tokens stops generation with finish_reason 'length'")
def test_c14_max_tokens_length(backend: Backend) -> None:
    # The request's grammar needs at least one character, so no model may end its turn
    # on the first token: one token later, only max_tokens can have stopped it.
    resp = call_or_unsupported(backend.infer, reqs.one_token())
    assert resp.finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 1


@clause("C15", "a prompt longer than the context raises ContextOverflow with both numbers")
def test_c15_context_overflow(target: Target, backend: Backend) -> None:
    if target.backend_type == "ollama":
        unsupported("Ollama truncates an overlong prompt instead of refusing it")
    window = call_or_unsupported(backend.get_context_window)
    with pytest.raises(ContextOverflow) as info:
        backend.infer(reqs.overflow(window))
    assert info.value.n_ctx is not None and info.value.n_prompt_tokens is not None
    assert info.value.n_prompt_tokens > info.value.n_ctx > 0


@clause("C16", "a missing or wrong API key raises AuthenticationError")
def test_c16_authentication(target: Target) -> None:
    if target.auth_server is None:
        unsupported(target.auth_unavailable)
    url, key = target.auth_server
    for wrong in (None, key + "-wrong"):
        with target.backend(server_url=url, api_key=wrong) as b, \
                pytest.raises(AuthenticationError) as info:
            b.infer(reqs.chat())
        assert info.value.status == 401
        assert key not in str(info.value)
    with target.backend(server_url=url, api_key=key) as b:
        assert b.infer(reqs.chat()).text


@clause("C17", "an unknown route raises NotFound")
def test_c17_unknown_route(target: Target) -> None:
    with pytest.raises(NotFound) as info:
        target.raw_client().get_json("/v1/no-such-route", retry=False)
    assert info.value.status == 404


@clause("C18", "a malformed request raises BadRequest carrying the server's message")
def test_c18_bad_request(target: Target) -> None:
    with pytest.raises(BadRequest) as info:
        target.raw_client().post_json(CHAT_PATH, {"messages": "not a list"}, retry=False)
    assert info.value.status in (400, 422)
    assert info.value.message and info.value.message != f"HTTP {info.value.status}"


@clause("C19", "a non-JSON request body raises BadRequest, not a server error")
def test_c19_malformed_json_body(target: Target) -> None:
    resp = target.raw_client().request(
        "POST", CHAT_PATH, data=b"{not json", headers={"Content-Type": "application/json"},
        retry=False, check=False)
    assert resp.status_code in (400, 422), resp.text[:200]
    assert isinstance(json.loads(resp.text), dict)


@clause("C20", "infer_many answers every request in input order, a failing one holding its "
               "typed error")
def test_c20_infer_many(target: Target, backend: Backend) -> None:
    expected: type[PedroLLMError]
    if target.backend_type == "ollama":
        # Ollama truncates an overlong prompt; a model it does not have fails instead.
        failing, expected = dataclasses.replace(reqs.chat(), model="no-such-model"), NotFound
    else:
        window = call_or_unsupported(backend.get_context_window)
        failing, expected = reqs.overflow(window), ContextOverflow
    progress: list[tuple[int, int]] = []
    results = backend.infer_many(
        [reqs.greedy(user_prompt="Say hello.", max_tokens=1), failing, reqs.chat()],
        max_workers=2, progress=lambda done, total: progress.append((done, total)))
    assert len(results) == 3
    first, second, third = results
    assert isinstance(first, InferenceResponse), f"first request failed: {first!r}"
    assert first.usage is not None and first.usage.completion_tokens <= 1
    assert isinstance(second, expected), f"expected {expected.__name__}, got {second!r}"
    assert isinstance(third, InferenceResponse), f"third request failed: {third!r}"
    assert third.usage is not None and third.usage.completion_tokens > 1 and third.text.strip()
    assert progress == [(1, 3), (2, 3), (3, 3)]


def _slots_busy(target: Target) -> bool | None:
    """Whether the server says it is generating (llama-server's /slots); None: it does not say."""
    try:
        slots = target.raw_client().get_json("/slots", retry=False)
    except PedroLLMError:
        return None
    if not isinstance(slots, list) or not all(isinstance(s, dict) and "is_processing" in s
                                              for s in slots):
        return None
    return any(s["is_processing"] for s in slots)


@clause("C21", "leaving a stream early closes it, and the server stops generating within a "
               "second")
def test_c21_leaving_a_stream_early(target: Target, backend: Backend) -> None:
    if _slots_busy(target) is None:
        unsupported("the server does not show whether it is still generating "
                    "(no /slots with is_processing)")
    deltas = backend.stream(reqs.long_story())
    busy_before, texts = False, 0
    for delta in deltas:
        texts += bool(delta.content)
        if texts == 2:
            busy_before = bool(_slots_busy(target))
            break  # what a user's loop does; the SDK must close the connection here
    del deltas
    if not busy_before:
        inconclusive("the server had finished the whole reply before the stream was left")
    deadline = time.monotonic() + 1.0
    while _slots_busy(target) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _slots_busy(target), "the server still generates a second after the stream was left"
@clause("C22", "count_tokens equals the prompt_tokens the server reports for the same "
               "request, where the server tokenizes; check_fits refuses what cannot fit")
def test_c22_count_tokens(backend: Backend) -> None:
    for req in (reqs.counted(), reqs.counted_with_tools()):
        count = backend.count_tokens(req)
        assert count.n > 0
        if not count.exact:
            unsupported(f"{backend.name} has no tokenizer endpoint; count_tokens estimates "
                        f"({count.method})")
        resp = backend.infer(req)
        assert resp.usage is not None, "the reply reports no usage"
        assert count.n == resp.usage.prompt_tokens, (count, resp.usage)
    window = call_or_unsupported(backend.get_context_window)
    assert backend.check_fits(dataclasses.replace(req, max_tokens=window - count.n)).n == count.n
    with pytest.raises(ContextOverflow) as info:
        backend.check_fits(dataclasses.replace(req, max_tokens=window - count.n + 1))
    assert (info.value.n_prompt_tokens, info.value.n_ctx) == (count.n, window)


@clause("C23", "infer_structured and stream_structured return an instance of the dataclass "
               "whose schema constrained the reply")
def test_c23_structured_output(backend: Backend) -> None:
    try:
        facts = backend.infer_structured(reqs.structured(), reqs.WaterFacts)
        streamed = backend.stream_structured(reqs.structured(), reqs.WaterFacts).result
    except StructuredOutputError as exc:
        if "finish_reason 'length'" in exc.reason:
            inconclusive(f"the model had not closed the JSON after max_tokens: "
                         f"{exc.raw_text[:80]!r}")
        raise
    for value in (facts, streamed):
        assert isinstance(value, reqs.WaterFacts)
        assert isinstance(value.wet, bool)
        assert isinstance(value.state, reqs.WaterState)
        assert value.temperature in ("cold", "warm", "hot")
        assert isinstance(value.reason, reqs.Reason) and isinstance(value.reason.everyday, bool)
@clause("C25", "an image in a user message gets a text reply, or is refused as unsupported "
               "with the server's reason")
def test_c25_images(backend: Backend) -> None:
    req = reqs.image_question()
    try:
        resp = backend.infer(req)
    except MediaNotSupported as exc:
        # The stream is refused the same way before any data arrives.
        with pytest.raises(MediaNotSupported):
            collect(backend.stream(req))
        unsupported(exc.message)
    assert resp.finish_reason in ("stop", "length")
    if not resp.text.strip():
        inconclusive("the model answered the image with no text")


def _no_think_tags(resp: InferenceResponse, how: str) -> None:
    assert "<think>" not in resp.text and "</think>" not in resp.text, \
        f"{how}: the thinking was left in the text: {resp.text[:120]!r}"


@clause("C26", "thinking is turned on or off per request, and the reply keeps the reasoning "
               "apart from the text")
def test_c26_reasoning_control(backend: Backend) -> None:
    off = call_or_unsupported(backend.infer, reqs.thinking(False))
    assert off.finish_reason in ("stop", "length")
    _no_think_tags(off, "thinking off")
    req = reqs.thinking(True)
    # A server that refuses thinking to a model without it (Ollama) makes it unsupported.
    resp = call_or_unsupported(backend.infer, req)
    deltas, streamed = collect(backend.stream(req))
    for got, how in ((resp, "infer"), (streamed, "stream")):
        assert got.finish_reason in ("stop", "length")
        _no_think_tags(got, how)
    assert "".join(d.reasoning for d in deltas) == (streamed.reasoning or "")
    assert "".join(d.content for d in deltas) == streamed.text
    if not resp.reasoning:
        inconclusive("the model gave no reasoning with thinking on (it does not think)")
    assert streamed.reasoning, "infer kept reasoning apart but the stream gave none"
EMBED_TEXTS = ["The quick brown fox jumps over the lazy dog.", "hello",
               "Embeddings map text to vectors."]


@clause("C24", "embeddings: one finite vector per input, all of one width, unit length with "
               "normalize; a server without them says why")
def test_c24_embeddings(target: Target, backend: Backend) -> None:
    try:
        vectors = backend.embed(EMBED_TEXTS)
        server = backend
    except UnsupportedFeature as exc:
        reason = str(exc)
        if target.backend_type == "llamacpp":
            assert "--embeddings" in reason, reason  # the refusal names the flag it needs
        if target.embeddings_server is None:
            unsupported(reason)
        server = target.backend(server_url=target.embeddings_server())
        vectors = server.embed(EMBED_TEXTS)
    with server:
        assert len(vectors) == len(EMBED_TEXTS)
        widths = {len(v) for v in vectors}
        assert len(widths) == 1 and widths.pop() > 0, f"widths {sorted({len(v) for v in vectors})}"
        assert all(isinstance(x, float) and math.isfinite(x) for v in vectors for x in v)
        unit = server.embed(EMBED_TEXTS, normalize=True)
        for vector in unit:
            assert abs(math.sqrt(math.fsum(x * x for x in vector)) - 1.0) < 1e-6
        assert server.embed([]) == []
