"""``Backend.embed`` against the fake as each server: vectors, order, batching, errors."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator

import pytest
from pytest_httpserver import HTTPServer

from fakellama.fixtures import Fixture, bundled_dir, load_dir
from fakellama.server import FakeServer
from pedrollm import new_backend
from pedrollm.backends import LlamaCppBackend, LMStudioBackend, OllamaBackend, VLLMBackend
from pedrollm.backends.openai import OpenAIBackend
from pedrollm.errors import (
    InputTooLarge,
    InvalidResponse,
    UnsupportedFeature,
    error_from_response,
)

TEXTS = ["The quick brown fox jumps over the lazy dog.", "hello",
         "Embeddings map text to vectors."]
BACKENDS: dict[str, type[OpenAIBackend]] = {
    "llamacpp": LlamaCppBackend, "ollama": OllamaBackend, "vllm": VLLMBackend,
    "lmstudio": LMStudioBackend,
}


@pytest.fixture(scope="module")
def llama_embeddings() -> Iterator[FakeServer]:
    """A fake llama-server started with --embeddings (the recorded SmolLM2 vectors)."""
    with FakeServer(embeddings=True) as fake:
        yield fake


def _backend(fake: FakeServer, kind: str) -> OpenAIBackend:
    model = "scripted-tiny.gguf" if kind == "ollama" else None
    return BACKENDS[kind](fake.url, model=model, max_retries=0)


def _norm(vector: list[float]) -> float:
    return math.sqrt(math.fsum(v * v for v in vector))


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_every_backend_returns_one_vector_per_text_in_order(kind: str) -> None:
    options = {"embeddings": True} if kind == "llamacpp" else {"personality": kind}
    with FakeServer(**options) as fake, _backend(fake, kind) as backend:
        vectors = backend.embed(TEXTS)
        assert len(vectors) == len(TEXTS)
        assert len({len(v) for v in vectors}) == 1 and len(vectors[0]) > 0
        assert all(math.isfinite(x) for v in vectors for x in v)
        # In input order: each text alone gets the vector it got in the batch (llama-server's
        # own differ in the 8th digit between the two: float32 sums in another order).
        for text, batched in zip(TEXTS, vectors, strict=True):
            alone = backend.embed(text)[0]
            assert max(abs(a - b) for a, b in zip(alone, batched, strict=True)) < 1e-6
        path = "/api/embed" if kind == "ollama" else "/v1/embeddings"
        assert [r.path for r in fake.requests if "embed" in r.path][0] == path


def test_recorded_vectors_are_replayed_for_the_recorded_request(
        llama_embeddings: FakeServer) -> None:
    with LlamaCppBackend(llama_embeddings.url) as backend:
        vectors = backend.embed(TEXTS)
    assert len(vectors[0]) == 576  # SmolLM2-135M's n_embd
    assert llama_embeddings.requests[-1].status == 200
    # llama-server normalises (Euclidean) by default.
    assert all(abs(_norm(v) - 1.0) < 1e-5 for v in vectors)


def test_a_single_string_is_one_text(llama_embeddings: FakeServer) -> None:
    with LlamaCppBackend(llama_embeddings.url) as backend:
        one = backend.embed("hello")
    assert len(one) == 1 and len(one[0]) == 576


def test_an_empty_list_sends_nothing(llama_embeddings: FakeServer) -> None:
    before = len(llama_embeddings.requests)
    with LlamaCppBackend(llama_embeddings.url) as backend:
        assert backend.embed([]) == []
    assert len(llama_embeddings.requests) == before


@pytest.mark.parametrize("texts, where", [(["a", 3, "b"], "texts[1]"), (["a", None], "texts[1]"),
                                          ([b"bytes"], "texts[0]"), (b"bytes", "texts")])
def test_an_item_that_is_not_a_string_is_refused_naming_its_index(
        llama_embeddings: FakeServer, texts: object, where: str) -> None:
    with LlamaCppBackend(llama_embeddings.url) as backend, \
            pytest.raises(ValueError, match=rf"^{where.replace('[', '.').replace(']', '.')}: "):
        backend.embed(texts)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, -1, 1.5, True])
def test_a_batch_size_that_is_not_a_positive_integer_is_refused(
        llama_embeddings: FakeServer, size: object) -> None:
    with LlamaCppBackend(llama_embeddings.url) as backend, \
            pytest.raises(ValueError, match="batch_size"):
        backend.embed(["a"], batch_size=size)  # type: ignore[arg-type]


def test_normalize_gives_unit_vectors_whatever_the_server_sent() -> None:
    with FakeServer(embeddings=True) as fake, LlamaCppBackend(fake.url) as backend:
        # embd_normalize -1 is not sent by the SDK; ask the server raw for unnormalised ones
        # to show the client side does the work.
        raw = backend.client.post_json("/v1/embeddings",
                                       {"input": ["abc"], "embd_normalize": -1})
        assert abs(_norm(raw["data"][0]["embedding"]) - 1.0) > 0.1
    vector = [3.0, 4.0]
    from pedrollm.embeddings import normalized

    assert normalized(vector) == [0.6, 0.8]
    assert normalized([0.0, 0.0]) == [0.0, 0.0]


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_normalize_true_returns_unit_length_on_every_backend(kind: str) -> None:
    options = {"embeddings": True} if kind == "llamacpp" else {"personality": kind}
    with FakeServer(**options) as fake, _backend(fake, kind) as backend:
        for vector in backend.embed(TEXTS, normalize=True):
            assert abs(_norm(vector) - 1.0) < 1e-9


def test_large_inputs_are_split_into_batches_of_batch_size(llama_embeddings: FakeServer) -> None:
    texts = [f"text number {i}" for i in range(7)]
    llama_embeddings.app.clear_requests()
    with LlamaCppBackend(llama_embeddings.url) as backend:
        batched = backend.embed(texts, batch_size=3)
        sent = [r.body["input"] for r in llama_embeddings.requests]
        single = backend.embed(texts)
    assert sent == [texts[0:3], texts[3:6], texts[6:7]]
    assert batched == single


def test_the_default_batch_is_32_texts(llama_embeddings: FakeServer) -> None:
    llama_embeddings.app.clear_requests()
    with LlamaCppBackend(llama_embeddings.url) as backend:
        backend.embed([f"t{i}" for i in range(70)])
    assert [len(r.body["input"]) for r in llama_embeddings.requests] == [32, 32, 6]


def test_a_server_without_embeddings_raises_unsupported_naming_the_flag() -> None:
    with FakeServer() as fake, LlamaCppBackend(fake.url) as backend, \
            pytest.raises(UnsupportedFeature) as info:
        backend.embed(["hello"])
    message = str(info.value)
    assert "--embeddings" in message
    assert "This server does not support embeddings" in message  # the server's own reason


def test_a_text_longer_than_the_batch_names_its_index_and_ubatch_size() -> None:
    texts = ["short", "also short", "x" * 100, "short again"]
    with FakeServer(embeddings=True, ubatch_size=64) as fake, \
            LlamaCppBackend(fake.url) as backend, pytest.raises(InputTooLarge) as info:
        backend.embed(texts, batch_size=10)
    error = info.value
    assert (error.index, error.n_tokens, error.batch_size, error.status) == (2, 100, 64, 500)
    assert "texts[2]" in str(error) and "--ubatch-size" in str(error)


def test_a_text_longer_than_the_batch_is_located_in_a_later_batch() -> None:
    texts = ["a", "b", "c", "y" * 80]
    with FakeServer(embeddings=True, ubatch_size=64) as fake, \
            LlamaCppBackend(fake.url) as backend, pytest.raises(InputTooLarge) as info:
        backend.embed(texts, batch_size=2)
    assert info.value.index == 3


def _recorded_error(name: str) -> Fixture:
    """One of llama-server's recorded embeddings refusals."""
    found = {f.name: f for f in load_dir(bundled_dir("llamacpp_errors") / "embeddings")}
    return found[name]


def test_pooling_none_is_reported_as_unsupported_naming_pooling(httpserver: HTTPServer) -> None:
    recorded = _recorded_error("error-embeddings-pooling-none")
    httpserver.expect_request("/v1/embeddings").respond_with_json(recorded.response_body,
                                                                  status=recorded.status)
    with LlamaCppBackend(httpserver.url_for("/"), max_retries=0) as backend, \
            pytest.raises(UnsupportedFeature, match="--pooling mean"):
        backend.embed(["hello"])


def test_llama_servers_recorded_batch_error_maps_to_input_too_large() -> None:
    recorded = _recorded_error("error-embeddings-too-large")
    error = error_from_response(recorded.status, json.dumps(recorded.response_body))
    assert isinstance(error, InputTooLarge)
    assert (error.n_tokens, error.batch_size, error.status) == (129, 64, 500)


def test_llama_servers_recorded_501_maps_to_unsupported_feature(httpserver: HTTPServer) -> None:
    recorded = _recorded_error("error-embeddings-not-supported")
    httpserver.expect_request("/v1/embeddings").respond_with_json(recorded.response_body,
                                                                  status=recorded.status)
    with VLLMBackend(httpserver.url_for("/"), max_retries=0) as backend, \
            pytest.raises(UnsupportedFeature, match="does not serve embeddings: This server"):
        backend.embed(["hello"])


def test_the_pool_says_it_has_no_embeddings(llama_embeddings: FakeServer) -> None:
    with new_backend({"type": "pool", "servers": [{"server_url": llama_embeddings.url}]}) as pool, \
            pytest.raises(UnsupportedFeature, match="pool"):
        pool.embed(["hello"])


@pytest.mark.parametrize("reply, problem", [
    ({"data": [{"index": 0, "embedding": [0.1, 0.2]}]}, "returned 1 embeddings for 2 inputs"),
    ({"data": [{"index": 0, "embedding": [0.1]}, {"index": 1, "embedding": [0.1, 0.2]}]},
     "different dimensions"),
    ({"data": [{"index": 0, "embedding": [0.1]}, {"index": 0, "embedding": [0.2]}]},
     "index 0"),
    ({"data": [{"index": 0, "embedding": ["x"]}, {"index": 1, "embedding": [0.2]}]},
     "finite numbers"),
    ({"vectors": []}, "without a 'data' list"),
])
def test_a_malformed_reply_raises_invalid_response(httpserver: HTTPServer, reply: object,
                                                   problem: str) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json(reply)
    with VLLMBackend(httpserver.url_for("/"), max_retries=0) as backend, \
            pytest.raises(InvalidResponse, match=problem):
        backend.embed(["a", "b"])


def test_vectors_come_back_in_index_order_whatever_order_the_server_lists_them(
        httpserver: HTTPServer) -> None:
    httpserver.expect_request("/v1/embeddings").respond_with_json({"data": [
        {"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}]})
    with LMStudioBackend(httpserver.url_for("/"), max_retries=0) as backend:
        assert backend.embed(["first", "second"]) == [[1.0], [2.0]]


def test_ollama_sends_its_native_body_with_the_model() -> None:
    with FakeServer(personality="ollama") as fake, \
            OllamaBackend(fake.url, model="scripted-tiny.gguf") as backend:
        backend.embed(["a", "b"])
        sent = [r for r in fake.requests if r.path == "/api/embed"][-1].body
    assert sent == {"model": "scripted-tiny.gguf", "input": ["a", "b"]}


def test_ollama_without_a_configured_model_uses_the_first_it_lists() -> None:
    with FakeServer(personality="ollama") as fake, OllamaBackend(fake.url) as backend:
        assert len(backend.embed(["a"])) == 1
        assert [r for r in fake.requests if r.path == "/api/embed"][-1].body["model"] == \
            "scripted-tiny.gguf"


def test_the_model_argument_overrides_the_configured_one(llama_embeddings: FakeServer) -> None:
    with LlamaCppBackend(llama_embeddings.url, model="configured") as backend:
        backend.embed(["a"], model="asked")
    assert llama_embeddings.requests[-1].body["model"] == "asked"
