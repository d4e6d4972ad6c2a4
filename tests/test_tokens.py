"""Token counting: exact through the server's tokenizer on llama-server and vLLM, estimated on
Ollama and LM Studio; check_fits; the agent's server counter; ``pedrollm tokens``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from fakellama.server import FakeServer
from pedrollm import Agent, ContextOverflow, InferenceRequest, Message, TokenCount, ToolRegistry
from pedrollm.agent import AgentEvent, server_token_counter, trim_conversation
from pedrollm.backend import Backend
from pedrollm.backends.llamacpp import LlamaCppBackend
from pedrollm.backends.pool import PoolBackend
from pedrollm.errors import InvalidResponse
from pedrollm.factory import new_backend
from pedrollm.tokens import ESTIMATE_METHOD, estimate_request_tokens, estimate_tokens
from pedrollm.types import ToolCall, ToolDefinition

from .test_cli import run

WEATHER = ToolDefinition("get_weather", "Current weather for a city", {
    "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]})

REQUESTS = {
    "plain": InferenceRequest(user_prompt="Count the tokens of this question, please.",
                              max_tokens=2),
    "system and history": InferenceRequest(
        system_prompt="You are brief.",
        messages=[Message.user("What is the weather in Paris?"),
                  Message.assistant(None, [ToolCall("c1", "get_weather", {"city": "Paris"})]),
                  Message.tool("c1", "sunny, 22 C", name="get_weather")],
        max_tokens=2),
    "tools": InferenceRequest(user_prompt="Weather in Paris, é and ü?", tools=[WEATHER],
                              max_tokens=2),
}


@pytest.fixture(scope="module", params=["llamacpp", "vllm", "ollama", "lmstudio"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, FakeServer]]:
    """A fake of each server kind, with its context window set."""
    with FakeServer(personality=request.param, ctx_size=2048) as fake:
        yield request.param, fake


@pytest.mark.parametrize("name", REQUESTS)
def test_count_is_exact_and_equals_reported_prompt_tokens_where_the_server_tokenizes(
        served: tuple[str, FakeServer], name: str) -> None:
    kind, fake = served
    req = REQUESTS[name]
    with new_backend({"type": kind, "server_url": fake.url}) as llm:
        count = llm.count_tokens(req)
        usage = llm.infer(req).usage
    assert usage is not None
    if kind in ("llamacpp", "vllm"):
        assert count.exact
        assert count.n == usage.prompt_tokens
        assert ("llama-server" if kind == "llamacpp" else "vLLM") in count.method
    else:
        assert count == estimate_request_tokens(req)
        assert not count.exact and count.method == ESTIMATE_METHOD


def test_count_asks_the_server_without_generating(served: tuple[str, FakeServer]) -> None:
    kind, fake = served
    fake.app.clear_requests()
    with new_backend({"type": kind, "server_url": fake.url}) as llm:
        llm.count_tokens(REQUESTS["tools"])
    paths = [r.path for r in fake.requests if r.method == "POST"]
    assert "/v1/chat/completions" not in paths and "/api/chat" not in paths
    expected = {"llamacpp": ["/apply-template", "/tokenize"], "vllm": ["/tokenize"]}
    assert [p for p in paths if p in ("/apply-template", "/tokenize")] == expected.get(kind, [])
    if kind == "llamacpp":  # special tokens added and parsed, as for a chat prompt
        tokenize = [r.body for r in fake.requests if r.path == "/tokenize"][0]
        assert tokenize["add_special"] is True and tokenize["parse_special"] is True
    if kind == "vllm":  # the tools go with the messages, so the template shows them
        assert [r.body for r in fake.requests if r.path == "/tokenize"][0]["tools"]


def test_text_count_is_the_tokenizers_or_the_estimate(served: tuple[str, FakeServer]) -> None:
    kind, fake = served
    text = "Grüße, world"  # the fake's tokenizer: one token per UTF-8 byte
    with new_backend({"type": kind, "server_url": fake.url}) as llm:
        count = llm.count_text_tokens(text)
    if kind in ("llamacpp", "vllm"):
        assert (count.n, count.exact) == (len(text.encode()), True)
    else:
        assert (count.n, count.exact) == (estimate_tokens(text), False)


@pytest.mark.filterwarnings("ignore:LM Studio at .* shows only the maximum context")
def test_check_fits_returns_the_count_up_to_the_window_and_refuses_past_it(
        served: tuple[str, FakeServer]) -> None:
    kind, fake = served
    req = REQUESTS["plain"]
    with new_backend({"type": kind, "server_url": fake.url}) as llm:
        n = llm.count_tokens(req).n
        assert llm.check_fits(InferenceRequest(user_prompt=req.user_prompt,
                                               max_tokens=2048 - n)).n == n
        fake.app.clear_requests()
        with pytest.raises(ContextOverflow) as info:
            llm.check_fits(InferenceRequest(user_prompt=req.user_prompt, max_tokens=2049 - n))
    assert (info.value.n_prompt_tokens, info.value.n_ctx) == (n, 2048)
    assert info.value.status == 400 and info.value.url is None
    message = str(info.value)
    assert message.startswith("request (") and "HTTP" not in message
    assert f"max_tokens {2049 - n}" in message and "2048-token context window" in message
    assert ("about " in message) is (kind in ("ollama", "lmstudio"))
    assert all(r.path != "/v1/chat/completions" for r in fake.requests)  # nothing was sent


def test_check_fits_without_max_tokens_needs_room_for_one_token(fake_llama_server: FakeServer
                                                                ) -> None:
    with new_backend({"type": "llamacpp", "server_url": fake_llama_server.url,
                      "context_size": 100}) as llm:
        n = llm.count_tokens(InferenceRequest(user_prompt="x" * 10)).n
        fill = "x" * (10 + 99 - n)  # one byte, one token, in the fake
        assert llm.check_fits(InferenceRequest(user_prompt=fill)).n == 99
        with pytest.raises(ContextOverflow, match="at least 1 reply token"):
            llm.check_fits(InferenceRequest(user_prompt=fill + "x"))


def test_check_fits_counts_the_configured_max_tokens(fake_llama_server: FakeServer) -> None:
    with new_backend({"type": "llamacpp", "server_url": fake_llama_server.url,
                      "context_size": 100, "max_tokens": 90}) as llm:
        with pytest.raises(ContextOverflow, match="max_tokens 90"):
            llm.check_fits(InferenceRequest(user_prompt="Hello"))
        assert llm.check_fits(InferenceRequest(user_prompt="Hello", max_tokens=5)).exact


def test_a_pool_counts_with_its_first_server_and_fits_its_smallest_window() -> None:
    with FakeServer(ctx_size=4096) as big, FakeServer(ctx_size=512) as small, \
            PoolBackend([LlamaCppBackend(big.url), LlamaCppBackend(small.url)]) as pool:
        count = pool.count_tokens(REQUESTS["plain"])
        assert count.exact and pool.count_text_tokens("abc").n == 3
        with pytest.raises(ContextOverflow) as info:
            pool.check_fits(InferenceRequest(user_prompt=REQUESTS["plain"].user_prompt,
                                             max_tokens=600))
        assert info.value.n_ctx == 512
        assert [r.path for r in small.requests if r.method == "POST"] == []


def test_a_tokenizer_reply_without_tokens_is_an_invalid_response(httpserver: HTTPServer
                                                                 ) -> None:
    httpserver.expect_request("/apply-template").respond_with_json({"prompt": "hi"})
    httpserver.expect_request("/tokenize").respond_with_json({"count": 2})
    with LlamaCppBackend(httpserver.url_for("/"), max_retries=0) as llm, \
            pytest.raises(InvalidResponse, match="/tokenize answered without a token list"):
        llm.count_tokens(InferenceRequest(user_prompt="hi"))


def test_the_server_counter_asks_once_per_text(fake_llama_server: FakeServer) -> None:
    with LlamaCppBackend(fake_llama_server.url) as llm:
        count = server_token_counter(llm)
        fake_llama_server.app.clear_requests()
        assert [count("héllo"), count("héllo"), count(""), count("ab")] == [6, 6, 0, 2]
    assert [r.body["content"] for r in fake_llama_server.requests] == ["héllo", "ab"]


def test_agent_trims_with_the_server_count_when_asked(fake_llama_server: FakeServer) -> None:
    events: list[AgentEvent] = []
    with LlamaCppBackend(fake_llama_server.url) as llm:
        Agent(llm, ToolRegistry(), "Be brief.", count_tokens="server",
              on_event=events.append, max_tokens=8).run("Say hello.")
    request = next(e for e in events if e.kind == "request")
    pinned = [Message.system("Be brief."), Message.user("Say hello.")]
    expected = trim_conversation(pinned, [], None, count=lambda t: len(t.encode()))
    assert request.data["estimated_tokens"] == expected.estimated_tokens
    assert any(r.path == "/tokenize" for r in fake_llama_server.requests)


def test_agent_refuses_an_unknown_count_tokens_value() -> None:
    with LlamaCppBackend("http://127.0.0.1:9") as llm, \
            pytest.raises(ValueError, match="count_tokens must be .* 'server' or None"):
        Agent(llm, ToolRegistry(), count_tokens="exact")  # type: ignore[arg-type]


def test_backends_without_a_tokenizer_estimate() -> None:
    class Minimal(LlamaCppBackend):
        pass

    assert Backend.count_tokens(Minimal("http://127.0.0.1:9"), REQUESTS["plain"]) == TokenCount(
        n=estimate_request_tokens(REQUESTS["plain"]).n, exact=False, method=ESTIMATE_METHOD)


# -- pedrollm tokens -------------------------------------------------------------------


def test_cli_counts_text_and_says_it_is_exact(fake_llama_server: FakeServer,
                                              tmp_path: Path) -> None:
    out = run("--server-url", fake_llama_server.url, "tokens", "Hello world", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "11 tokens, exact (llama-server /tokenize)\n"
    as_json = run("--server-url", fake_llama_server.url, "tokens", "--json", "Hi", cwd=tmp_path)
    assert json.loads(as_json.stdout) == {"n": 2, "exact": True,
                                          "method": "llama-server /tokenize"}


def test_cli_counts_a_messages_file_as_the_request_would_be_sent(
        fake_llama_server: FakeServer, tmp_path: Path) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    (tmp_path / "m.json").write_text(json.dumps(messages))
    with LlamaCppBackend(fake_llama_server.url) as llm:
        expected = llm.count_tokens(InferenceRequest(messages=[Message.from_dict(m)
                                                               for m in messages])).n
    out = run("--server-url", fake_llama_server.url, "tokens", "--messages", "m.json",
              cwd=tmp_path)
    assert out.stdout == f"{expected} tokens, exact (llama-server /apply-template + /tokenize)\n"
    with_tools = {"messages": messages, "tools": [WEATHER.to_dict()]}
    piped = run("--server-url", fake_llama_server.url, "tokens", "--messages", "-",
                cwd=tmp_path, stdin=json.dumps(with_tools))
    assert int(piped.stdout.split()[0]) > expected


def test_cli_says_when_the_count_is_an_estimate(tmp_path: Path) -> None:
    with FakeServer(personality="ollama") as fake:
        out = run("--server-url", fake.url, "--backend", "ollama", "tokens", "Hello world",
                  cwd=tmp_path)
    assert out.stdout == "3 tokens, estimated (estimate: one token per four characters)\n"


@pytest.mark.parametrize("args, stdin, complaint", [
    ((), None, "give either TEXT or --messages FILE"),
    (("text", "--messages", "-"), "[]", "give either TEXT or --messages FILE"),
    (("--messages", "-"), "{not json", "--messages -: not JSON"),
    (("--messages", "-"), '{"messages": "hi"}', 'expected a list of messages'),
    (("--messages", "-"), '[{"content": "no role"}]', "--messages -: not a request"),
])
def test_cli_tokens_usage_errors_name_the_problem(fake_llama_server: FakeServer, tmp_path: Path,
                                                  args: tuple[str, ...], stdin: str | None,
                                                  complaint: str) -> None:
    out = run("--server-url", fake_llama_server.url, "tokens", *args, cwd=tmp_path, stdin=stdin)
    assert out.returncode == 2
    assert complaint in out.stderr
