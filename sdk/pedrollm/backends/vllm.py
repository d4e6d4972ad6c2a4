"""vLLM's OpenAI-compatible server.

Readiness is ``GET /health`` (200, empty body); the context window is
``max_model_len`` in ``/v1/models``; ``/version`` gives the version. A request with
tools to a server started without ``--enable-auto-tool-choice --tool-call-parser``
comes back as :class:`~pedrollm.errors.ToolsNotEnabled`, whose message says so.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from ..errors import InvalidResponse, PedroLLMError, ToolsNotEnabled
from ..request_body import standard_options
from ..tokens import TokenCount
from ..types import InferenceRequest, InferenceResponse, StreamDelta
from .openai import OpenAIBackend

# Chat fields vLLM's /tokenize takes as its chat completions do (an older vLLM without
# ``tools`` there ignores the field, so tools then go uncounted).
_TEMPLATE_FIELDS = ("tools", "chat_template", "chat_template_kwargs", "add_generation_prompt",
                    "continue_final_message")

TOOLS_HINT = (
    "start vLLM with --enable-auto-tool-choice --tool-call-parser <parser> "
    "(for example hermes) to use tools"
)


class VLLMBackend(OpenAIBackend):
    """A vLLM server."""

    name = "vllm"
    default_url = "http://localhost:8000"
    health_path = "/health"
    unsupported = {"n_probs": "use logprobs through `extra` with vLLM"}
    takes_gbnf = True  # xgrammar reads GBNF
    _structured: bool | None = None
    _version: str | None = None
    _version_read = False

    def request_options(self, req: InferenceRequest) -> dict[str, Any]:
        """Standard fields plus vLLM's names for the extra samplers and grammars."""
        body = standard_options(req)
        if req.top_k is not None:
            body["top_k"] = req.top_k
        if req.min_p is not None:
            body["min_p"] = req.min_p
        if req.repeat_penalty is not None:
            body["repetition_penalty"] = req.repeat_penalty
        if req.grammar is not None:
            if self.takes_structured_outputs():
                body["structured_outputs"] = {"grammar": req.grammar}
            else:
                body["guided_grammar"] = req.grammar
        return body

    def takes_structured_outputs(self) -> bool:
        """Whether this vLLM takes ``structured_outputs`` (0.11 on) or ``guided_*`` fields.

        An older vLLM ignores a field it does not know, with only a log line on the
        server, so sending the wrong one would drop the grammar without a word. A
        server whose version cannot be read is taken to be current.
        """
        if self._structured is None:
            self._structured = _version_at_least(self.server_version(), (0, 11))
        return self._structured

    def infer(self, req: InferenceRequest) -> InferenceResponse:
        """Send a request; explain a refusal of tools."""
        try:
            return super().infer(req)
        except ToolsNotEnabled as exc:
            raise _with_hint(exc) from exc

    def stream(self, req: InferenceRequest) -> Iterator[StreamDelta]:
        """Send a request streamed; explain a refusal of tools."""
        return _hinted(super().stream(req))

    def count_body_tokens(self, body: dict[str, Any],
                          deadline: float | None = None) -> TokenCount | None:
        """vLLM's /tokenize, given the chat messages (and tools): the model's template applied.

        vLLM tokenizes a chat with ``add_generation_prompt`` and without extra special
        tokens by default, as its chat completions do.
        """
        request: dict[str, Any] = {"model": self._model_for(body),
                                   "messages": body.get("messages", [])}
        for key in _TEMPLATE_FIELDS:
            if key in body:
                request[key] = body[key]
        return TokenCount(n=self._token_count(request, deadline), exact=True,
                          method="vLLM /tokenize (chat messages)")

    def count_text_tokens(self, text: str) -> TokenCount:
        """vLLM's /tokenize of a prompt, without special tokens."""
        request = {"model": self._model_for({}), "prompt": text, "add_special_tokens": False}
        return TokenCount(n=self._token_count(request), exact=True, method="vLLM /tokenize")

    def _model_for(self, body: Mapping[str, Any]) -> str | None:
        """The model to name: the body's, the configured one, else the first listed.

        vLLM before 0.7 requires ``model`` in /tokenize.
        """
        model = body.get("model") or self.model
        if model is None:
            models = self.list_models()
            model = models[0].id if models else None
        return model if isinstance(model, str) else None

    def _token_count(self, request: dict[str, Any], deadline: float | None = None) -> int:
        """POST /tokenize and return its ``count``."""
        data = self.client.post_json("/tokenize", request, deadline=deadline)
        count = data.get("count") if isinstance(data, Mapping) else None
        if not isinstance(count, int) or isinstance(count, bool):
            tokens = data.get("tokens") if isinstance(data, Mapping) else None
            if not isinstance(tokens, list):
                raise InvalidResponse(f"vLLM's /tokenize answered without a count: "
                                      f"{str(data)[:200]}")
            count = len(tokens)
        return count

    def parallel_slots(self) -> int:
        """16: vLLM batches continuously (``max_num_seqs`` is in the hundreds by default);
        16 requests in flight keep it busy without a thread per request."""
        return 16

    def server_version(self) -> str | None:
        """Return vLLM's version from /version (read once)."""
        if not self._version_read:
            try:
                data = self.client.get_json("/version", retry=False)
            except PedroLLMError:
                return None
            version = data.get("version") if isinstance(data, Mapping) else None
            self._version = version if isinstance(version, str) else None
            self._version_read = True
        return self._version


def _version_at_least(version: str | None, wanted: tuple[int, int]) -> bool:
    """Whether a version string such as ``0.10.1.dev3+g1234`` is at least ``wanted``.

    True when the version cannot be read (assume a current server).
    """
    found = re.match(r"(\d+)\.(\d+)", version or "")
    if found is None:
        return True
    return (int(found.group(1)), int(found.group(2))) >= wanted


def _hinted(deltas: Iterator[StreamDelta]) -> Iterator[StreamDelta]:
    """Pass a stream through, explaining a refusal of tools."""
    try:
        yield from deltas
    except ToolsNotEnabled as exc:
        raise _with_hint(exc) from exc


def _with_hint(exc: ToolsNotEnabled) -> ToolsNotEnabled:
    """Return the same error with the flags to start vLLM with."""
    return ToolsNotEnabled(f"{exc.message}; {TOOLS_HINT}", status=exc.status,
                           error_type=exc.error_type, body=exc.body, url=exc.url)
