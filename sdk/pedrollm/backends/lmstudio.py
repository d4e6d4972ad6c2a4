"""LM Studio's server.

Its REST API ``GET /api/v0/models`` gives each model's ``max_context_length`` and
load ``state``; chat goes through the OpenAI-compatible ``/v1`` API.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

from ..backend import Health
from ..errors import PedroLLMError
from ..request_body import standard_options
from ..types import InferenceRequest
from .openai import OpenAIBackend


class LMStudioBackend(OpenAIBackend):
    """An LM Studio server."""

    name = "lmstudio"
    default_url = "http://localhost:1234"
    health_path = "/v1/models"
    unsupported = {
        "grammar": "LM Studio has no GBNF grammars; use json_schema",
        "n_probs": "LM Studio's OpenAI API returns no token probabilities",
        "think": "LM Studio documents per-request thinking control only on /v1/responses and "
                 "its native /api/v1/chat, not on /v1/chat/completions; set thinking in the "
                 "model's settings in LM Studio, or send a field yourself through `extra`",
    }

    def request_options(self, req: InferenceRequest) -> dict[str, Any]:
        """Standard fields plus the samplers LM Studio accepts."""
        body = standard_options(req)
        for key in ("top_k", "min_p", "repeat_penalty"):
            value = getattr(req, key)
            if value is not None:
                body[key] = value
        return body

    def models_v0(self) -> list[Mapping[str, Any]]:
        """Return the entries of /api/v0/models."""
        data = self.client.get_json("/api/v0/models")
        items = data.get("data") if isinstance(data, Mapping) else None
        return [i for i in items if isinstance(i, Mapping)] if isinstance(items, list) else []

    def _entry(self) -> Mapping[str, Any] | None:
        """The configured model's entry, else the first loaded LLM."""
        entries = [e for e in self.models_v0() if e.get("type", "llm") in ("llm", "vlm")]
        for e in entries:
            if self.model is not None and e.get("id") == self.model:
                return e
        loaded = [e for e in entries if e.get("state") == "loaded"]
        candidates = loaded or entries
        return candidates[0] if candidates else None

    def discover_context_window(self) -> int | None:
        """The loaded context length where LM Studio shows it, else the model's maximum.

        ``/api/v0/models`` documents only ``max_context_length``, the model's maximum;
        LM Studio loads a model with a smaller context unless told otherwise (4096 in
        its docs' example against 262144), so the maximum is used with a warning.
        """
        entry = self._entry()
        if entry is None:
            return None
        loaded = entry.get("loaded_context_length")
        if isinstance(loaded, int) and not isinstance(loaded, bool) and loaded > 0:
            return loaded
        maximum = entry.get("max_context_length")
        if isinstance(maximum, int) and not isinstance(maximum, bool) and maximum > 0:
            warnings.warn(
                f"LM Studio at {self.server_url} shows only the maximum context of "
                f"{entry.get('id')} ({maximum} tokens); the context it was loaded with may be "
                "smaller. Set model.context_size to the loaded context.",
                RuntimeWarning, stacklevel=3)
            return maximum
        return None

    def health(self) -> Health:
        """Ready when the server answers and the model is loaded (LM Studio loads on demand)."""
        status = super().health()
        if not status.ready:
            return status
        try:
            entry = self._entry()
        except PedroLLMError:
            return status
        if entry is not None and entry.get("state") not in (None, "loaded"):
            return Health("ok", f"model {entry.get('id')} is {entry.get('state')}; "
                                "LM Studio loads it on the first request")
        return status
