"""fakellama refuses thinking fields as llama-server does (server-common.cpp, common/chat.cpp).

The wording is the pinned source's; tests/test_vision_reasoning_real.py holds the fake to
the real binary on the same bodies.
"""

from __future__ import annotations

from typing import Any

import pytest

from fakellama.validation import check_chat

HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]


@pytest.mark.parametrize(("fields", "status", "message"), [
    ({"chat_template_kwargs": {"enable_thinking": "true"}}, 400,
     'invalid type for "enable_thinking" (expected boolean, got string)'),
    ({"reasoning_format": "bogus"}, 500, "Unknown reasoning format: bogus"),
    ({"reasoning_format": 5}, 400,
     "[json.exception.type_error.302] type must be string, but is number"),
    ({"reasoning_format": None}, 400,
     "[json.exception.type_error.302] type must be string, but is null"),
    ({"reasoning_budget_tokens": "x"}, 400, "Field 'reasoning_budget_tokens': "
     "[json.exception.type_error.302] type must be number, but is string"),
    # The order of the checks: the format before tools with a grammar, those before
    # the template arguments.
    ({"reasoning_format": "bogus", "tools": TOOLS, "grammar": "root ::= \"a\""}, 500,
     "Unknown reasoning format: bogus"),
    ({"chat_template_kwargs": {"enable_thinking": "x"}, "tools": TOOLS,
      "grammar": "root ::= \"a\""}, 400, "Cannot use custom grammar constraints with tools."),
])
def test_a_bad_thinking_field_is_refused_with_llama_servers_words(
        fields: dict[str, Any], status: int, message: str) -> None:
    refusal = check_chat({"messages": HI, **fields})
    assert refusal is not None
    assert (refusal.status, refusal.message) == (status, message)
    assert refusal.error_type == ("server_error" if status == 500 else "invalid_request_error")


@pytest.mark.parametrize("fields", [
    {"chat_template_kwargs": {"enable_thinking": True}},
    {"chat_template_kwargs": {"enable_thinking": 1}},  # neither true, false nor a string
    {"chat_template_kwargs": 5},
    {"reasoning_format": "deepseek-legacy"},
    {"reasoning_effort": "none"},
    {"reasoning_effort": 7},  # not a string: read as absent
    {"reasoning_budget_tokens": 64},
])
def test_thinking_fields_llama_server_takes_are_taken(fields: dict[str, Any]) -> None:
    assert check_chat({"messages": HI, **fields}) is None
