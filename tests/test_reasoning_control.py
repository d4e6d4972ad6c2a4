"""Thinking control (``InferenceRequest.think``) and reasoning kept apart from the text."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fakellama.server import FakeServer
from pedrollm import InferenceRequest, new_backend
from pedrollm.errors import (
    BadRequest,
    RequestValidationError,
    ThinkingNotSupported,
    UnsupportedFeature,
)
from pedrollm.reply import split_think
from pedrollm.streaming import ThinkSplitter
from pedrollm.types import InferenceResponse, StreamDelta

PROMPT = "What is six times seven?"

# What each backend puts in the body for each setting of think.
EXPECTED = {
    "llamacpp": {
        True: {"chat_template_kwargs": {"enable_thinking": True}},
        False: {"chat_template_kwargs": {"enable_thinking": False}},
        "high": {"reasoning_effort": "high", "chat_template_kwargs": {"enable_thinking": True}},
    },
    "vllm": {
        True: {"chat_template_kwargs": {"enable_thinking": True}},
        False: {"chat_template_kwargs": {"enable_thinking": False}},
        "low": {"reasoning_effort": "low", "chat_template_kwargs": {"enable_thinking": True}},
    },
    "openai": {
        False: {"chat_template_kwargs": {"enable_thinking": False}},
        "medium": {"reasoning_effort": "medium",
                   "chat_template_kwargs": {"enable_thinking": True}},
    },
    "ollama": {
        True: {"reasoning_effort": "medium"},
        False: {"reasoning_effort": "none"},
        "high": {"reasoning_effort": "high"},
    },
}
CASES = [(kind, think, fields) for kind, table in EXPECTED.items()
         for think, fields in table.items()]
THINK_FIELDS = ("chat_template_kwargs", "reasoning_effort")


def _backend(kind: str, url: str = "http://127.0.0.1:9") -> Any:
    # The fake's model: Ollama and vLLM refuse a request naming another.
    return new_backend({"type": kind, "server_url": url, "model_name": "scripted-tiny.gguf"})


@pytest.mark.parametrize(("kind", "think", "fields"), CASES)
def test_think_becomes_each_servers_own_fields(kind: str, think: Any,
                                               fields: dict[str, Any]) -> None:
    body = _backend(kind).chat_body(InferenceRequest(user_prompt=PROMPT, think=think))
    assert {k: body[k] for k in THINK_FIELDS if k in body} == fields


@pytest.mark.parametrize("kind", ["llamacpp", "vllm", "ollama", "lmstudio", "openai"])
def test_think_left_unset_sends_nothing(kind: str) -> None:
    body = _backend(kind).chat_body(InferenceRequest(user_prompt=PROMPT))
    assert not set(THINK_FIELDS) & set(body)


def test_lm_studio_refuses_think_before_sending_and_says_where_it_is_set() -> None:
    backend = _backend("lmstudio")
    for think in (True, False, "high"):
        with pytest.raises(UnsupportedFeature, match="think is not supported by lmstudio") as info:
            backend.chat_body(InferenceRequest(user_prompt=PROMPT, think=think))
        assert "/v1/responses" in str(info.value)


def test_template_arguments_from_extra_are_merged_with_think_and_win() -> None:
    req = InferenceRequest(user_prompt=PROMPT, think=True, extra={
        "chat_template_kwargs": {"enable_thinking": False, "custom": 1}})
    body = _backend("llamacpp").chat_body(req)
    assert body["chat_template_kwargs"] == {"enable_thinking": False, "custom": 1}


@pytest.mark.parametrize("bad", ["max", "HIGH", 1, 0.5, "none", ""])
def test_think_refuses_other_values_naming_the_field(bad: Any) -> None:
    with pytest.raises(RequestValidationError) as info:
        _backend("llamacpp").chat_body(InferenceRequest(user_prompt=PROMPT, think=bad))
    assert info.value.field == "think"
    assert "low, medium, high" in str(info.value)


def test_think_round_trips_through_json() -> None:
    req = InferenceRequest(user_prompt=PROMPT, think="low")
    assert InferenceRequest.from_json(req.to_json()) == req


def _fixture(name: str, body: dict[str, Any], message: dict[str, Any]) -> dict[str, Any]:
    return {
        "fakellama_fixture": 1, "name": name,
        "request": {"method": "POST", "path": "/v1/chat/completions", "body": body},
        "response": {"status": 200,
                     "headers": {"Content-Type": "application/json; charset=utf-8"},
                     "body": {"choices": [{"finish_reason": "stop", "index": 0,
                                           "message": {"role": "assistant", **message}}],
                              "created": 1764000000, "model": "m", "object": "chat.completion",
                              "id": "chatcmpl-think", "system_fingerprint": "b1",
                              "usage": {"prompt_tokens": 9, "completion_tokens": 6,
                                        "total_tokens": 15}}},
        # Written by hand: no server here thinks (the scripted model and SmolLM2 do not).
        "metadata": {"authored": "by hand"},
    }


def _both(backend: Any, req: InferenceRequest) -> tuple[InferenceResponse,
                                                        list[StreamDelta], InferenceResponse]:
    whole = backend.infer(req)
    deltas = list(backend.stream(req))
    final = deltas[-1].response
    assert final is not None
    return whole, deltas[:-1], final


def _assert_apart(whole: InferenceResponse, deltas: list[StreamDelta],
                  final: InferenceResponse) -> None:
    assert (whole.text, whole.reasoning) == ("42", "Six times seven is 42.")
    assert (final.text, final.reasoning) == (whole.text, whole.reasoning)
    assert "".join(d.content for d in deltas) == final.text
    assert "".join(d.reasoning for d in deltas) == final.reasoning


@pytest.mark.parametrize(("kind", "think"), [("llamacpp", True), ("vllm", "high"),
                                             ("ollama", False), ("ollama", None),
                                             ("lmstudio", None)])
def test_server_reasoning_comes_back_apart_from_the_text_in_infer_and_stream(
        kind: str, think: Any) -> None:
    backend_body = _backend(kind).chat_body(InferenceRequest(user_prompt=PROMPT, think=think))
    fixture = _fixture("think-apart", backend_body,
                       {"content": "42", "reasoning_content": "Six times seven is 42."})
    with FakeServer(personality=kind) as fake:
        fake.add_fixture(fixture)
        with _backend(kind, fake.url) as backend:
            whole, deltas, final = _both(backend, InferenceRequest(user_prompt=PROMPT,
                                                                   think=think))
        _assert_apart(whole, deltas, final)
        sent = fake.requests[-1].body
        assert {k: sent[k] for k in THINK_FIELDS if k in sent} == \
            {k: backend_body[k] for k in THINK_FIELDS if k in backend_body}


@pytest.mark.parametrize("kind", ["llamacpp", "vllm"])
def test_a_think_block_left_in_the_text_is_split_off_in_infer_and_stream(kind: str) -> None:
    # llama-server with reasoning_format "none", or vLLM without a reasoning parser.
    req = InferenceRequest(user_prompt=PROMPT, think=True)
    fixture = _fixture("think-inline", _backend(kind).chat_body(req),
                       {"content": "<think>\nSix times seven is 42.\n</think>\n\n42"})
    with FakeServer(personality=kind) as fake:
        fake.add_fixture(fixture)
        with _backend(kind, fake.url) as backend:
            _assert_apart(*_both(backend, req))


@pytest.mark.parametrize("think", [True, "low"])
def test_ollama_refuses_thinking_to_a_model_without_it(think: Any) -> None:
    # The fake's model lists no "thinking" capability in /api/show, as most models.
    with FakeServer(personality="ollama") as fake, _backend("ollama", fake.url) as backend:
        for call in (backend.infer, lambda r: list(backend.stream(r))):
            with pytest.raises(ThinkingNotSupported) as info:
                call(InferenceRequest(user_prompt=PROMPT, think=think))
            assert isinstance(info.value, UnsupportedFeature)
            assert (info.value.status, info.value.message) == (
                400, '"scripted-tiny.gguf" does not support thinking')
        assert backend.infer(InferenceRequest(user_prompt=PROMPT, think=False)).text


def test_llama_server_refuses_a_string_enable_thinking_as_the_real_one_does() -> None:
    req = InferenceRequest(user_prompt=PROMPT,
                           extra={"chat_template_kwargs": {"enable_thinking": "yes"}})
    with FakeServer() as fake, _backend("llamacpp", fake.url) as backend, \
            pytest.raises(BadRequest) as info:
        backend.infer(req)
    assert info.value.status == 400
    assert info.value.message == \
        'invalid type for "enable_thinking" (expected boolean, got string)'


def _split_stream(pieces: list[str]) -> tuple[str, str]:
    splitter = ThinkSplitter()
    deltas = [d for p in pieces for d in splitter.feed(p)] + splitter.flush()
    return "".join(d.content for d in deltas), "".join(d.reasoning for d in deltas)


THINK_TEXT = st.lists(st.sampled_from(["<think>", "</think>", "<", "</", "think", ">", " ",
                                       "\n", "a", "42", "<thi", "nk>"]),
                      max_size=14).map("".join)


@given(THINK_TEXT, st.lists(st.integers(min_value=0, max_value=40), max_size=6))
def test_streamed_think_split_adds_up_to_the_whole_text_split(text: str, cuts: list[int]) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    content, reasoning = _split_stream(pieces)
    want_text, want_reasoning = split_think(text)
    if want_reasoning is not None and not text.lstrip().startswith("<think>"):
        # A bare "...</think>" (the prompt opened the block) cannot be known while
        # streaming without holding all the text back: the stream leaves it as text.
        assert (content, reasoning) == (text, "")
        return
    assert content == want_text
    assert reasoning == (want_reasoning or "")


def test_splitter_streams_reasoning_before_the_block_ends() -> None:
    splitter = ThinkSplitter()
    assert splitter.feed("<thi") == []
    assert [d.reasoning for d in splitter.feed("nk>Let me ")] == ["Let me"]
    assert [d.reasoning for d in splitter.feed("see</th")] == [" see"]
    assert [d.content for d in splitter.feed("ink>\n\nDone")] == ["Done"]
    assert splitter.flush() == []


def test_request_with_think_is_not_changed_by_building_its_body() -> None:
    req = InferenceRequest(user_prompt=PROMPT, think=True,
                           extra={"chat_template_kwargs": {"x": 1}})
    before = copy.deepcopy(req)
    _backend("llamacpp").chat_body(req)
    assert req == before
