"""Forms real models write beyond the documented ones, and the choices pedrollm makes.

Each test holds a reply shaped as a model writes it (and as llama.cpp and vLLM read
it), what a user gets from ``parse``, and that a stream in small chunks agrees.
docs/toolcalls.md has the table of these choices.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest

from pedrollm.toolcalls import (
    ParseResult,
    StreamingParser,
    detect_format,
    get_format,
    parse,
)
from pedrollm.types import ToolCall, ToolDefinition


def calls(result: ParseResult) -> list[tuple[str, str, dict[str, Any]]]:
    return [(c.id, c.name, c.args) for c in result.calls]


def streamed(text: str, format: str, size: int = 3, **kw: Any) -> ParseResult:
    p = StreamingParser(format, **kw)
    for i in range(0, len(text), size):
        p.feed(text[i : i + size])
    return p.finish()


def same_streamed(text: str, format: str, **kw: Any) -> ParseResult:
    """Parse ``text`` and check that streams in 1- and 4-character chunks agree."""
    tools = kw.pop("tools", None)
    r = parse(text, format, tools, **kw)
    for size in (1, 4):
        assert streamed(text, format, size, tools=tools, **kw) == r
    return r


# -- 1. DeepSeek R1: the fence closed on the JSON's last line ------------------------


def test_deepseek_r1_fence_closed_on_the_json_line() -> None:
    text = (
        "I'll look it up.\n"
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"location": "Tokyo", "unit": "celsius"}```<｜tool▁call▁end｜>'
        "<｜tool▁calls▁end｜>"
    )
    r = same_streamed(text, "deepseek_r1")
    assert r.content == "I'll look it up."
    assert calls(r) == [("call_0", "get_weather", {"location": "Tokyo", "unit": "celsius"})]
    assert r.invalid == []


# -- 2. gpt-oss: the recipient in the role header -------------------------------------


def test_gpt_oss_recipient_in_the_role_header() -> None:
    text = (
        "<|channel|>analysis<|message|>Need the weather.<|end|>"
        "<|start|>assistant to=functions.get_weather<|channel|>commentary json"
        '<|message|>{"location": "Tokyo"}<|call|>'
    )
    r = same_streamed(text, "gpt_oss")
    assert r.reasoning == "Need the weather."
    assert calls(r) == [("call_0", "get_weather", {"location": "Tokyo"})]
    assert r.content == ""


def test_gpt_oss_reply_that_continues_the_prompts_role_header() -> None:
    # The prompt ends with "<|start|>assistant": the reply starts at the recipient.
    text = ' to=functions.get_weather<|channel|>commentary json<|message|>{"location":"Tokyo"}'
    r = same_streamed(text, "gpt_oss")
    assert calls(r) == [("call_0", "get_weather", {"location": "Tokyo"})]
    assert r.content == "" and r.reasoning is None
    # Elsewhere "to=" is just text.
    assert parse("Set x to=5.", "gpt_oss") == ParseResult(content="Set x to=5.")


# -- 3. Numbers JSON cannot carry -----------------------------------------------------


@pytest.mark.parametrize(
    ("text", "format"),
    [
        ("[get_weather(days=1e999)]", "pythonic"),
        ("[get_weather(days=-1e999)]", "pythonic"),
        ("[get_weather(days=inf)]", "pythonic"),
        ("[get_weather(days=nan)]", "pythonic"),
        ('<|python_start|>[get_weather(days=1e999)]<|python_end|>', "pythonic"),
        ('<tool_call>\n{"name": "get_weather", "arguments": {"days": 1e999}}\n</tool_call>',
         "hermes"),
        ('<tool_call>\n{"name": "get_weather", "arguments": {"days": NaN}}\n</tool_call>',
         "hermes"),
        ('{"name": "get_weather", "parameters": {"days": -Infinity}}', "llama3_json"),
    ],
)  # fmt: skip
def test_a_non_finite_number_makes_the_call_refused(text: str, format: str) -> None:
    r = same_streamed(text, format)
    assert r.calls == []
    assert len(r.invalid) == 1
    assert r.content == ""


def test_a_non_finite_xml_value_stays_the_text_written() -> None:
    tool = ToolDefinition(
        name="f", parameters={"type": "object", "properties": {"x": {"type": "number"}}}
    )
    for raw in ("1e999", "NaN", "Infinity", "-inf"):
        text = f"<function=f>\n<parameter=x>\n{raw}\n</parameter>\n</function>"
        assert parse(text, "qwen3_coder", [tool]).calls[0].args == {"x": raw}


def test_nothing_pedrollm_writes_is_non_json() -> None:
    bad = [ToolCall(id="", name="f", args={"x": float("inf")})]
    for name in ("hermes", "pythonic", "qwen3_coder", "deepseek_v3_2", "kimi_k2"):
        with pytest.raises(ValueError):
            get_format(name).render(bad)
    # Every delta a stream sends is strict JSON.
    p = StreamingParser("pythonic")
    deltas = p.feed("[f(a=1.5e300, b=-2)]") + p.flush()
    args = [d.tool_call.arguments for d in deltas if d.tool_call]
    assert [json.loads(a, parse_constant=_refuse) for a in args] == [{"a": 1.5e300, "b": -2}]


def _refuse(name: str) -> None:
    raise AssertionError(f"non-JSON constant {name}")


# -- 4. Qwen3-Coder without <tool_call>; values holding its own tags (issue 19) ------


def test_qwen3_coder_function_block_without_tool_call_tags() -> None:
    text = (
        "I'll create the file.\n\n<function=write_file>\n<parameter=path>\nhello.py\n"
        "</parameter>\n<parameter=content>\nprint('hi')\n</parameter>\n</function>\nDone."
    )
    r = same_streamed(text, "qwen3_coder")
    assert calls(r) == [("call_0", "write_file", {"path": "hello.py", "content": "print('hi')"})]
    # Whitespace between pieces of content is kept as written.
    assert r.content == "I'll create the file.\n\n\nDone."


def test_qwen3_coder_value_holding_closing_tags_is_read_whole() -> None:
    xml = (
        "<config>\n  <function>run</function>\n  <parameter>x</parameter>\n</config>\n"
        'print("</parameter>\\n</function>")'
    )
    text = (
        "<tool_call>\n<function=write_file>\n<parameter=path>\nt.xml\n</parameter>\n"
        f"<parameter=content>\n{xml}\n</parameter>\n</function>\n</tool_call>"
    )
    r = same_streamed(text, "qwen3_coder")
    assert calls(r) == [("call_0", "write_file", {"path": "t.xml", "content": xml})]
    # The same without <tool_call> around it.
    bare = text.removeprefix("<tool_call>\n").removesuffix("\n</tool_call>")
    assert same_streamed(bare, "qwen3_coder") == r


def test_qwen3_coder_value_closed_inline_still_reads() -> None:
    text = "<tool_call>\n<function=f>\n<parameter=a>\nx</parameter>\n</function>\n</tool_call>"
    assert calls(same_streamed(text, "qwen3_coder")) == [("call_0", "f", {"a": "x"})]


# -- 5. XML-style values typed by the schema ------------------------------------------


@pytest.mark.parametrize(
    ("schema", "raw", "value"),
    [
        ({"type": ["string", "null"]}, "null", None),
        ({"anyOf": [{"type": "integer"}, {"type": "null"}]}, "null", None),
        ({"type": "null"}, "null", None),
        ({"type": "string"}, "null", "null"),
        ({"type": "integer"}, "null", "null"),
        ({"type": "boolean"}, "true", True),
        ({"type": "boolean"}, "False", False),
        ({"type": "boolean"}, "yes", "yes"),
        ({"type": "integer"}, "42", 42),
        ({"type": "integer"}, "4.5", "4.5"),
        ({"type": "number"}, "4.5", 4.5),
        ({"type": "number"}, "4", 4),
        ({"type": "object"}, '{"a": [1, null]}', {"a": [1, None]}),
        ({"type": "object"}, "{'a': True}", {"a": True}),
        ({"type": "array"}, '["x", 2]', ["x", 2]),
        ({"type": "array"}, "x, 2", "x, 2"),
        ({"type": ["integer", "boolean"]}, "false", False),
        ({"type": ["integer", "boolean"]}, "7", 7),
        ({"type": ["string", "integer"]}, "42", "42"),
        ({"enum": [1, 2, 3]}, "2", 2),
        ({"description": "no type"}, "42", "42"),
    ],
)
def test_xml_values_get_the_type_their_schema_names(
    schema: dict[str, Any], raw: str, value: Any
) -> None:
    tool = ToolDefinition(name="f", parameters={"type": "object", "properties": {"v": schema}})
    texts = {
        "qwen3_coder": f"<tool_call>\n<function=f>\n<parameter=v>\n{raw}\n</parameter>\n"
        "</function>\n</tool_call>",
        "seed_oss": f"<seed:tool_call>\n<function=f>\n<parameter=v>\n{raw}\n</parameter>\n"
        "</function>\n</seed:tool_call>",
        "glm45": f"<tool_call>f\n<arg_key>v</arg_key>\n<arg_value>{raw}</arg_value>\n</tool_call>",
        "minimax_m2": '<minimax:tool_call>\n<invoke name="f">\n'
        f'<parameter name="v">{raw}</parameter>\n</invoke>\n</minimax:tool_call>',
        "deepseek_v3_2": '<｜DSML｜function_calls>\n<｜DSML｜invoke name="f">\n'
        f'<｜DSML｜parameter name="v">{raw}</｜DSML｜parameter>\n</｜DSML｜invoke>\n'
        "</｜DSML｜function_calls>",
    }
    for fmt, text in texts.items():
        got = parse(text, fmt, [tool]).calls
        assert [c.args for c in got] == [{"v": value}], fmt


# -- 6. Granite 3.1: plain-text <tool_call> -------------------------------------------


def test_granite_31_plain_text_tool_call_list() -> None:
    body = '[{"arguments": {"location": "Boston"}, "name": "get_current_weather"}]'
    expected = [("call_0", "get_current_weather", {"location": "Boston"})]
    for text in (f"<tool_call>{body}", f"Let me check.\n<tool_call>{body}</tool_call>"):
        r = same_streamed(text, "granite")
        assert calls(r) == expected
        assert r.content == ("Let me check." if text.startswith("Let") else "")
        assert r.invalid == []


# -- 7. Kimi K2: a malformed id --------------------------------------------------------


def test_kimi_k2_malformed_id_is_refused_and_the_others_kept() -> None:
    text = (
        "<|tool_calls_section_begin|>"
        "<|tool_call_begin|>functions.invalid.0<|tool_call_argument_begin|>{}<|tool_call_end|>"
        '<|tool_call_begin|>functions.get_weather:1<|tool_call_argument_begin|>{"city": "Paris"}'
        "<|tool_call_end|><|tool_calls_section_end|>"
    )
    r = same_streamed(text, "kimi_k2")
    assert calls(r) == [("functions.get_weather:1", "get_weather", {"city": "Paris"})]
    assert len(r.invalid) == 1
    assert "functions.invalid.0" in r.invalid[0].error


@pytest.mark.parametrize("call_id", ["functions.get_weather", "functions.get_weather:x", ":0"])
def test_kimi_k2_ids_without_name_and_index_are_refused(call_id: str) -> None:
    text = (
        f"<|tool_calls_section_begin|><|tool_call_begin|>{call_id}<|tool_call_argument_begin|>"
        "{}<|tool_call_end|><|tool_calls_section_end|>"
    )
    r = parse(text, "kimi_k2")
    assert r.calls == [] and len(r.invalid) == 1


def test_kimi_k2_id_without_the_functions_prefix_is_read() -> None:
    text = (
        "<|tool_calls_section_begin|><|tool_call_begin|>get_weather:0"
        "<|tool_call_argument_begin|>{}<|tool_call_end|><|tool_calls_section_end|>"
    )
    assert calls(parse(text, "kimi_k2")) == [("get_weather:0", "get_weather", {})]


# -- 8. DeepSeek V3.2: DSML -----------------------------------------------------------

DSML_REPLY = (
    "<think>The user wants the weather for two days.</think>"
    "Let me check.\n\n"
    "<｜DSML｜function_calls>\n"
    '<｜DSML｜invoke name="get_weather">\n'
    '<｜DSML｜parameter name="location" string="true">Hangzhou</｜DSML｜parameter>\n'
    '<｜DSML｜parameter name="days" string="false">2</｜DSML｜parameter>\n'
    '<｜DSML｜parameter name="options" string="false">{"unit": "celsius", "hourly": false}'
    "</｜DSML｜parameter>\n"
    "</｜DSML｜invoke>\n"
    '<｜DSML｜invoke name="get_time">\n'
    '<｜DSML｜parameter name="zone" string="true">007</｜DSML｜parameter>\n'
    "</｜DSML｜invoke>\n"
    "</｜DSML｜function_calls>"
)


def test_deepseek_v32_dsml_calls() -> None:
    r = same_streamed(DSML_REPLY, "deepseek_v3_2")
    assert r.reasoning == "The user wants the weather for two days."
    assert r.content == "Let me check."
    assert calls(r) == [
        (
            "call_0",
            "get_weather",
            {"location": "Hangzhou", "days": 2, "options": {"unit": "celsius", "hourly": False}},
        ),
        ("call_1", "get_time", {"zone": "007"}),
    ]
    assert r.invalid == []


def test_deepseek_v32_tool_calls_spelling_and_a_value_marked_json_that_is_not() -> None:
    text = DSML_REPLY.replace("function_calls>", "tool_calls>").replace(
        'string="false">2<', 'string="false">two<'
    )
    r = same_streamed(text, "deepseek_v3_2")
    assert calls(r) == [("call_0", "get_time", {"zone": "007"})]
    assert len(r.invalid) == 1 and "days" in r.invalid[0].error


def test_deepseek_v32_is_detected_and_v31_no_longer_claims_it() -> None:
    template = '{{ "<｜DSML｜function_calls>" }}{{ "<｜DSML｜invoke name=" }}'
    assert detect_format(chat_template=template) == "deepseek_v3_2"
    assert detect_format(model_name="deepseek-ai/DeepSeek-V3.2-Exp") == "deepseek_v3_2"
    assert detect_format(model_name="deepseek-ai/DeepSeek-V3.1") == "deepseek_v3_1"
    assert get_format("deepseek_v3_2").name == "deepseek_v3_2"
    assert parse(DSML_REPLY, "deepseek_v3_1").calls == []


# -- 9. Calls inside an open think block ----------------------------------------------


def test_kimi_k2_thinking_writes_its_calls_inside_the_think_block() -> None:
    text = (
        "<think>I should check the weather."
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
        '<|tool_call_argument_begin|>{"city": "Beijing"}<|tool_call_end|>'
        "<|tool_calls_section_end|>"
    )
    r = same_streamed(text, "kimi_k2")
    assert r.reasoning == "I should check the weather."
    assert calls(r) == [("functions.get_weather:0", "get_weather", {"city": "Beijing"})]
    assert r.content == ""
    # A block closed after the calls goes on after them.
    closed = text.replace("<think>", "<think>Plan. ") + " Then answer.</think>It is sunny."
    r = same_streamed(closed, "kimi_k2")
    assert r.reasoning == "Plan. I should check the weather. Then answer."
    assert len(r.calls) == 1 and r.content == "It is sunny."


def test_qwen35_calls_before_the_prompt_opened_think_block_closes() -> None:
    text = (
        "The user wants the weather. I'll call the tool.\n"
        "<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    r = same_streamed(text, "qwen3_coder", think_open=True)
    assert r.reasoning == "The user wants the weather. I'll call the tool."
    assert calls(r) == [("call_0", "get_weather", {"city": "Paris"})]
    assert r.content == ""
    # Closed after the call, and read without being told the prompt opened the block.
    closed = text + "\nDone thinking.</think>It is sunny."
    r = same_streamed(closed, "qwen3_coder", think_open=None)
    assert r.reasoning == "The user wants the weather. I'll call the tool.\n\nDone thinking."
    assert calls(r) == [("call_0", "get_weather", {"city": "Paris"})]
    assert r.content == "It is sunny."
    assert same_streamed(closed, "qwen3_coder", think_open=True) == r


def test_hermes_never_reads_calls_inside_reasoning() -> None:
    # Qwen3 writes its calls after </think>; a call spelled inside thinking is a thought.
    text = (
        '<think>I could answer with <tool_call>{"name": "f", "arguments": {}}</tool_call>'
        " but no.</think>The answer is 4."
    )
    r = same_streamed(text, "hermes")
    assert r.calls == [] and r.content == "The answer is 4."
    assert r.reasoning is not None and "<tool_call>" in r.reasoning


# -- 10. A missing closing marker at the end of a finished reply ----------------------


@pytest.mark.parametrize(
    ("text", "format", "expected"),
    [
        ('<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}', "hermes",
         ("call_0", "get_weather", {"city": "Paris"})),
        ("<tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
         "</function>", "qwen3_coder", ("call_0", "get_weather", {"city": "Paris"})),
        ('<|python_start|>[get_weather(city="Paris")]', "pythonic",
         ("call_0", "get_weather", {"city": "Paris"})),
        ('<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0'
         '<|tool_call_argument_begin|>{"city": "Paris"}', "kimi_k2",
         ("functions.get_weather:0", "get_weather", {"city": "Paris"})),
        ('<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0'
         '<|tool_call_argument_begin|>{"city": "Paris"}<|tool_call_end|>', "kimi_k2",
         ("functions.get_weather:0", "get_weather", {"city": "Paris"})),
        ('<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>{"city": "Paris"}',
         "deepseek_v3_1", ("call_0", "get_weather", {"city": "Paris"})),
        ('<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]', "nemotron",
         ("call_0", "get_weather", {"city": "Paris"})),
        ('<tool_calls>\n[{"name": "get_weather", "arguments": {"city": "Paris"}}]', "jamba",
         ("call_0", "get_weather", {"city": "Paris"})),
        ('<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "get_weather", '
         '"parameters": {"city": "Paris"}}]', "command_r7b",
         ("0", "get_weather", {"city": "Paris"})),
        ("<seed:tool_call>\n<function=get_weather>\n<parameter=city>\nParis\n</parameter>\n"
         "</function>", "seed_oss", ("call_0", "get_weather", {"city": "Paris"})),
        ('<minimax:tool_call>\n<invoke name="get_weather">\n<parameter name="city">Paris'
         "</parameter>\n</invoke>\n", "minimax_m2", ("call_0", "get_weather", {"city": "Paris"})),
        ("<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
         '```json\n{"city": "Paris"}\n```', "deepseek_r1",
         ("call_0", "get_weather", {"city": "Paris"})),
    ],
)  # fmt: skip
def test_a_whole_body_at_the_end_of_a_reply_counts_without_its_closing_marker(
    text: str, format: str, expected: tuple[str, str, dict[str, Any]], caplog: Any
) -> None:
    with caplog.at_level(logging.INFO, logger="pedrollm.toolcalls"):
        r = same_streamed(text, format)
    assert calls(r) == [expected]
    assert r.invalid == [] and r.unclosed == 1
    assert "without its closing marker" in caplog.text


def test_mid_stream_a_call_without_its_closing_marker_is_held_back() -> None:
    p = StreamingParser("hermes")
    assert p.feed('<tool_call>\n{"name": "f", "arguments": {"a": 1}}') == []
    deltas = p.flush()
    assert [(d.tool_call.name, d.tool_call.arguments) for d in deltas if d.tool_call] == [
        ("f", '{"a": 1}')
    ]


@pytest.mark.parametrize(
    ("text", "format"),
    [
        ('<tool_call>\n{"name": "f", "arguments": {"a": 1}', "hermes"),
        ('<tool_call>\n{"name": "f", "arguments": {"a": 1}}\nand then', "hermes"),
        ("<tool_call>\n<function=f>\n<parameter=a>\n1\n</parameter>\n", "qwen3_coder"),
        ("<tool_call>f\n<arg_key>a</arg_key>\n<arg_value>1</arg_value>", "glm45"),
        ("<|python_start|>[f(a=1), g(", "pythonic"),
        ('<|tool_calls_section_begin|><|tool_call_begin|>functions.f:0'
         '<|tool_call_argument_begin|>{"a": 1', "kimi_k2"),
    ],
)  # fmt: skip
def test_a_cut_off_body_at_the_end_of_a_reply_is_still_refused(text: str, format: str) -> None:
    r = same_streamed(text, format)
    assert r.calls == [] and len(r.invalid) == 1 and r.unclosed == 0


# -- 11. Command A's text wrapper ------------------------------------------------------


def test_command_a_text_wrapper_before_the_action() -> None:
    text = (
        "<|START_THINKING|>I will look up the weather.<|END_THINKING|>"
        "<|START_TEXT|>Let me check the weather.<|END_TEXT|>"
        '<|START_ACTION|>[{"tool_call_id": "0", "tool_name": "get_weather", '
        '"parameters": {"location": "Toronto"}}]<|END_ACTION|>'
    )
    r = same_streamed(text, "command_r7b")
    assert r.reasoning == "I will look up the weather."
    assert r.content == "Let me check the weather."
    assert calls(r) == [("0", "get_weather", {"location": "Toronto"})]
    plain = same_streamed("<|START_TEXT|>It is sunny.<|END_TEXT|>", "command_a")
    assert plain == ParseResult(content="It is sunny.")


# -- 12. Where llama.cpp and vLLM disagree --------------------------------------------


def test_mistral_v11_call_whose_args_token_a_server_dropped() -> None:
    text = 'Sure.[TOOL_CALLS]get_weather{"city": "[Paris]"}[TOOL_CALLS]get_time{}'
    r = same_streamed(text, "mistral_v11")
    assert r.content == "Sure."
    assert calls(r) == [
        ("call_0", "get_weather", {"city": "[Paris]"}),
        ("call_1", "get_time", {}),
    ]


def test_seed_oss_value_loses_one_layout_newline_at_each_end() -> None:
    text = (
        "<seed:tool_call>\n<function=write>\n<parameter=text>\n\nline\n\n</parameter>\n"
        "</function>\n</seed:tool_call>"
    )
    assert calls(same_streamed(text, "seed_oss")) == [("call_0", "write", {"text": "\nline\n"})]
