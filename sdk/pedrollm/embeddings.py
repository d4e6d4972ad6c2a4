"""Embeddings: checking the inputs, batching them, and reading the vectors servers send.

The backends send the requests (llama-server, vLLM and LM Studio take OpenAI's
``/v1/embeddings``; Ollama its ``/api/embed``); what is the same for all of them lives
here once.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from .errors import InvalidResponse

#: Inputs sent per request unless ``embed(batch_size=...)`` says otherwise. Each input is
#: one task to llama-server (its slots work on several at once) and one row of a batch to
#: vLLM and Ollama; 32 keeps a request's body and reply to a few MB with
#: 4096-dimensional vectors while saving most of the per-request cost.
DEFAULT_EMBED_BATCH = 32

#: An embedding: one float per dimension.
Vector = list[float]


def check_inputs(texts: str | Sequence[str]) -> list[str]:
    """The texts as a list; a ValueError naming the index of an item that is not a string.

    One string is taken as a list of one (a string is a sequence of characters, and
    embedding each character would never be what was meant).
    """
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, (bytes, bytearray)) or not isinstance(texts, Sequence):
        raise ValueError(f"texts: must be a string or a list of strings, "
                         f"got {type(texts).__name__}")
    items = list(texts)
    for index, item in enumerate(items):
        if not isinstance(item, str):
            raise ValueError(f"texts[{index}]: must be a string, got {type(item).__name__}")
    return items


def check_batch_size(batch_size: int | None) -> int:
    """The batch size to use; a ValueError for one that is not a positive integer."""
    if batch_size is None:
        return DEFAULT_EMBED_BATCH
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size: must be a positive integer, got {batch_size!r}")
    return batch_size


def batches(items: list[str], size: int) -> Iterator[tuple[int, list[str]]]:
    """Yield (index of the first item, items) for consecutive slices of at most size."""
    for start in range(0, len(items), size):
        yield start, items[start:start + size]


def normalized(vector: Vector) -> Vector:
    """The vector scaled to unit length (L2); a zero vector stays zero."""
    norm = math.sqrt(math.fsum(v * v for v in vector))
    return [v / norm for v in vector] if norm > 0 else list(vector)


def read_vector(value: Any, where: str) -> Vector:
    """One embedding from a reply: a non-empty list of finite numbers, as floats."""
    if not isinstance(value, list) or not value:
        raise InvalidResponse(f"{where}: expected a non-empty list of numbers, "
                              f"got {_shown(value)}")
    out: Vector = []
    for number in value:
        if isinstance(number, bool) or not isinstance(number, (int, float)) \
                or not math.isfinite(number):
            raise InvalidResponse(f"{where}: expected finite numbers, got {_shown(number)}")
        out.append(float(number))
    return out


def read_openai_vectors(data: Any, expected: int, url: str) -> list[Vector]:
    """The vectors of an OpenAI ``/v1/embeddings`` reply, in input order (by ``index``)."""
    items = data.get("data") if isinstance(data, Mapping) else None
    if not isinstance(items, list):
        raise InvalidResponse(f"{url} answered without a 'data' list: {_shown(data)}")
    found: dict[int, Vector] = {}
    for position, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidResponse(f"{url}: data[{position}] is not an object")
        index = item.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < expected \
                or index in found:
            raise InvalidResponse(f"{url}: data[{position}] has index {index!r}; "
                                  f"expected each of 0..{expected - 1} once")
        embedding = item.get("embedding")
        if isinstance(embedding, str):
            raise InvalidResponse(f"{url}: data[{position}].embedding is a string "
                                  "(base64); the SDK asks for encoding_format 'float'")
        found[index] = read_vector(embedding, f"{url}: data[{position}].embedding")
    return check_count([found[i] for i in sorted(found)], expected, url)


def check_count(vectors: list[Vector], expected: int, url: str) -> list[Vector]:
    """The vectors, if there is one per input and all have one dimension."""
    if len(vectors) != expected:
        raise InvalidResponse(f"{url} returned {len(vectors)} embeddings for "
                              f"{expected} inputs")
    widths = {len(v) for v in vectors}
    if len(widths) > 1:
        raise InvalidResponse(f"{url} returned embeddings of different dimensions: "
                              f"{sorted(widths)}")
    return vectors


def _shown(value: Any) -> str:
    """A short repr for a message."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


__all__ = ["DEFAULT_EMBED_BATCH", "Vector", "batches", "check_batch_size", "check_count",
           "check_inputs", "normalized", "read_openai_vectors", "read_vector"]
