"""``Backend.embed`` against a real llama-server serving SmolLM2-135M-Instruct.

Marked ``real_server`` (``tox -e contract-real`` runs it). Checks what only the real
server can show: its own vectors, its refusal without ``--embeddings``, and its 500
for a text longer than the physical batch, located by the SDK through ``/tokenize``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest

from contracts.servers.llama_server import LlamaServer
from contracts.servers.models import ensure_model
from pedrollm import InputTooLarge, UnsupportedFeature, new_backend

pytestmark = pytest.mark.real_server
pytest_plugins = ["contracts.servers.pytest_fixtures"]

UBATCH = 64


@pytest.fixture(scope="module")
def embedding_server(start_llama_server: Callable[..., LlamaServer]) -> LlamaServer:
    return start_llama_server(model=ensure_model("smollm2"), ctx_size=4096, extra_args=(
        "--embeddings", "--pooling", "mean", "--ubatch-size", str(UBATCH),
        "--batch-size", str(UBATCH)))


def test_vectors_in_order_and_similar_texts_closer(embedding_server: LlamaServer) -> None:
    texts = ["The cat sat on the mat.", "A cat was sitting on a mat.",
             "Quarterly revenue rose by four percent."]
    with new_backend({"type": "llamacpp", "server_url": embedding_server.url}) as llm:
        vectors = llm.embed(texts, normalize=True, batch_size=2)
        alone = llm.embed(texts[2])[0]
    assert {len(v) for v in vectors} == {576}
    assert max(abs(a - b) for a, b in zip(alone, vectors[2], strict=True)) < 1e-5

    def cosine(a: list[float], b: list[float]) -> float:
        return math.fsum(x * y for x, y in zip(a, b, strict=True))

    assert cosine(vectors[0], vectors[1]) > cosine(vectors[0], vectors[2])


def test_a_text_past_the_batch_names_its_index(embedding_server: LlamaServer) -> None:
    texts = ["short", "also short", "word " * (2 * UBATCH), "short again"]
    with new_backend({"type": "llamacpp", "server_url": embedding_server.url}) as llm, \
            pytest.raises(InputTooLarge) as info:
        llm.embed(texts)
    assert info.value.index == 2 and info.value.batch_size == UBATCH
    assert "texts[2]" in str(info.value) and "--ubatch-size" in str(info.value)


def test_without_embeddings_the_refusal_names_the_flag(
        start_llama_server: Callable[..., LlamaServer]) -> None:
    server = start_llama_server(model=ensure_model("smollm2"), ctx_size=4096)
    with new_backend({"type": "llamacpp", "server_url": server.url}) as llm, \
            pytest.raises(UnsupportedFeature, match="--embeddings"):
        llm.embed(["hello"])
