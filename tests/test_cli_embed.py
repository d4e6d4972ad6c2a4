"""``pedrollm embed``, run as a subprocess against the fake llama-server."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import pytest

from fakellama.server import FakeServer

from .test_cli import run


@pytest.fixture(scope="module")
def embedding_server() -> Iterator[FakeServer]:
    """A fake llama-server started as with --embeddings."""
    with FakeServer(embeddings=True) as fake:
        yield fake


def test_one_vector_a_line_in_the_order_given(embedding_server: FakeServer,
                                              tmp_path: Path) -> None:
    out = run("--server-url", embedding_server.url, "embed", "first text", "hello",
              "third", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 3
    vectors = [[float(x) for x in line.split()] for line in lines]
    assert {len(v) for v in vectors} == {576}
    alone = run("--server-url", embedding_server.url, "embed", "hello", cwd=tmp_path)
    second = [float(x) for x in alone.stdout.split()]
    assert max(abs(a - b) for a, b in zip(second, vectors[1], strict=True)) < 1e-6


def test_json_and_normalize(embedding_server: FakeServer, tmp_path: Path) -> None:
    out = run("--server-url", embedding_server.url, "embed", "a", "b", "--json", "--normalize",
              cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["dimensions"] == 576 and len(data["embeddings"]) == 2
    for vector in data["embeddings"]:
        assert abs(math.sqrt(sum(x * x for x in vector)) - 1) < 1e-9


def test_texts_from_stdin_one_per_line(embedding_server: FakeServer, tmp_path: Path) -> None:
    out = run("--server-url", embedding_server.url, "embed", cwd=tmp_path,
              stdin="one\n\ntwo\n")
    assert out.returncode == 0 and len(out.stdout.splitlines()) == 2


def test_a_server_without_embeddings_says_which_flag(fake_llama_server: FakeServer,
                                                     tmp_path: Path) -> None:
    out = run("--server-url", fake_llama_server.url, "embed", "hello", cwd=tmp_path)
    assert out.returncode == 1 and out.stdout == ""
    assert "--embeddings" in out.stderr and "Traceback" not in out.stderr


def test_a_text_longer_than_the_batch_names_it(tmp_path: Path) -> None:
    with FakeServer(embeddings=True, ubatch_size=16) as fake:
        out = run("--server-url", fake.url, "embed", "ok", "x" * 40, cwd=tmp_path)
    assert out.returncode == 1
    assert "texts[1]" in out.stderr and "--ubatch-size" in out.stderr


def test_usage_errors(embedding_server: FakeServer, tmp_path: Path) -> None:
    none = run("--server-url", embedding_server.url, "embed", cwd=tmp_path, stdin="")
    assert none.returncode == 2 and "at least one TEXT" in none.stderr
    bad = run("--server-url", embedding_server.url, "embed", "a", "--batch-size", "0",
              cwd=tmp_path)
    assert bad.returncode == 2 and "--batch-size" in bad.stderr
