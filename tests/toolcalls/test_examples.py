"""Literal replies from the formats' public documentation, and what a user gets from them."""

from __future__ import annotations

from typing import Any

import pytest

from pedrollm.toolcalls import ParseResult, StreamingParser, get_format, parse
from pedrollm.types import ToolCall, ToolDefinition


def calls(result: ParseResult) -> list[tuple[str, str, dict[str, Any]]]:
    return [(c.id, c.name, c.args) for c in result.calls]


def test_hermes_qwen_parallel_calls_from_the_qwen_docs() -> None:
    text = (
        "<tool_call>\n"
        '{"name": "get_current_temperature", "arguments": {"location": "San Francisco, CA, USA"}}\n'
        "</tool_call>\n"
        "<tool_call>\n"
        '{"name": "get_temperature_date", "arguments": '
        '{"location": "San Francisco, CA, USA", "date": "2024-10-01"}}\n'
        "</tool_call>"
    )
    r = parse(text, "hermes")
    assert calls(r) == [
        ("call_0", "get_current_temperature", {"location": "San Francisco, CA, USA"}),
        (
            "call_1",
            "get_temperature_date",
            {"location": "San Francisco, CA, USA", "date": "2024-10-01"},
        ),
    ]
    assert r.content == ""
    assert r.invalid == []


def test_qwen3_thinking_goes_to_reasoning_and_text_around_calls_is_content() -> None:
    text = (
        "<think>\nThe user wants the weather.\n</think>\n\nLet me check.\n"
        '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>\n'
        "Done."
    )
    r = parse(text, "qwen3")
    assert r.reasoning == "The user wants the weather."
    assert r.content == "Let me check.\n\nDone."
    assert calls(r) == [("call_0", "get_weather", {"city": "Paris"})]


def test_think_block_opened_by_the_prompt() -> None:
    text = (
        'Thinking about it.\n</think>\n\n<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    )
    r = parse(text, "hermes", think_open=True)
    assert r.reasoning == "Thinking about it."
    assert r.content == ""
    assert [c.name for c in r.calls] == ["f"]
    assert parse(text, "hermes", think_open=None) == r
    # Without being told, the closing tag is just text.
    assert parse(text, "hermes").reasoning is None


def test_python_style_dict_in_hermes_is_accepted() -> None:
    r = parse("<tool_call>\n{'name': 'f', 'arguments': {'x': True, 'y': None}}\n</tool_call>")
    assert calls(r) == [("call_0", "f", {"x": True, "y": None})]


def test_arguments_given_as_a_json_string_are_decoded() -> None:
    r = parse('<tool_call>{"name": "f", "arguments": "{\\"a\\": 1}"}</tool_call>')
    assert calls(r) == [("call_0", "f", {"a": 1})]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('<tool_call>\n{"name": "f", "arguments": {"a": 1', "cut off"),
        ('<tool_call>\n{"name": "f", "arguments": [1]}\n</tool_call>', "not an object"),
        ('<tool_call>\n{"arguments": {}}\n</tool_call>', "no name"),
        ("<tool_call>\n{not json}\n</tool_call>", "not JSON"),
    ],
)
def test_broken_calls_are_refused_with_raw_text_and_reason(text: str, reason: str) -> None:
    r = parse("Hi " + text, "hermes")
    assert r.calls == []
    assert r.content == "Hi"
    assert len(r.invalid) == 1
    assert reason in r.invalid[0].error
    assert r.invalid[0].raw.strip() in text


QWEN3_CODER = """I'll check the weather.
<tool_call>
<function=get_weather>
<parameter=location>
San Francisco
</parameter>
<parameter=days>
3
</parameter>
<parameter=options>
{"unit": "celsius", "hourly": false}
</parameter>
</function>
</tool_call>"""

WEATHER = ToolDefinition(
    name="get_weather",
    parameters={
        "type": "object",
        "properties": {
            "location": {"type": "string"},
            "days": {"type": "integer"},
            "options": {"type": "object"},
        },
    },
)


def test_qwen3_coder_values_are_typed_by_the_tool_schema() -> None:
    r = parse(QWEN3_CODER, "qwen3_coder", tools=[WEATHER])
    assert r.content == "I'll check the weather."
    assert calls(r) == [
        (
            "call_0",
            "get_weather",
            {
                "location": "San Francisco",
                "days": 3,
                "options": {"unit": "celsius", "hourly": False},
            },
        )
    ]


def test_qwen3_coder_values_stay_strings_without_a_schema() -> None:
    r = parse(QWEN3_CODER, "qwen3_coder")
    assert r.calls[0].args["days"] == "3"


def test_a_value_that_does_not_fit_its_schema_is_kept_as_written() -> None:
    text = (
        "<tool_call>\n<function=get_weather>\n<parameter=days>\nthree\n</parameter>\n"
        "</function>\n</tool_call>"
    )
    assert parse(text, "qwen3_coder", tools=[WEATHER]).calls[0].args == {"days": "three"}


def test_llama3_json_from_the_meta_docs() -> None:
    text = (
        '{"name": "get_current_conditions", "parameters": '
        '{"location": "San Francisco, CA", "unit": "Fahrenheit"}}'
    )
    r = parse(text, "llama3_json")
    assert calls(r) == [
        (
            "call_0",
            "get_current_conditions",
            {"location": "San Francisco, CA", "unit": "Fahrenheit"},
        )
    ]


def test_llama3_json_several_calls_split_by_semicolons_and_python_tag() -> None:
    text = '<|python_tag|>{"name": "a", "arguments": {"x": 1}}; {"name": "b", "parameters": {}}'
    assert calls(parse(text, "llama3_json")) == [("call_0", "a", {"x": 1}), ("call_1", "b", {})]


def test_llama3_json_python_style_dict() -> None:
    text = "{'name': 'get_weather', 'parameters': {'city': 'Paris', 'metric': True}}"
    assert calls(parse(text, "llama3_json")) == [
        ("call_0", "get_weather", {"city": "Paris", "metric": True})
    ]


def test_llama3_json_plain_json_without_call_shape_stays_content() -> None:
    text = 'Here is the user: {"name": "Bob", "age": 3}'
    r = parse(text, "llama3_json")
    assert r.calls == [] and r.invalid == []
    assert r.content == text


def test_llama31_builtin_tool_call_from_the_meta_docs() -> None:
    text = (
        '<|python_tag|>brave_search.call(query="current weather in Menlo Park, California")'
        "<|eom_id|>"
    )
    r = parse(text, "llama3_builtin")
    assert calls(r) == [
        ("call_0", "brave_search", {"query": "current weather in Menlo Park, California"})
    ]
    assert r.content == ""


def test_llama31_code_interpreter_becomes_a_python_call() -> None:
    r = parse("<|python_tag|>print(2 ** 10)<|eom_id|>", "llama3_builtin")
    assert calls(r) == [("call_0", "python", {"code": "print(2 ** 10)"})]


def test_pythonic_from_the_llama32_docs() -> None:
    r = parse("[get_user_info(user_id=7890, special='black')]", "pythonic")
    assert calls(r) == [("call_0", "get_user_info", {"user_id": 7890, "special": "black"})]


def test_pythonic_inside_llama4_and_lfm2_markers() -> None:
    l4 = '<|python_start|>[get_weather(location="Tokyo"), get_time(tz="JST")]<|python_end|>'
    lfm = '<|tool_call_start|>[get_weather(location="Tokyo")]<|tool_call_end|>Checking.'
    assert [c.name for c in parse(l4, "pythonic").calls] == ["get_weather", "get_time"]
    r = parse(lfm, "pythonic")
    assert calls(r) == [("call_0", "get_weather", {"location": "Tokyo"})]
    assert r.content == "Checking."


def test_pythonic_brackets_that_are_prose_stay_content() -> None:
    text = "See [f(x) for x in xs] and [link](http://x)."
    assert parse(text, "pythonic") == ParseResult(content=text)


def test_mistral_before_v11_keeps_its_ids() -> None:
    text = (
        '[TOOL_CALLS] [{"name": "get_current_weather", "arguments": '
        '{"location": "Paris, France", "format": "celsius"}, "id": "a1b2c3d4e"}]'
    )
    r = parse(text, "mistral")
    assert calls(r) == [
        ("a1b2c3d4e", "get_current_weather", {"location": "Paris, France", "format": "celsius"})
    ]


def test_mistral_v11_with_and_without_call_ids_and_magistral_thinking() -> None:
    text = (
        "[THINK]Need weather.[/THINK]"
        '[TOOL_CALLS]get_current_weather[ARGS]{"location": "Paris, France"}'
        '[TOOL_CALLS]get_time[CALL_ID]Xy12Ab34c[ARGS]{"tz": "CET"}'
    )
    r = parse(text, "mistral_v11")
    assert r.reasoning == "Need weather."
    assert calls(r) == [
        ("call_0", "get_current_weather", {"location": "Paris, France"}),
        ("Xy12Ab34c", "get_time", {"tz": "CET"}),
    ]


def test_deepseek_r1_fenced_json_and_forced_open_thinking() -> None:
    text = (
        "Let me think.\n</think>\n\n"
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"location": "Tokyo"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
    )
    r = parse(text, "deepseek_r1", think_open=True)
    assert r.reasoning == "Let me think."
    assert calls(r) == [("call_0", "get_weather", {"location": "Tokyo"})]


def test_deepseek_v31_layout() -> None:
    text = (
        "<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>"
        '{"location": "Tokyo"}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
    )
    assert calls(parse(text, "deepseek_v3_1")) == [("call_0", "get_weather", {"location": "Tokyo"})]


# The other spellings of the section's begin token that llama.cpp's DeepSeek parsers
# accept (common/chat-parser.cpp, common_chat_parse_deepseek_r1 / _v3_1).
DEEPSEEK_BEGIN_SPELLINGS = [
    "<｜tool_calls_begin｜>",
    "<｜tool calls begin｜>",
    "<｜tool\\_calls\\_begin｜>",
    "<｜tool▁calls｜>",
]


def stream_all(text: str, format: str, size: int = 3, **kw: Any) -> ParseResult:
    """Stream ``text`` in chunks of ``size`` characters and return the finished result."""
    p = StreamingParser(format, **kw)
    for i in range(0, len(text), size):
        p.feed(text[i : i + size])
    return p.finish()


@pytest.mark.parametrize("begin", DEEPSEEK_BEGIN_SPELLINGS)
def test_deepseek_r1_section_begin_spelled_other_ways(begin: str) -> None:
    text = (
        "I'll check.\n"
        f"{begin}<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_weather\n"
        '```json\n{"location": "Tokyo"}\n```<｜tool▁call▁end｜>\n'
        "<｜tool▁call▁begin｜>function<｜tool▁sep｜>get_time\n"
        '```json\n{"tz": "JST"}\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
    )
    r = parse(text, "deepseek_r1")
    assert r.content == "I'll check."
    assert calls(r) == [
        ("call_0", "get_weather", {"location": "Tokyo"}),
        ("call_1", "get_time", {"tz": "JST"}),
    ]
    assert r.invalid == [] and r.reasoning is None
    assert stream_all(text, "deepseek_r1") == r


@pytest.mark.parametrize("begin", DEEPSEEK_BEGIN_SPELLINGS)
def test_deepseek_v31_section_begin_spelled_other_ways(begin: str) -> None:
    text = (
        "Thinking done.</think>"
        f"{begin}<｜tool▁call▁begin｜>get_weather<｜tool▁sep｜>"
        '{"location": "Tokyo", "days": 2}<｜tool▁call▁end｜><｜tool▁calls▁end｜>'
    )
    r = parse(text, "deepseek_v3_1", think_open=True)
    assert r.reasoning == "Thinking done."
    assert r.content == ""
    assert calls(r) == [("call_0", "get_weather", {"location": "Tokyo", "days": 2})]
    assert stream_all(text, "deepseek_v3_1", think_open=True) == r


def test_functionary_v31_and_v32() -> None:
    v31 = 'Sure.<function=get_weather>{"location": "San Francisco"}</function>'
    r = parse(v31, "functionary_v3_1")
    assert r.content == "Sure."
    assert calls(r) == [("call_0", "get_weather", {"location": "San Francisco"})]
    v32 = '>>>all\nLet me look.>>>get_weather\n{"location": "San Francisco"}'
    r = parse(v32, "functionary_v3_2")
    assert r.content == "Let me look."
    assert calls(r) == [("call_0", "get_weather", {"location": "San Francisco"})]


def test_functionary_v32_reply_after_the_prompts_own_marker() -> None:
    # The template's generation prompt ends with ">>>": the reply starts with the
    # recipient, "all" for text or a function name for a first call.
    first = 'get_weather\n{"location": "San Francisco"}>>>get_time\n{"tz": "PST"}'
    r = parse(first, "functionary_v3_2")
    assert r.content == ""
    assert calls(r) == [
        ("call_0", "get_weather", {"location": "San Francisco"}),
        ("call_1", "get_time", {"tz": "PST"}),
    ]
    assert stream_all(first, "functionary_v3_2", size=1) == r

    text = 'all\nLet me look.>>>get_weather\n{"location": "San Francisco"}'
    r = parse(text, "functionary_v3_2")
    assert r.content == "Let me look."
    assert calls(r) == [("call_0", "get_weather", {"location": "San Francisco"})]
    assert stream_all(text, "functionary_v3_2", size=2) == r

    assert parse("all\nIt is sunny in Paris.", "functionary_v3_2") == ParseResult(
        content="It is sunny in Paris."
    )


def test_functionary_v32_start_markers_count_only_at_the_start() -> None:
    # Without "{" after the name's line it is text; later lines are never recipients.
    for text in ["Paris\nis sunny.", "Sure:\nall\nget_weather\n{}", " all\nhi"]:
        assert parse(text, "functionary_v3_2") == ParseResult(content=text.strip())
    # A first call cut off before its JSON closes is refused, not guessed.
    r = parse('get_weather\n{"location": "San', "functionary_v3_2")
    assert r.calls == [] and r.content == ""
    assert [(i.name, i.raw) for i in r.invalid] == [
        ("get_weather", 'get_weather\n{"location": "San')
    ]


def test_firefunction_functools() -> None:
    text = ' functools[{"name": "get_stock_price", "arguments": {"symbol": "AAPL"}}]'
    assert calls(parse(text, "firefunction")) == [("call_0", "get_stock_price", {"symbol": "AAPL"})]
    assert parse("import functools", "firefunction").content == "import functools"


def test_granite_tool_call_list() -> None:
    text = '<|tool_call|>[{"arguments": {"location": "Boston"}, "name": "get_current_weather"}]'
    assert calls(parse(text, "granite")) == [
        ("call_0", "get_current_weather", {"location": "Boston"})
    ]


def test_granite_32_thinking_in_prose_goes_to_reasoning() -> None:
    # The Granite 3.2 template, with thinking on, asks for the thoughts after
    # "Here is my thought process:" and the response after "Here is my response:".
    text = (
        "Here is my thought process:\n"
        "The user asks for 2 + 2. That is 4.\n\n"
        "Here is my response:\n"
        "2 + 2 = 4."
    )
    r = parse(text, "granite")
    assert r.reasoning == "The user asks for 2 + 2. That is 4."
    assert r.content == "2 + 2 = 4."
    assert r.calls == [] and r.invalid == []
    assert stream_all(text, "granite", size=4) == r

    p = StreamingParser("granite")
    got: list[tuple[str, str]] = []
    for chunk in ["Here is my th", "ought process: Add", " them. Here is my re", "sponse: 4."]:
        got += [(d.reasoning, d.content) for d in p.feed(chunk)]
    got += [(d.reasoning, d.content) for d in p.flush()]
    assert "".join(rs for rs, _ in got) == "Add them."
    assert "".join(c for _, c in got) == "4."


def test_granite_32_prose_thinking_then_a_tool_call() -> None:
    text = (
        "Here's my thought process:\nI need the weather in Boston.\n"
        "Here's my response:\n"
        '<|tool_call|>[{"arguments": {"location": "Boston"}, "name": "get_current_weather"}]'
    )
    r = parse(text, "granite")
    assert r.reasoning == "I need the weather in Boston."
    assert r.content == ""
    assert calls(r) == [("call_0", "get_current_weather", {"location": "Boston"})]
    assert stream_all(text, "granite", size=5) == r


def test_granite_32_prose_markers_elsewhere_are_content() -> None:
    mid = "Sure. Here is my thought process: none. Here is my response: fine."
    assert parse(mid, "granite") == ParseResult(content=mid)
    assert parse("Here is my response: 4.", "granite").reasoning is None
    # A thought cut off before the response runs to the end, like an unclosed <think>.
    cut = parse('Here is my thought process:\nCall <|tool_call|>[{"name": "f"', "granite")
    assert cut == ParseResult(reasoning='Call <|tool_call|>[{"name": "f"')


def test_command_r7b_action_with_thinking_and_response_tags() -> None:
    text = (
        "<|START_THINKING|>I will look up the weather.<|END_THINKING|>"
        '<|START_ACTION|>[\n    {"tool_call_id": "0", "tool_name": "get_weather", '
        '"parameters": {"location": "Toronto"}}\n]<|END_ACTION|>'
    )
    r = parse(text, "command_r7b")
    assert r.reasoning == "I will look up the weather."
    assert calls(r) == [("0", "get_weather", {"location": "Toronto"})]
    answer = parse("<|START_RESPONSE|>It is sunny.<|END_RESPONSE|>", "command_r7b")
    assert answer.content == "It is sunny."


def test_glm45_arg_key_value_pairs() -> None:
    text = (
        "<tool_call>get_weather\n<arg_key>city</arg_key>\n<arg_value>Beijing</arg_value>\n"
        "<arg_key>days</arg_key>\n<arg_value>2</arg_value>\n</tool_call>"
    )
    tool = ToolDefinition(
        name="get_weather",
        parameters={"type": "object", "properties": {"days": {"type": "integer"}}},
    )
    assert calls(parse(text, "glm45", tools=[tool])) == [
        ("call_0", "get_weather", {"city": "Beijing", "days": 2})
    ]


def test_kimi_k2_keeps_its_ids() -> None:
    text = (
        "<|tool_calls_section_begin|><|tool_call_begin|>functions.get_weather:0"
        '<|tool_call_argument_begin|>{"city": "Beijing"}<|tool_call_end|>'
        "<|tool_call_begin|>functions.get_time:1<|tool_call_argument_begin|>{}<|tool_call_end|>"
        "<|tool_calls_section_end|>"
    )
    assert calls(parse(text, "kimi_k2")) == [
        ("functions.get_weather:0", "get_weather", {"city": "Beijing"}),
        ("functions.get_time:1", "get_time", {}),
    ]


def test_minimax_m2_invoke_blocks() -> None:
    text = (
        "<think>Search first.</think>\n<minimax:tool_call>\n"
        '<invoke name="search_web">\n'
        '<parameter name="query_tag">["technology", "events"]</parameter>\n'
        '<parameter name="query_list">["\\"OpenAI\\" \\"latest\\" \\"release\\""]</parameter>\n'
        "</invoke>\n</minimax:tool_call>"
    )
    tool = ToolDefinition(
        name="search_web",
        parameters={
            "type": "object",
            "properties": {"query_tag": {"type": "array"}, "query_list": {"type": "array"}},
        },
    )
    r = parse(text, "minimax_m2", tools=[tool])
    assert r.reasoning == "Search first."
    assert calls(r) == [
        (
            "call_0",
            "search_web",
            {"query_tag": ["technology", "events"], "query_list": ['"OpenAI" "latest" "release"']},
        )
    ]


def test_gpt_oss_harmony_from_the_openai_docs() -> None:
    text = (
        "<|channel|>analysis<|message|>Need to use function get_weather.<|end|>"
        "<|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json"
        '<|message|>{"location":"San Francisco"}<|call|>'
    )
    r = parse(text, "gpt_oss")
    assert r.reasoning == "Need to use function get_weather."
    assert calls(r) == [("call_0", "get_weather", {"location": "San Francisco"})]
    assert r.content == ""
    final = parse("<|channel|>analysis<|message|>Easy.<|end|><|start|>assistant<|channel|>final"
                  "<|message|>It is 4.<|return|>", "gpt_oss")  # fmt: skip
    assert (final.reasoning, final.content) == ("Easy.", "It is 4.")


def test_nemotron_jamba_hunyuan_lists() -> None:
    nem = '<TOOLCALL>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</TOOLCALL>'
    jam = '<tool_calls>[{"name": "get_weather", "arguments": {"city": "Paris"}}]</tool_calls>'
    hun = "<think>hm</think>\n<answer>\n" + jam + "\n</answer>"
    expected = [("call_0", "get_weather", {"city": "Paris"})]
    assert calls(parse(nem, "nemotron")) == expected
    assert calls(parse(jam, "jamba")) == expected
    r = parse(hun, "hunyuan")
    assert calls(r) == expected and r.content == "" and r.reasoning == "hm"


def test_seed_oss_with_its_own_think_tags() -> None:
    text = (
        "<seed:think>Weather needed.</seed:think>"
        "<seed:tool_call>\n<function=get_weather>\n<parameter=location>Beijing</parameter>\n"
        "</function>\n</seed:tool_call>"
    )
    r = parse(text, "seed_oss")
    assert r.reasoning == "Weather needed."
    assert calls(r) == [("call_0", "get_weather", {"location": "Beijing"})]


def test_generic_json_bare_fenced_and_response() -> None:
    bare = '{"tool_calls": [{"name": "special_function", "arguments": {"arg1": 1}}]}'
    fenced = 'Calling it:\n```json\n{"tool_call": {"name": "f", "arguments": {"a": "}"}}}\n```'
    assert calls(parse(bare, "generic")) == [("call_0", "special_function", {"arg1": 1})]
    r = parse(fenced, "generic")
    assert calls(r) == [("call_0", "f", {"a": "}"})] and r.content == "Calling it:"
    assert parse('{"response": "Hello, world!"}', "generic").content == "Hello, world!"


def test_generic_fenced_json_that_is_not_a_call_stays_content() -> None:
    text = 'Here you go:\n```json\n{"city": "Paris", "population": 2102650}\n```'
    assert parse(text, "generic") == ParseResult(content=text)


def test_stream_holds_back_a_partial_marker_and_never_takes_text_back() -> None:
    p = StreamingParser("hermes")
    assert [d.content for d in p.feed("Hello <tool_ca")] == ["Hello"]
    assert p.feed("ll>\n") == []
    deltas = p.feed('{"name": "f", "arguments": {"a": 1}}\n</tool_call>')
    assert [
        (d.tool_call.index, d.tool_call.name, d.tool_call.arguments) for d in deltas if d.tool_call
    ] == [(0, "f", '{"a": 1}')]
    assert p.finish().calls == [ToolCall(id="call_0", name="f", args={"a": 1})]


def test_stream_releases_a_false_alarm_as_content() -> None:
    p = StreamingParser("hermes")
    assert [d.content for d in p.feed("a <tool")] == ["a"]
    assert [d.content for d in p.feed("box> b")] == [" <toolbox> b"]
    assert p.finish().content == "a <toolbox> b"


def test_stream_reasoning_deltas_come_before_the_answer() -> None:
    p = StreamingParser("hermes")
    got = []
    for chunk in ["<thi", "nk>Plan", " it.</th", "ink>Answer."]:
        got += [(d.reasoning, d.content) for d in p.feed(chunk)]
    got += [(d.reasoning, d.content) for d in p.flush()]
    assert "".join(r for r, _ in got) == "Plan it."
    assert "".join(c for _, c in got) == "Answer."


def test_format_instances_render_what_their_module_parses() -> None:
    fmt = get_format("kimi_k2")
    text = fmt.render([ToolCall(id="", name="f", args={"a": [1, {"b": None}]})], "Hi")
    assert calls(fmt.parse(text)) == [("functions.f:0", "f", {"a": [1, {"b": None}]})]
