"""The GBNF grammars the SDK derives, checked by a real llama-server on generated tool sets.

Marked ``real_server`` (``tox -e contract-real`` runs it), on SmolLM2-135M-Instruct.
For each tool set Hypothesis generates, llama-server must accept the prompt-mode
Hermes grammar (it parses GBNF itself and refuses a bad one with 400), and whatever
a grammar-held reply says must be read by the ``hermes`` parser as one call of an
offered tool, with its required arguments. The same tool sets' JSON-schema envelopes
must be accepted too.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings

from contracts.servers.llama_server import LlamaServer
from contracts.servers.models import ensure_model
from pedrollm.constrained import envelope_schema, hermes_call_grammar, read_envelope
from pedrollm.toolcalls import get_format
from pedrollm.types import ToolDefinition

from .test_constrained import TOOL_SETS

pytestmark = pytest.mark.real_server
pytest_plugins = ["contracts.servers.pytest_fixtures"]


@pytest.fixture(scope="module")
def smollm2(start_llama_server: Callable[..., LlamaServer]) -> Iterator[LlamaServer]:
    # A real instruct model (its template has no tools), not the scripted one, whose
    # every token is planned and so says little about following a grammar.
    yield start_llama_server(model=ensure_model("smollm2"), jinja=True, ctx_size=4096)


def _complete(server: LlamaServer, **constraint: Any) -> dict[str, Any]:
    reply = requests.post(server.url + "/v1/chat/completions", timeout=120, json={
        "messages": [{"role": "user", "content": "Call one of the tools."}],
        "max_tokens": 96, "temperature": 0, **constraint})
    assert reply.status_code == 200, reply.text[:500]
    body: dict[str, Any] = reply.json()
    return body


@settings(max_examples=6, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(tools=TOOL_SETS)
def test_llama_server_takes_the_derived_constraints_and_the_replies_parse(
        smollm2: LlamaServer, tools: list[ToolDefinition]) -> None:
    offered = {t.name: t for t in tools}
    body = _complete(smollm2, grammar=hermes_call_grammar(tools, "required"))
    choice = body["choices"][0]
    if choice["finish_reason"] == "stop":  # a whole reply: it must be one valid call
        parsed = get_format("hermes").parse(choice["message"]["content"] or "", tools)
        assert len(parsed.calls) == 1, choice["message"]["content"]
        call = parsed.calls[0]
        assert call.name in offered
        assert set(offered[call.name].parameters["required"]) <= set(call.args)
    body = _complete(smollm2, json_schema=envelope_schema(tools, "required"))
    choice = body["choices"][0]
    if choice["finish_reason"] == "stop":
        found = read_envelope(choice["message"]["content"] or "", tools)
        assert found is not None and len(found.calls) == 1, choice["message"]["content"]
        assert found.calls[0].name in offered
