"""pedrollm: one synchronous Python SDK for local LLM servers."""

__version__ = "0.1.0"
