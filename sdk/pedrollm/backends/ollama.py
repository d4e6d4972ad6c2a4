"""Ollama, through its OpenAI-compatible API under ``/v1``.

Readiness is ``GET /`` ("Ollama is running"); the context window and tool support
come from ``POST /api/show``. Ollama ignores ``tool_choice`` and has no GBNF
grammars, so asking for either fails clearly before anything is sent; its other
quirks (whole tool calls with no index, ``reasoning`` for ``reasoning_content``)
are read by the generic stream and reply code.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..errors import InvalidResponse, PedroLLMError, UnsupportedFeature
from ..request_body import standard_options
from ..types import InferenceRequest, ServerInfo
from .openai import OpenAIBackend

_NUM_CTX = re.compile(r"^\s*num_ctx\s+(\d+)\s*$", re.MULTILINE)


class OllamaBackend(OpenAIBackend):
    """An Ollama server."""

    name = "ollama"
    default_url = "http://localhost:11434"
    health_path = "/"
    unsupported = {
        "grammar": "Ollama has no GBNF grammars; use json_schema",
        "n_probs": "Ollama's OpenAI API returns no token probabilities",
        "min_p": "Ollama's OpenAI API does not take min_p",
        "repeat_penalty": "Ollama's OpenAI API does not take repeat_penalty",
        "top_k": "Ollama's OpenAI API does not take top_k",
    }

    _show: Mapping[str, Any] | None = None
    _listed_first: str | None = None

    def check_request(self, req: InferenceRequest) -> None:
        """Refuse tool_choice other than auto: Ollama would ignore it silently."""
        super().check_request(req)
        if req.tool_choice not in (None, "auto"):
            raise UnsupportedFeature(
                f"tool_choice={req.tool_choice!r} is not supported by ollama: it always "
                "decides itself whether to call a tool (use 'auto' or leave it unset)"
            )

    def request_options(self, req: InferenceRequest) -> dict[str, Any]:
        """Only the standard OpenAI sampling fields."""
        return standard_options(req)

    def think_options(self, req: InferenceRequest) -> dict[str, Any]:
        """``reasoning_effort``, which Ollama's OpenAI API turns into its ``think`` setting.

        That API has no plain "on": False is "none", a level is itself, and True is
        "medium", which turns thinking on for any thinking model (and is gpt-oss's default
        effort). Chat templates' ``enable_thinking`` is not read by Ollama.
        """
        if req.think is None:
            return {}
        if isinstance(req.think, bool):
            return {"reasoning_effort": "medium" if req.think else "none"}
        return {"reasoning_effort": req.think}

    def show(self) -> Mapping[str, Any]:
        """Return ``/api/show`` for the configured model (fetched once)."""
        if self._show is None:
            model = self.default_model()
            data = self.client.post_json("/api/show", {"model": model}) if model else {}
            self._show = data if isinstance(data, Mapping) else {}
        return self._show

    def _first_model(self) -> str | None:
        """The first model Ollama lists, when none is configured (asked once)."""
        if self._listed_first is None:
            models = self.list_models()
            self._listed_first = models[0].id if models else None
        return self._listed_first

    def default_model(self) -> str | None:
        """Ollama refuses a request without a model ("model is required"): the configured
        one, else the first it lists, as ``ollama run`` users expect of a one-model setup."""
        if self.model is not None:
            return self.model
        try:
            return self._first_model()
        except PedroLLMError:
            return None  # the request itself then says what is wrong with the server

    def discover_context_window(self) -> int | None:
        """The window Ollama allocated: ``/api/ps`` while loaded, else the model's ``num_ctx``.

        Not ``<arch>.context_length`` from ``/api/show``: that is the model's training
        maximum (:meth:`model_max_context`), while Ollama allocates its own default
        (2048, then 4096, now chosen by VRAM or ``OLLAMA_CONTEXT_LENGTH``) and silently
        truncates past it. Until the model is loaded nothing says which: None.
        """
        running = self.running_context()
        if running is not None:
            return running
        params = self.show().get("parameters")
        if isinstance(params, str):
            match = _NUM_CTX.search(params)
            if match:
                return int(match.group(1))
        return None

    def running_context(self) -> int | None:
        """``context_length`` of the configured (else the first) model in ``/api/ps``."""
        try:
            data = self.client.get_json("/api/ps", retry=False)
        except PedroLLMError:
            return None
        models = data.get("models") if isinstance(data, Mapping) else None
        for entry in models if isinstance(models, list) else []:
            if not isinstance(entry, Mapping):
                continue
            if self.model is not None and self.model not in (entry.get("name"),
                                                              entry.get("model")):
                continue
            value = entry.get("context_length")
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def model_max_context(self) -> int | None:
        """The model's own maximum context (``<arch>.context_length``), not the allocation."""
        info = self.show().get("model_info")
        if isinstance(info, Mapping):
            arch = info.get("general.architecture")
            value = info.get(f"{arch}.context_length") if isinstance(arch, str) else None
            if value is None:
                value = next((v for k, v in info.items() if k.endswith(".context_length")), None)
            if isinstance(value, int) and not isinstance(value, bool) and value > 0:
                return value
        return None

    def get_context_window(self) -> int:
        """The configured size, else the allocated window; says how to learn it when unknown."""
        if self.context_size is None and self._discovered() is None:
            raise UnsupportedFeature(
                f"Ollama at {self.server_url} reports the context window it allocates only "
                "while the model is loaded (/api/ps) or when the model sets num_ctx; send a "
                "request first, or set model.context_size (the model's own maximum is "
                f"{self.model_max_context() or 'unknown'} tokens)")
        return super().get_context_window()

    def server_info(self) -> ServerInfo:
        """Add the model's own maximum context beside the allocated window."""
        info = super().server_info()
        try:
            info.extra["model_max_context"] = self.model_max_context()
        except PedroLLMError:
            pass
        return info

    def detect_native_tools(self) -> bool:
        """Ollama lists ``tools`` among a model's capabilities when it can call them."""
        try:
            caps = self.show().get("capabilities")
        except PedroLLMError:
            return True
        return "tools" in caps if isinstance(caps, list) else True

    def parallel_slots(self) -> int:
        """4: Ollama's ``OLLAMA_NUM_PARALLEL`` is 4 or 1 by free memory; more requests queue."""
        return 4

    def embed_batch(self, texts: list[str], *, model: str | None = None) -> list[list[float]]:
        """POST Ollama's native ``/api/embed`` (``{"model", "input"}`` -> ``{"embeddings"}``).

        Ollama needs a model name: the one given, else the configured one, else the
        first it lists.
        """
        from ..embeddings import check_count, read_vector

        name = model or self.default_model()
        if not name:
            raise UnsupportedFeature(f"Ollama at {self.server_url} lists no model to embed with; "
                                     "set model.model_name")
        data = self.client.post_json("/api/embed", {"model": name, "input": texts})
        where = self.client.shown_url("/api/embed")
        vectors = data.get("embeddings") if isinstance(data, Mapping) else None
        if not isinstance(vectors, list):
            raise InvalidResponse(f"{where} answered without an 'embeddings' list")
        return check_count([read_vector(v, f"{where}: embeddings[{i}]")
                            for i, v in enumerate(vectors)], len(texts), where)

    def server_version(self) -> str | None:
        """Return Ollama's version from /api/version."""
        try:
            data = self.client.get_json("/api/version", retry=False)
        except PedroLLMError:
            return None
        version = data.get("version") if isinstance(data, Mapping) else None
        return version if isinstance(version, str) else None
