"""Embeddings as each server answers them: validation, and synthesized (labelled) vectors.

llama-server serves ``/v1/embeddings`` (OpenAI's shape) and ``/embedding`` /
``/embeddings`` (its own: ``[{"index", "embedding": [[...]]}]``) only when started with
``--embeddings``; otherwise 501 ``not_supported_error`` (the personality's built-in
answer). Started so (``FakeLlamaApp(embeddings=True)``), the fake answers a request a
fixture recorded with the recording; any other valid request gets vectors computed
here: deterministic per text (seeded from its SHA-256), ``n_embd`` wide, normalised as
llama-server's ``embd_normalize`` asks (Euclidean by default), with usage counted by
the fake's tokenizer, and the reply says ``X-Fakellama-Match: synthesized``. The checks
and their messages are llama-server's (``handle_embeddings_impl`` in
tools/server/server-context.cpp), including the 500 for an input longer than the
physical batch (``--ubatch-size``, 512 by default).

Ollama (``/api/embed``, ``/v1/embeddings``), vLLM and LM Studio (``/v1/embeddings``)
have no switch: their replies are synthesized in their shapes.
"""

from __future__ import annotations

import base64
import hashlib
import math
import random
import struct
import time
from dataclasses import dataclass
from typing import Any

from fakellama.prompt import tokenize
from fakellama.validation import Refusal
from fakellama.wire import random_id

#: llama-server's default physical batch (``--ubatch-size``); embeddings need one input
#: to fit it whole.
DEFAULT_UBATCH = 512
#: llama-server's default ``--embd-normalize``: Euclidean (L2).
DEFAULT_NORMALIZE = 2

OAI = "embeddings"            # /v1/embeddings
LLAMA_NATIVE = "embedding"     # llama-server's /embedding and /embeddings
OLLAMA_NATIVE = "ollama_embed"  # Ollama's /api/embed
ENDPOINTS = frozenset({OAI, LLAMA_NATIVE, OLLAMA_NATIVE})

_PROMPT_ELEMENTS = ('"prompt" elements must be a string, a list of tokens, a JSON object '
                    'containing a prompt string, or a list of mixed strings & tokens.')


class CannotSynthesize(ValueError):
    """A request the fake cannot answer honestly (a shape it does not model)."""


@dataclass(frozen=True)
class Inputs:
    """The inputs of a request, as the server reads them: each one's text key and tokens."""

    keys: list[str]
    n_tokens: list[int]
    oai: bool
    base64: bool
    normalize: int


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _tokens_of(part: Any) -> tuple[str, int]:
    """(key, tokens) of one llama-server prompt: a string, or a list mixing text and ids."""
    if isinstance(part, str):
        return part, len(tokenize(part))
    if isinstance(part, list) and all(isinstance(p, str) or _is_int(p) for p in part):
        count = sum(len(tokenize(p)) if isinstance(p, str) else 1 for p in part)
        return repr(part), count
    if isinstance(part, dict) and ("prompt" in part or "content" in part):
        raise CannotSynthesize("an input given as an object (multimodal prompt)")
    raise _Refused(Refusal(400, _PROMPT_ELEMENTS, "invalid_request_error"))


class _Refused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.message)
        self.refusal = refusal


def read_llama(endpoint: str, body: Any, ubatch: int) -> Inputs | Refusal:
    """llama-server's reading of an embeddings body: its inputs, or its refusal.

    Raises CannotSynthesize for what the fake does not model.
    """
    if not isinstance(body, dict):
        raise CannotSynthesize("a body that is not a JSON object")
    oai = endpoint == OAI
    if "input" in body:
        prompt = body["input"]
    elif "content" in body:
        oai = False  # "content" is not OpenAI's field: the reply is llama-server's own shape
        prompt = body["content"]
    else:
        return Refusal(400, '"input" or "content" must be provided', "invalid_request_error")
    use_base64 = False
    if "encoding_format" in body:
        encoding = body["encoding_format"]
        if not isinstance(encoding, str):
            raise CannotSynthesize("an encoding_format that is not a string")
        if encoding == "base64":
            use_base64 = True
        elif encoding != "float":
            return Refusal(400, "The format to return the embeddings in. Can be either float "
                                "or base64", "invalid_request_error")
    normalize = body.get("embd_normalize", DEFAULT_NORMALIZE)
    if not _is_int(normalize):
        raise CannotSynthesize("an embd_normalize that is not an integer")
    try:
        if isinstance(prompt, list) and not any(_is_int(p) for p in prompt):
            parts = [_tokens_of(p) for p in prompt]
        elif isinstance(prompt, (str, list)):
            parts = [_tokens_of(prompt)]
        else:
            raise CannotSynthesize(f"an input of type {type(prompt).__name__}")
    except _Refused as refused:
        return refused.refusal
    if not parts:
        return Refusal(400, '"input" must not be empty', "invalid_request_error")
    if any(n == 0 for _, n in parts):
        # The fake's model adds no BOS token (as SmolLM2), so an empty text has no tokens.
        return Refusal(400, "Input content cannot be empty", "invalid_request_error")
    for _, n in parts:
        if n > ubatch:
            return Refusal(500, f"input ({n} tokens) is too large to process. increase the "
                                f"physical batch size (current batch size: {ubatch})",
                           "server_error")
    return Inputs([k for k, _ in parts], [n for _, n in parts], oai, use_base64, normalize)


def read_plain(body: Any, *, empty_ok: bool) -> list[str] | str:
    """The texts of an Ollama, vLLM or LM Studio body (a string or list of strings).

    Returns a problem (str) for a body of the wrong shape.
    """
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    value = body.get("input")
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if not value and not empty_ok:
            return "input must not be empty"
        return list(value)
    return "input must be a string or a list of strings"


def vector(text: str, n_embd: int, normalize: int = DEFAULT_NORMALIZE) -> list[float]:
    """The fake's vector for a text: seeded by its SHA-256, normalised as llama-server does."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    rng = random.Random(seed)
    raw = [rng.gauss(0.0, 1.0) for _ in range(n_embd)]
    # llama-server computes in float32 and writes each float32 widened to a double.
    return list(struct.unpack(f"<{n_embd}f", struct.pack(f"<{n_embd}f",
                                                          *_normalized(raw, normalize))))


def _normalized(values: list[float], kind: int) -> list[float]:
    """common_embd_normalize: -1 none, 0 max-abs to int16 range, 1 taxicab, 2 L2, p>2 p-norm."""
    if kind < 0:
        return values
    if kind == 0:
        total = max(abs(v) for v in values) / 32760.0
    elif kind == 2:
        total = math.sqrt(math.fsum(v * v for v in values))
    else:
        total = math.fsum(abs(v) ** kind for v in values) ** (1.0 / kind)
    scale = 1.0 / total if total > 0 else 0.0
    return [v * scale for v in values]


def llama_reply(inputs: Inputs, n_embd: int, model: str,
                recorded: dict[str, Recorded] | None = None) -> Any:
    """llama-server's reply for read inputs: OpenAI's list, or its own ``[{index, embedding}]``.

    A text ``recorded`` holds gets its recorded vector and token count (when the request
    asks for the default normalisation), any other a synthesized one.
    """
    known = recorded if recorded and inputs.normalize == DEFAULT_NORMALIZE else {}
    vectors = [known[k].vector if k in known else vector(k, n_embd, inputs.normalize)
               for k in inputs.keys]
    counts = [known[k].n_tokens if k in known and known[k].n_tokens is not None else n
              for k, n in zip(inputs.keys, inputs.n_tokens, strict=True)]
    if not inputs.oai:
        return [{"index": i, "embedding": [v]} for i, v in enumerate(vectors)]
    data = []
    for i, v in enumerate(vectors):
        if inputs.base64:
            packed = base64.b64encode(struct.pack(f"<{len(v)}f", *v)).decode("ascii")
            data.append({"embedding": packed, "index": i, "object": "embedding",
                         "encoding_format": "base64"})
        else:
            data.append({"embedding": v, "index": i, "object": "embedding"})
    n_tokens = sum(c or 0 for c in counts)
    return {"model": model, "object": "list",
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}, "data": data}


def openai_reply(personality: str, texts: list[str], n_embd: int, model: str) -> Any:
    """An OpenAI-shaped reply as Ollama's, vLLM's or LM Studio's /v1/embeddings writes it."""
    n_tokens = sum(len(tokenize(t)) for t in texts)
    data = [{"object": "embedding", "embedding": vector(t, n_embd), "index": i}
            for i, t in enumerate(texts)]
    if personality == "vllm":
        return {"id": f"embd-{random_id().lower()}", "object": "list",
                "created": int(time.time()), "model": model,
                "data": [{"index": d["index"], "object": "embedding",
                          "embedding": d["embedding"]} for d in data],
                "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens,
                          "completion_tokens": 0, "prompt_tokens_details": None}}
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": n_tokens, "total_tokens": n_tokens}}


def ollama_embed_reply(texts: list[str], n_embd: int, model: str) -> Any:
    """Ollama's /api/embed reply: unit vectors, durations in nanoseconds, prompt_eval_count."""
    return {"model": model, "embeddings": [vector(t, n_embd) for t in texts],
            "total_duration": 1_000_000 * (1 + len(texts)), "load_duration": 500_000,
            "prompt_eval_count": sum(len(tokenize(t)) for t in texts)}


@dataclass(frozen=True)
class Recorded:
    """What a recording says about one text: its vector (llama-server's default
    normalisation) and, when it was embedded alone, its token count."""

    vector: list[float]
    n_tokens: int | None


def recorded_vectors(fixtures: Any) -> dict[str, Recorded]:
    """Every text a successful embeddings fixture recorded, with its vector.

    A real server gives a text the same vector alone or in a batch, so a request that
    mixes recorded texts with new ones gets the recorded vectors for the former.
    Recordings that asked for another normalisation, or base64, are left out.
    """
    found: dict[str, Recorded] = {}
    for fixture in fixtures:
        body, reply = fixture.body, fixture.response_body
        if fixture.status != 200 or not isinstance(body, dict) or \
                body.get("embd_normalize", DEFAULT_NORMALIZE) != DEFAULT_NORMALIZE or \
                body.get("encoding_format", "float") != "float":
            continue
        prompt = body.get("input", body.get("content"))
        texts = [prompt] if isinstance(prompt, str) else prompt
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            continue
        vectors: list[Any] = []
        if isinstance(reply, dict) and isinstance(reply.get("data"), list):
            vectors = [d.get("embedding") for d in sorted(
                reply["data"], key=lambda d: d.get("index", 0) if isinstance(d, dict) else 0)
                if isinstance(d, dict)]
            usage = reply.get("usage") if isinstance(reply.get("usage"), dict) else {}
            total = usage.get("prompt_tokens") if isinstance(usage, dict) else None
        elif isinstance(reply, list):
            vectors = [r.get("embedding", [None])[0] if isinstance(r, dict) else None
                       for r in reply]
            total = None
        if len(vectors) != len(texts):
            continue
        for text, value in zip(texts, vectors, strict=True):
            if isinstance(value, list) and value:
                known = found.get(text)
                tokens = total if len(texts) == 1 and _is_int(total) else None
                found[text] = Recorded(value, tokens if tokens is not None else
                                       (known.n_tokens if known else None))
    return found


def recorded_width(fixtures: Any) -> int | None:
    """The width of the first successful embedding a fixture recorded, if any."""
    for fixture in fixtures:
        body = fixture.response_body
        if fixture.status != 200:
            continue
        if isinstance(body, dict) and isinstance(body.get("data"), list) and body["data"]:
            first = body["data"][0].get("embedding") if isinstance(body["data"][0], dict) \
                else None
            if isinstance(first, list) and first:
                return len(first)
        if isinstance(body, list) and body and isinstance(body[0], dict):
            rows = body[0].get("embedding")
            if isinstance(rows, list) and rows and isinstance(rows[0], list) and rows[0]:
                return len(rows[0])
    return None


__all__ = ["DEFAULT_UBATCH", "ENDPOINTS", "CannotSynthesize", "Inputs", "Recorded",
           "llama_reply", "recorded_vectors",
           "ollama_embed_reply", "openai_reply", "read_llama", "read_plain", "recorded_width",
           "vector"]
