"""``pedrollm demo``: a tool-calling agent round trip against the bundled fake server.

It needs no model and no network: the fake llama-server replays a recorded
exchange in which the model calls ``get_weather`` for Paris and then answers with
the tool's result. ``pedrollm --server-url URL demo`` (or ``demo --server-url URL``)
runs the same agent against your server instead, with the config's backend type and
API key.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from typing import TextIO

from .agent import Agent, AgentEvent, ToolRegistry
from .backend import Backend
from .backends.llamacpp import LlamaCppBackend

DEMO_TASK = "What is the weather in Paris?"

WEATHER = {"paris": "sunny, 22 C", "london": "light rain, 14 C", "tokyo": "cloudy, 18 C"}


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    return WEATHER.get(city.strip().lower(), "no report for that city")


def demo_registry() -> ToolRegistry:
    """The demo's tools: one weather lookup."""
    registry = ToolRegistry()
    registry.register(get_weather)
    return registry


def _describe(event: AgentEvent) -> str | None:
    """One line per agent step, for the terminal."""
    data = event.data
    if event.kind == "request":
        return f"-> asking the model (turn {event.turn}, {data.get('messages')} messages)"
    if event.kind == "tool_call":
        return f"<- model calls {data.get('name')}({json.dumps(data.get('args'))})"
    if event.kind == "tool_result":
        return f"-> tool {data.get('name')} returned {data.get('content')!r}"
    if event.kind == "final":
        return f"<- model answers: {data.get('text')}"
    if "message" in data:
        return f"!! {event.kind}: {data['message']}"
    return f"!! {event.kind}: {data}"


def run_demo(out: TextIO, *, server_url: str | None = None, as_json: bool = False,
             backend: Backend | None = None, note: TextIO | None = None) -> int:
    """Run the demo, printing each step; return 0 when the agent completed its task.

    ``backend`` (or else ``server_url``, a llama-server) is the server to run it
    against; without either, the bundled fake is started. With ``as_json`` only the
    JSON transcript goes to ``out``; the line naming the fake goes to ``note``.
    """
    with ExitStack() as stack:
        if backend is None:
            if server_url is None:
                from fakellama.server import FakeServer

                fake = stack.enter_context(FakeServer())
                server_url = fake.url
                if note is not None or not as_json:
                    (note or out).write(f"fake llama-server (bundled fixtures) at {server_url}\n")
            backend = stack.enter_context(LlamaCppBackend(server_url))

        def show(event: AgentEvent) -> None:
            line = _describe(event)
            if line and not as_json:
                out.write(line + "\n")
                out.flush()

        agent = Agent(backend, demo_registry(), on_event=show)
        if not as_json:
            out.write(f"task: {DEMO_TASK}\n")
        result = agent.run(DEMO_TASK)
        if as_json:
            out.write(result.to_json(indent=2) + "\n")
        else:
            out.write(f"done in {result.turns} turns ({result.stopped_reason})\n")
        return 0 if result.stopped_reason == "complete" else 1
