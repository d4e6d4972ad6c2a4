"""Pytest fixtures for a real llama-server running the scripted model.

Use them from a conftest or test module::

    from contracts.servers.pytest_fixtures import (  # noqa: F401
        llama_server_binary, real_llama_server, scripted_model_path, start_llama_server)

Tests that need them should carry the ``real_server`` marker so a unit run can
deselect them (``-m "not real_server"``). The binary is the one built by
``python -m contracts.servers.build`` or the one named by ``$PEDROLLM_LLAMA_SERVER``.
When neither exists the tests are skipped, unless ``PEDROLLM_REQUIRE_REAL_SERVER=1``
(for CI), which builds it instead, so a missing build can never pass silently.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .build import cached_binary, ensure_llama_server
from .llama_server import LlamaServer
from .scripted_model import write_scripted_model

StartServer = Callable[..., LlamaServer]


def find_llama_server(require: bool | None = None) -> Path | None:
    """$PEDROLLM_LLAMA_SERVER, else our cached build; builds it when ``require`` is true."""
    explicit = os.environ.get("PEDROLLM_LLAMA_SERVER")
    if explicit:
        return Path(explicit)
    if require is None:
        require = os.environ.get("PEDROLLM_REQUIRE_REAL_SERVER", "") not in ("", "0")
    found = cached_binary("llama-server")
    if found is None and require:
        found = ensure_llama_server()
    return found


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """The llama-server binary; skips the test when none is built (see module docs)."""
    binary = find_llama_server()
    if binary is None:
        pytest.skip("llama-server is not built: run `python -m contracts.servers.build` "
                    "or set PEDROLLM_LLAMA_SERVER")
    return binary


@pytest.fixture(scope="session")
def scripted_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The scripted model, written once per session."""
    return write_scripted_model(tmp_path_factory.mktemp("scripted-model") / "scripted.gguf")


@pytest.fixture(scope="session")
def start_llama_server(llama_server_binary: Path, scripted_model_path: Path
                       ) -> Iterator[StartServer]:
    """A factory: ``start_llama_server(**options)`` starts a server; all stop at session end."""
    started: list[LlamaServer] = []

    def start(**options: Any) -> LlamaServer:
        """Start llama-server with the scripted model and ``options`` (LlamaServer's)."""
        model = options.pop("model", scripted_model_path)
        server = LlamaServer(llama_server_binary, model, **options)
        started.append(server)
        return server.start()

    try:
        yield start
    finally:
        for server in started:
            server.close()


@pytest.fixture(scope="session")
def real_llama_server(start_llama_server: StartServer) -> LlamaServer:
    """One llama-server for the session: scripted model, ``--jinja``, no API key."""
    return start_llama_server(jinja=True)
