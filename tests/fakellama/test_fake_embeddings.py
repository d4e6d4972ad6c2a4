"""The fake's embeddings against what llama-server answered (recorded), and per personality."""

from __future__ import annotations

import base64
import json
import math
import re
import struct
from collections.abc import Iterator

import pytest
import requests

from fakellama.fixtures import Fixture, bundled_dir, load_dir
from fakellama.server import FakeServer

RECORDED_ERRORS = bundled_dir("llamacpp_errors") / "embeddings"


def _errors() -> dict[str, Fixture]:
    return {f.name: f for f in load_dir(RECORDED_ERRORS)}


def _recorded() -> dict[str, Fixture]:
    return {f.name: f for f in load_dir(bundled_dir("llamacpp_embeddings"))}


def _bytes(fixture: Fixture) -> bytes:
    return json.dumps(fixture.response_body, separators=(",", ":"), ensure_ascii=False).encode()


@pytest.fixture(scope="module")
def on() -> Iterator[FakeServer]:
    """A fake llama-server started as with --embeddings --ubatch-size 64 (as recorded)."""
    with FakeServer(embeddings=True, ubatch_size=64) as fake:
        yield fake


def test_the_recordings_are_recorded_not_written_by_hand() -> None:
    for fixture in [*_errors().values(), *_recorded().values()]:
        assert not fixture.by_hand
        assert "llama-server" in fixture.metadata["command"]


@pytest.mark.parametrize("name", ["error-embeddings-not-supported",
                                  "error-embedding-not-supported"])
def test_without_embeddings_the_501_is_llama_servers_byte_for_byte(name: str) -> None:
    recorded = _errors()[name]
    with FakeServer() as fake:
        reply = requests.post(fake.url + recorded.path, json=recorded.body)
    assert reply.status_code == recorded.status == 501
    assert reply.content == _bytes(recorded)
    assert reply.headers["Connection"] == "close"


@pytest.mark.parametrize("name", ["error-embeddings-empty-list", "error-embeddings-empty-text",
                                  "error-embeddings-no-input", "error-embeddings-bad-format",
                                  "error-embeddings-bad-element"])
def test_with_embeddings_the_refusals_are_llama_servers_byte_for_byte(
        on: FakeServer, name: str) -> None:
    recorded = _errors()[name]
    reply = requests.post(on.url + recorded.path, json=recorded.body)
    assert (reply.status_code, reply.headers["X-Fakellama-Match"]) == (recorded.status,
                                                                       "validation")
    assert reply.content == _bytes(recorded)


def test_an_input_longer_than_the_batch_is_the_500_llama_server_sends(on: FakeServer) -> None:
    recorded = _errors()["error-embeddings-too-large"]
    reply = requests.post(on.url + recorded.path, json=recorded.body)
    assert reply.status_code == recorded.status == 500
    error = reply.json()["error"]
    # The count is the fake tokenizer's (one token per byte), the wording the server's.
    def worded(message: str) -> str:
        return re.sub(r"^input \(\d+ tokens\)", "input (N tokens)", message)

    assert worded(error["message"]) == worded(recorded.response_body["error"]["message"])
    assert error["type"] == recorded.response_body["error"]["type"]
    assert error["message"].startswith(f"input ({len(recorded.body['input'][1])} tokens)")


@pytest.mark.parametrize("name", ["embeddings-one", "embeddings-batch", "embeddings-string",
                                  "embeddings-float", "embedding-native"])
def test_a_recorded_request_gets_the_recorded_vectors(on: FakeServer, name: str) -> None:
    recorded = _recorded()[name]
    reply = requests.post(on.url + recorded.path, json=recorded.body)
    assert (reply.headers["X-Fakellama-Match"], reply.headers["X-Fakellama-Fixture"]) == (
        "exact", name)
    got = reply.json()
    if isinstance(got, dict):
        assert got["model"] == "scripted-tiny.gguf"  # the fake's own name, as --alias
        got["model"] = recorded.response_body["model"]
    assert got == recorded.response_body


def test_a_recorded_text_in_a_new_request_keeps_its_recorded_vector(on: FakeServer) -> None:
    one = _recorded()["embeddings-one"].response_body
    reply = requests.post(on.url + "/v1/embeddings", json={"input": ["never recorded", "hello"]})
    assert reply.headers["X-Fakellama-Match"] == "synthesized"
    data = reply.json()["data"]
    assert data[1]["embedding"] == one["data"][0]["embedding"]
    assert data[0]["embedding"] != data[1]["embedding"]


def test_an_unrecorded_text_gets_a_deterministic_unit_vector_of_the_recorded_width(
        on: FakeServer) -> None:
    body = {"input": ["a new text", "another"]}
    first = requests.post(on.url + "/v1/embeddings", json=body)
    again = requests.post(on.url + "/v1/embeddings", json=body).json()
    reply = first.json()
    assert first.headers["X-Fakellama-Match"] == "synthesized"
    assert reply == again
    assert [d["index"] for d in reply["data"]] == [0, 1]
    assert list(reply) == ["model", "object", "usage", "data"]  # llama-server's order
    assert list(reply["data"][0]) == ["embedding", "index", "object"]
    for item in reply["data"]:
        assert len(item["embedding"]) == 576
        assert abs(math.sqrt(sum(v * v for v in item["embedding"])) - 1) < 1e-6
    n_tokens = len(b"a new text") + len(b"another")
    assert reply["usage"] == {"prompt_tokens": n_tokens, "total_tokens": n_tokens}
    meta = requests.get(on.url + "/v1/models").json()["data"][0]["meta"]
    assert meta["n_embd"] == 576


def test_base64_and_embd_normalize_are_answered_as_llama_server_does(on: FakeServer) -> None:
    floats = requests.post(on.url + "/v1/embeddings", json={"input": "xyz"}).json()
    packed = requests.post(on.url + "/v1/embeddings",
                           json={"input": "xyz", "encoding_format": "base64"}).json()
    item = packed["data"][0]
    assert item["encoding_format"] == "base64"
    raw = base64.b64decode(item["embedding"])
    assert list(struct.unpack(f"<{len(raw) // 4}f", raw)) == floats["data"][0]["embedding"]
    taxicab = requests.post(on.url + "/v1/embeddings",
                            json={"input": "xyz", "embd_normalize": 1}).json()
    assert abs(sum(abs(v) for v in taxicab["data"][0]["embedding"]) - 1) < 1e-5


def test_llama_servers_own_route_answers_in_its_own_shape(on: FakeServer) -> None:
    reply = requests.post(on.url + "/embeddings", json={"content": ["one", "two"]}).json()
    assert [r["index"] for r in reply] == [0, 1]
    assert all(len(r["embedding"]) == 1 and len(r["embedding"][0]) == 576 for r in reply)


def test_ollama_api_embed_and_v1() -> None:
    with FakeServer(personality="ollama") as fake:
        native = requests.post(fake.url + "/api/embed",
                               json={"model": "scripted-tiny.gguf", "input": ["a", "b"]})
        assert native.headers["X-Fakellama-Match"] == "synthesized"
        body = native.json()
        assert len(body["embeddings"]) == 2 and body["prompt_eval_count"] == 2
        assert requests.post(fake.url + "/api/embed", json={
            "model": "scripted-tiny.gguf", "input": []}).json()["embeddings"] == []
        missing = requests.post(fake.url + "/api/embed", json={"input": "a"})
        assert (missing.status_code, missing.json()) == (400, {"error": "model is required"})
        unknown = requests.post(fake.url + "/api/embed", json={"model": "nope", "input": "a"})
        assert (unknown.status_code, unknown.json()) == (404, {"error": "model 'nope' not found"})
        oai = requests.post(fake.url + "/v1/embeddings",
                            json={"model": "scripted-tiny.gguf", "input": "a"}).json()
        assert oai["data"][0]["embedding"] == body["embeddings"][0]
        assert oai["usage"] == {"prompt_tokens": 1, "total_tokens": 1}


@pytest.mark.parametrize("personality", ["vllm", "lmstudio"])
def test_vllm_and_lm_studio_serve_v1_embeddings(personality: str) -> None:
    with FakeServer(personality=personality) as fake:
        reply = requests.post(fake.url + "/v1/embeddings", json={"input": ["a", "bc"]})
        bad = requests.post(fake.url + "/v1/embeddings", json={"input": 5})
    body = reply.json()
    assert [d["index"] for d in body["data"]] == [0, 1]
    assert body["usage"]["prompt_tokens"] == 3
    assert bad.status_code == 400
    if personality == "vllm":
        assert body["id"].startswith("embd-") and body["usage"]["completion_tokens"] == 0


def test_the_command_line_takes_embeddings_and_ubatch_size() -> None:
    from fakellama.__main__ import build_parser

    args = build_parser().parse_args(["serve", "--embeddings", "--ubatch-size", "64"])
    assert (args.embeddings, args.ubatch_size) == (True, 64)


def test_a_ubatch_size_that_is_not_positive_is_refused() -> None:
    with pytest.raises(ValueError, match="ubatch_size"):
        FakeServer(embeddings=True, ubatch_size=0)


def test_strict_mode_answers_only_recorded_embeddings() -> None:
    with FakeServer(embeddings=True, strict=True) as fake:
        recorded = requests.post(fake.url + "/v1/embeddings", json={"input": ["hello"]})
        new = requests.post(fake.url + "/v1/embeddings", json={"input": ["never recorded"]})
    assert recorded.headers["X-Fakellama-Match"] == "exact"
    assert (new.status_code, new.headers["X-Fakellama-Match"]) == (400, "none")
    assert "embeddings-one" in new.json()["error"]["message"]


def test_a_recorded_refusal_does_not_answer_a_server_started_with_embeddings() -> None:
    # The contract suite's recordings hold the 501 of a server without --embeddings.
    refusal = _errors()["error-embeddings-not-supported"]
    with FakeServer(embeddings=True) as fake:
        fake.add_fixture(refusal)
        reply = requests.post(fake.url + refusal.path, json=refusal.body)
    assert reply.status_code == 200
    assert reply.headers["X-Fakellama-Match"] == "exact"  # embeddings-one, the recorded vector
