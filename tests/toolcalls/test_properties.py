"""The five properties every tool-call format must have, checked with Hypothesis.

1. parse(render(calls, content)) gives back the calls and the content;
2. any split of a text into chunks streams to the same result as one parse;
3. text without the format's markers comes back as content, with no calls;
4. arbitrary text, and arbitrary bytes decoded as text, never raise;
5. every strict prefix of a rendered reply yields no wrong call.

Formats that servers and models also write in other forms (strategies.OTHER_FORMS:
DeepSeek's begin-token spellings and R1's fence on the JSON's line, Functionary v3.2
after the prompt's ``>>>``, Granite 3.2's thinking in prose and 3.1's plain
``<tool_call>``, gpt-oss's recipient in the role header, Qwen3-Coder without
``<tool_call>``, calls inside an open think block (Qwen3.5, Kimi K2), replies cut
before their last closing marker, Command A's text wrapper, Mistral v11 without
``[ARGS]``) have 1, 2 and 5 checked on those forms too, and formats with start-only
markers have 2 checked on text that opens with them.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pedrollm.toolcalls import ParseResult, StreamingParser, format_names, get_format
from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.types import StreamDelta, ToolCall, ToolDefinition

from .strategies import (
    OTHER_FORMS,
    Form,
    calls_for,
    consistent_types,
    text_from_the_start_markers,
    text_without_markers,
    tools_for,
    tricky_text,
)

FORMATS = format_names()

# The default profile keeps the whole run near a minute across ~25 formats; the
# fuzz profile (--hypothesis-profile=fuzz) keeps its own example count.
PER_FORMAT = (
    settings(max_examples=15) if settings.get_current_profile_name() == "default" else settings()
)


@st.composite
def rendered(
    draw: st.DrawFn, fmt: ToolCallFormat
) -> tuple[str, str, list[ToolCall], list[ToolDefinition]]:
    calls = draw(calls_for(fmt))
    assume(consistent_types(calls))
    content = draw(text_without_markers(fmt))
    tools = tools_for(calls) if fmt.untyped_values else None
    return fmt.render(calls, content), content, calls, tools or []


def expected_calls(fmt: ToolCallFormat, calls: list[ToolCall]) -> list[ToolCall]:
    return [ToolCall(id=fmt.id_for(i, c), name=c.name, args=c.args) for i, c in enumerate(calls)]


def stream(
    fmt: ToolCallFormat, text: str, cuts: list[int], tools: list[ToolDefinition] | None = None,
    think_open: bool | None = False,
) -> tuple[ParseResult, list[StreamDelta]]:
    parser = StreamingParser(fmt, tools, think_open=think_open)
    deltas: list[StreamDelta] = []
    prev = 0
    for cut in sorted(set(cuts)) + [len(text)]:
        deltas += parser.feed(text[prev:cut])
        prev = cut
    deltas += parser.flush()
    return parser.finish(), deltas


def assert_deltas_add_up(result: ParseResult, deltas: list[StreamDelta]) -> None:
    assert "".join(d.content for d in deltas) == result.content
    assert "".join(d.reasoning for d in deltas) == (result.reasoning or "")
    streamed = [
        (d.tool_call.index, d.tool_call.id, d.tool_call.name) for d in deltas if d.tool_call
    ]
    assert streamed == [(i, c.id, c.name) for i, c in enumerate(result.calls)]


@pytest.mark.parametrize("name", FORMATS)
@PER_FORMAT
@given(data=st.data())
def test_parse_of_render_gives_back_calls_and_content(name: str, data: st.DataObject) -> None:
    fmt = get_format(name)
    text, content, calls, tools = data.draw(rendered(fmt))
    result = fmt.parse(text, tools)
    assert result.calls == expected_calls(fmt, calls)
    assert result.content == content.strip()
    assert result.invalid == []
    assert result.reasoning is None


@pytest.mark.parametrize("name", FORMATS)
@PER_FORMAT
@given(data=st.data())
def test_any_split_of_a_rendered_reply_streams_to_the_parse_result(
    name: str, data: st.DataObject
) -> None:
    fmt = get_format(name)
    text, _, _, tools = data.draw(rendered(fmt))
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    result, deltas = stream(fmt, text, cuts, tools)
    assert result == fmt.parse(text, tools)
    assert_deltas_add_up(result, deltas)


@pytest.mark.parametrize("name", FORMATS)
@PER_FORMAT
@given(text=tricky_text, data=st.data())
def test_any_split_of_any_text_streams_to_the_parse_result(
    name: str, text: str, data: st.DataObject
) -> None:
    fmt = get_format(name)
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    think_open = data.draw(st.sampled_from([False, True, None]))
    result, deltas = stream(fmt, text, cuts, think_open=think_open)
    assert result == fmt.parse(text, think_open=think_open)
    assert_deltas_add_up(result, deltas)


@pytest.mark.parametrize("name", FORMATS)
@PER_FORMAT
@given(data=st.data())
def test_text_without_markers_is_all_content(name: str, data: st.DataObject) -> None:
    fmt = get_format(name)
    text = data.draw(text_without_markers(fmt))
    assert fmt.parse(text) == ParseResult(content=text.strip())


@pytest.mark.parametrize("name", FORMATS)
@PER_FORMAT
@given(text=tricky_text, raw=st.binary(max_size=200))
def test_arbitrary_text_and_bytes_never_raise(name: str, text: str, raw: bytes) -> None:
    fmt = get_format(name)
    for t in (text, raw.decode("utf-8", "replace"), raw.decode("latin-1")):
        result = fmt.parse(t)
        assert isinstance(result, ParseResult)
        # Whatever was read can be sent on as JSON: no NaN, no Infinity.
        for call in result.calls:
            json.dumps(call.args, allow_nan=False)


@pytest.mark.parametrize("name", FORMATS)
@PER_FORMAT
@given(data=st.data())
def test_no_strict_prefix_of_a_reply_yields_a_wrong_call(name: str, data: st.DataObject) -> None:
    fmt = get_format(name)
    text, _, calls, tools = data.draw(rendered(fmt))
    full = expected_calls(fmt, calls)
    cuts = data.draw(st.lists(st.integers(0, len(text) - 1), min_size=1, max_size=8))
    for cut in cuts:
        got = fmt.parse(text[:cut], tools).calls
        assert got == full[: len(got)], f"prefix {text[:cut]!r}"


OTHER_FORM_CASES = [(f, name) for f, forms in sorted(OTHER_FORMS.items()) for name in forms]


@st.composite
def other_form(
    draw: st.DrawFn, fmt: ToolCallFormat, form: str
) -> tuple[Form, list[ToolCall], list[ToolDefinition]]:
    text, content, calls, tools = draw(rendered(fmt))
    return draw(OTHER_FORMS[fmt.name][form](text, content, calls)), calls, tools


@pytest.mark.model_forms
@pytest.mark.parametrize(("name", "form"), OTHER_FORM_CASES)
@PER_FORMAT
@given(data=st.data())
def test_parse_of_another_form_gives_back_calls_content_and_reasoning(
    name: str, form: str, data: st.DataObject
) -> None:
    fmt = get_format(name)
    other, calls, tools = data.draw(other_form(fmt, form))
    result = fmt.parse(other.text, tools, think_open=other.think_open)
    assert result.calls == expected_calls(fmt, calls)
    assert result.content == other.content.strip()
    assert result.invalid == []
    assert result.reasoning == other.reasoning


@pytest.mark.model_forms
@pytest.mark.parametrize(("name", "form"), OTHER_FORM_CASES)
@PER_FORMAT
@given(data=st.data())
def test_any_split_of_another_form_streams_to_the_parse_result(
    name: str, form: str, data: st.DataObject
) -> None:
    fmt = get_format(name)
    other, _, tools = data.draw(other_form(fmt, form))
    cuts = data.draw(st.lists(st.integers(0, len(other.text)), max_size=12))
    result, deltas = stream(fmt, other.text, cuts, tools, think_open=other.think_open)
    assert result == fmt.parse(other.text, tools, think_open=other.think_open)
    assert_deltas_add_up(result, deltas)


@pytest.mark.model_forms
@pytest.mark.parametrize(("name", "form"), OTHER_FORM_CASES)
@PER_FORMAT
@given(data=st.data())
def test_no_strict_prefix_of_another_form_yields_a_wrong_call(
    name: str, form: str, data: st.DataObject
) -> None:
    fmt = get_format(name)
    other, calls, tools = data.draw(other_form(fmt, form))
    full = expected_calls(fmt, calls)
    cuts = data.draw(st.lists(st.integers(0, len(other.text) - 1), min_size=1, max_size=8))
    for cut in cuts:
        got = fmt.parse(other.text[:cut], tools, think_open=other.think_open).calls
        assert got == full[: len(got)], f"prefix {other.text[:cut]!r}"


START_MARKER_FORMATS = [
    n for n in FORMATS if get_format(n).start_openers or get_format(n).start_reasoning
]


@pytest.mark.model_forms
@pytest.mark.parametrize("name", START_MARKER_FORMATS)
@PER_FORMAT
@given(data=st.data())
def test_any_split_of_text_opening_with_start_markers_streams_to_the_parse_result(
    name: str, data: st.DataObject
) -> None:
    fmt = get_format(name)
    text = data.draw(text_from_the_start_markers(fmt))
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    think_open = data.draw(st.sampled_from([False, True, None]))
    result, deltas = stream(fmt, text, cuts, think_open=think_open)
    assert result == fmt.parse(text, think_open=think_open)
    assert_deltas_add_up(result, deltas)


# Qwen3-Coder values are bare text: a value may hold the format's own closing tags
# (code, XML). It is read whole unless it holds what the template writes after a
# value: ``</parameter>`` starting a line, then ``<parameter=`` or ``</function>``.
_AMBIGUOUS = re.compile(r"\n</parameter>\s*(<parameter=|</function>)")
tag_rich_values = (
    st.lists(
        st.sampled_from(
            ["</parameter>", "</function>", "<parameter=x>", "<function=f>", "\n", " ", "a", "<"]
        ),
        max_size=8,
    )
    .map("".join)
    .filter(lambda v: _AMBIGUOUS.search("\n" + v) is None)
)


@pytest.mark.model_forms
@PER_FORMAT
@given(
    values=st.dictionaries(st.sampled_from(["path", "content", "x"]), tag_rich_values, min_size=1),
    bare=st.booleans(),
    data=st.data(),
)
def test_qwen3_coder_values_holding_its_closing_tags_round_trip(
    values: dict[str, str], bare: bool, data: st.DataObject
) -> None:
    fmt = get_format("qwen3_coder")
    text = fmt.render([ToolCall(id="", name="write_file", args=values)], "Writing it.")
    if bare:
        text = text.replace("<tool_call>\n", "").replace("\n</tool_call>", "")
    result = fmt.parse(text)
    assert result.calls == [ToolCall(id="call_0", name="write_file", args=values)]
    assert (result.content, result.invalid) == ("Writing it.", [])
    cuts = data.draw(st.lists(st.integers(0, len(text)), max_size=12))
    assert stream(fmt, text, cuts)[0] == result
    for cut in data.draw(st.lists(st.integers(0, len(text) - 1), min_size=1, max_size=6)):
        got = fmt.parse(text[:cut]).calls
        assert got in ([], result.calls), f"prefix {text[:cut]!r}"
