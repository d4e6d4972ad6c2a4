"""A downstream test suite in miniature, run by check_dist.py against the installed wheel.

It is copied into an empty folder with no conftest.py, so the `fake_llama_server`
fixture can only come from the plugin the wheel registers (entry point `pytest11`),
and `pedrollm` only from the wheel.
"""

from __future__ import annotations

import pytest
import requests

from fakellama.server import FakeServer
from pedrollm import InferenceRequest, ToolDefinition, new_backend


def test_plugin_fixture_serves_health(fake_llama_server: FakeServer) -> None:
    reply = requests.get(fake_llama_server.url + "/health", timeout=10)
    assert reply.status_code == 200
    assert reply.json() == {"status": "ok"}


# strict: only a recorded fixture may answer, so this fails if the wheel lost them
@pytest.mark.fake_llama(strict=True)
def test_sdk_gets_the_recorded_tool_call_from_the_fixture(fake_llama_server: FakeServer) -> None:
    weather = ToolDefinition(
        name="get_weather",
        description="Get the current weather for a city.",
        parameters={
            "type": "object",
            "properties": {"city": {"type": "string", "description": "The city name."}},
            "required": ["city"],
        },
    )
    with new_backend({"type": "llamacpp", "server_url": fake_llama_server.url}) as llm:
        reply = llm.infer(
            InferenceRequest(user_prompt="What is the weather in Paris?", tools=[weather])
        )
    assert [(call.name, call.args) for call in reply.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
