"""Building a backend over a hand-configured transport, for tests."""

from __future__ import annotations

from typing import Any

from pedrollm.backends.openai import OpenAIBackend
from pedrollm.client import HTTPClient


def backend_at(url: str, **transport: Any) -> OpenAIBackend:
    """A generic OpenAI backend whose transport takes ``transport`` (retry, sleep, ...)."""
    return OpenAIBackend(transport=HTTPClient(url, **transport))
