"""The data types round-trip through JSON and derive next_action from tool calls."""

from __future__ import annotations

from pedrollm.types import (
    InferenceRequest,
    InferenceResponse,
    InvalidToolCall,
    Message,
    Timings,
    ToolCall,
    ToolDefinition,
    Usage,
)


def test_response_round_trips_through_json_with_next_action() -> None:
    resp = InferenceResponse(
        text="", tool_calls=[ToolCall("c1", "f", {"a": [1, {"b": None}]})],
        invalid_tool_calls=[InvalidToolCall(raw="{", error="cut off", name="g")],
        reasoning="hmm", finish_reason="tool_calls", usage=Usage(1, 2, 3),
        timings=Timings(predicted_n=2, predicted_ms=1.0), model="m",
    )
    data = resp.to_dict()
    assert data["next_action"] == "CONTINUE"
    assert InferenceResponse.from_json(resp.to_json()) == resp


def test_next_action_is_complete_without_tool_calls() -> None:
    assert InferenceResponse(text="done").next_action == "COMPLETE"
    assert InferenceResponse(text="done").to_dict()["next_action"] == "COMPLETE"


def test_request_round_trips_and_orders_prompts_around_messages() -> None:
    req = InferenceRequest(
        system_prompt="sys", user_prompt="last",
        messages=[Message.user("first"), Message.assistant("a", [ToolCall("c", "f", {})]),
                  Message.tool("c", "result")],
        tools=[ToolDefinition("f", "does f")], grammar=None, json_schema={"type": "object"},
        extra={"cache_prompt": True},
    )
    assert InferenceRequest.from_json(req.to_json()) == req
    assert [m.role for m in req.all_messages()] == ["system", "user", "assistant", "tool", "user"]
