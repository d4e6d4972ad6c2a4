"""llama.cpp's llama-server.

Readiness is ``GET /health`` (503 while the model loads); the context window and
chat template come from ``GET /props``; llama.cpp's own sampling fields (grammar,
json_schema, top_k, min_p, repeat_penalty, n_probs, cache_prompt) are sent as is.
Native tool calls need the server started with ``--jinja``. /props cannot tell
(its ``chat_template_caps`` describe the template either way), so tools are sent
natively and, if the server answers "tools param requires --jinja", the backend
switches to tools described in the prompt, warns once, and sends the request again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import HTTPError, InvalidResponse, PedroLLMError, UnsupportedFeature
from ..request_body import llama_options, standard_options
from ..tokens import TokenCount
from ..types import InferenceRequest, ServerInfo
from .openai import OpenAIBackend, find_context


class LlamaCppBackend(OpenAIBackend):
    """llama-server, through its OpenAI-compatible API and /props."""

    name = "llamacpp"
    default_url = "http://localhost:8081"
    health_path = "/health"
    default_tool_format = "hermes"
    # /props cannot tell whether --jinja is on; a refusal of tools says it is off.
    text_tools_fallback = True
    takes_gbnf = True

    _props: Mapping[str, Any] | None = None

    def request_options(self, req: InferenceRequest) -> dict[str, Any]:
        """Standard fields plus llama.cpp's own; json_schema goes natively."""
        body = standard_options(req)
        body.pop("response_format", None)
        body.update(llama_options(req))
        if req.json_schema is not None:
            body["json_schema"] = req.json_schema
        return body

    def count_body_tokens(self, body: dict[str, Any],
                          deadline: float | None = None) -> TokenCount | None:
        """Render the body with the server's chat template (/apply-template), then tokenize.

        /tokenize is asked to add special tokens and parse them in the text, as
        llama-server does with a chat prompt, so the count equals the reply's
        ``usage.prompt_tokens``.
        """
        rendered = self.client.post_json("/apply-template", body, deadline=deadline)
        prompt = rendered.get("prompt") if isinstance(rendered, Mapping) else None
        if not isinstance(prompt, str):
            raise InvalidResponse(f"llama-server's /apply-template answered without a prompt "
                                  f"string: {str(rendered)[:200]}")
        n = self._tokenize({"content": prompt, "add_special": True, "parse_special": True},
                           deadline)
        return TokenCount(n=n, exact=True, method="llama-server /apply-template + /tokenize")

    def count_text_tokens(self, text: str) -> TokenCount:
        """Tokenize text with the model's tokenizer (no BOS added), as a message's text is."""
        return TokenCount(n=self._tokenize({"content": text}), exact=True,
                          method="llama-server /tokenize")

    def _tokenize(self, body: dict[str, Any], deadline: float | None = None) -> int:
        """POST /tokenize and return how many tokens came back."""
        data = self.client.post_json("/tokenize", body, deadline=deadline)
        tokens = data.get("tokens") if isinstance(data, Mapping) else None
        if not isinstance(tokens, list):
            raise InvalidResponse(f"llama-server's /tokenize answered without a token list: "
                                  f"{str(data)[:200]}")
        return len(tokens)
    too_large_hint = ("start llama-server with a larger --ubatch-size (and --batch-size), "
                      "at least the text's tokens, or shorten the text")

    def embeddings_refused(self, exc: HTTPError) -> PedroLLMError:
        """Name the flag llama-server needs: ``--embeddings``, or a pooling type for OpenAI.

        Without ``--embeddings`` it answers 501 not_supported_error; with it, a model
        whose GGUF sets no pooling type (a chat model) pools nothing, which the OpenAI
        route refuses with a 400.
        """
        where = f"llama-server at {self.client.shown_base_url}"
        if exc.status == 501:
            # The server's own words name --embeddings; say it where they do not.
            flag = "" if "--embeddings" in exc.message else "start it with --embeddings; "
            return UnsupportedFeature(
                f"{where} does not serve embeddings: {exc.message} ({flag}a chat model "
                "also needs --pooling mean)")
        if "Pooling type 'none'" in exc.message:
            return UnsupportedFeature(
                f"{where} pools no embeddings for its model: {exc.message} (start it with "
                "--pooling mean, or cls/last as the model needs)")
        return exc

    def locate_too_large(self, texts: list[str], n_tokens: int | None) -> int | None:
        """Tokenize each text with ``/tokenize`` (as embedding does: special tokens added)."""
        if n_tokens is None:
            return None
        for offset, text in enumerate(texts):
            try:
                data = self.client.post_json("/tokenize",
                                             {"content": text, "add_special": True})
            except PedroLLMError:
                return None
            tokens = data.get("tokens") if isinstance(data, Mapping) else None
            if isinstance(tokens, list) and len(tokens) == n_tokens:
                return offset
        return None

    def props(self) -> Mapping[str, Any]:
        """Return /props (fetched once; an empty mapping when the server lacks it)."""
        if self._props is None:
            try:
                data = self.client.get_json("/props")
            except PedroLLMError:
                data = None
            self._props = data if isinstance(data, Mapping) else {}
        return self._props

    def discover_context_window(self) -> int | None:
        """Read n_ctx from /props, else from /v1/models ``meta``."""
        settings = self.props().get("default_generation_settings")
        n_ctx = settings.get("n_ctx") if isinstance(settings, Mapping) else None
        if isinstance(n_ctx, int) and not isinstance(n_ctx, bool) and n_ctx > 0:
            return n_ctx
        top = self.props().get("n_ctx")
        if isinstance(top, int) and not isinstance(top, bool) and top > 0:
            return top
        data = self.client.get_json("/v1/models")
        for item in data.get("data", []) if isinstance(data, Mapping) else []:
            found = find_context(item)
            if found:
                return found
        return None

    def chat_template(self) -> str | None:
        """Return the chat template the server applies, when /props shows it."""
        template = self.props().get("chat_template")
        return template if isinstance(template, str) and template else None

    def detect_native_tools(self) -> bool:
        """Whether the model's template handles tools, as /props describes it.

        True when /props does not say: a server without --jinja then refuses the
        first request with tools, and the backend falls back to text tools.
        """
        caps = self.props().get("chat_template_caps")
        if isinstance(caps, Mapping):
            for key in ("supports_tool_calls", "supports_tools"):
                if isinstance(caps.get(key), bool):
                    return bool(caps[key])
        return True

    def think_open(self) -> bool | None:
        """Decide from the text when the chat template opens a think block in the prompt.

        Not a plain True: a server run with a reasoning format has already moved the
        thinking to ``reasoning_content``, and the text then has no ``</think>``.
        """
        from ..toolcalls import template_opens_think

        return None if template_opens_think(self.chat_template()) else False

    def detect_tool_format(self) -> str | None:
        """Guess the text tool-call format from the server's chat template, else the model."""
        from ..toolcalls import detect_format

        return detect_format(chat_template=self.chat_template(), model_name=self.model)

    def parallel_slots(self) -> int:
        """``total_slots`` from /props: the requests llama-server decodes at once."""
        slots = self.props().get("total_slots")
        return slots if isinstance(slots, int) and not isinstance(slots, bool) and slots > 0 \
            else 1

    def server_version(self) -> str | None:
        """Return llama-server's build info from /props."""
        build = self.props().get("build_info")
        return build if isinstance(build, str) else None

    def server_info(self) -> ServerInfo:
        """Add the chat template and model path to the generic server info."""
        info = super().server_info()
        info.chat_template = self.chat_template()
        model_path = self.props().get("model_path")
        if isinstance(model_path, str):
            info.extra["model_path"] = model_path
            # The name /v1/models lists (the --alias, else the path as given to -m).
            info.model = info.model or str(self.props().get("model_alias") or model_path)
        slots = self.props().get("total_slots")
        if isinstance(slots, int):
            info.extra["total_slots"] = slots
        return info
