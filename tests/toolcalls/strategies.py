"""Hypothesis strategies for tool-call texts: names, nested arguments, marker-rich text."""

from __future__ import annotations

import keyword
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from hypothesis import assume
from hypothesis import strategies as st

from pedrollm.toolcalls import (
    command_r7b,
    deepseek_r1,
    functionary_v3_2,
    get_format,
    gpt_oss,
    granite,
    hermes,
    kimi_k2,
    mistral,
    nemotron,
)
from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.registry import FORMATS
from pedrollm.types import ToolCall, ToolDefinition


def _all_markers() -> list[str]:
    out: set[str] = set()
    for fmt in FORMATS.values():
        out.update(fmt.markers)
        for o, c in fmt.reasoning:
            out.update((o, c))
        for pattern, closes in fmt.start_reasoning:
            out.update(t for t in pattern if isinstance(t, str))
            out.update(closes)
        for opener in (*fmt.openers, *fmt.start_openers):
            out.update(t for t in opener.pattern if isinstance(t, str))
    return sorted(out)


MARKERS = _all_markers()
SPECIALS = [
    "{", "}", "[", "]", "(", ")", '"', "'", "\\", "\\n", "\\u00e9", "\n", "\r\n", " ", "\t",
    ":", ",", ";", "=", "<", ">", "/", "|", "é", "中文", "😀", "｜", "▁", "\u2028", "\x00",
    "true", "null", "1e999", "NaN", "-Infinity", "inf", "```", "```json", '{"name": ',
    '"arguments"', "name", "call", "<tool_ca",
    "</", "<|", "|>", "[TOOL_", ">>>", "functions.", "f(", "[a(", "to=",
]  # fmt: skip

# Markers and the characters that break naive parsers, mixed with arbitrary text.
tricky_text = st.lists(
    st.one_of(st.sampled_from(MARKERS + SPECIALS), st.text(max_size=6)), max_size=12
).map("".join)


def text_without_markers(fmt: ToolCallFormat) -> st.SearchStrategy[str]:
    """Marker-rich text that holds none of ``fmt``'s own markers."""
    own = set(fmt.markers)
    for o, c in fmt.reasoning:
        own.update((o, c))
    for opener in fmt.openers:
        own.update(t for t in opener.pattern[:1] if isinstance(t, str))
    pool = [m for m in MARKERS + SPECIALS if not any(o in m or m in o for o in own)]
    pool += [o[: len(o) // 2] for o in own if len(o) > 2]
    text = st.lists(st.one_of(st.sampled_from(pool), st.text(max_size=6)), max_size=12).map("".join)
    return text.filter(lambda t: not fmt.contains_marker(t))


_HEAD = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_TAIL = _HEAD + "0123456789"


def tool_names(fmt: ToolCallFormat) -> st.SearchStrategy[str]:
    """Names a model of ``fmt`` can write: identifiers, with hyphens where allowed."""
    tail = _TAIL if fmt.identifier_names else _TAIL + "-"
    return st.builds(lambda h, t: h + t, st.sampled_from(_HEAD), st.text(tail, max_size=12)).filter(
        lambda s: not keyword.iskeyword(s)
    )


param_names = st.builds(
    lambda h, t: h + t, st.sampled_from(_HEAD.lower()), st.text(_TAIL.lower(), max_size=8)
).filter(lambda s: not keyword.iskeyword(s))

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    tricky_text,
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(tricky_text, inner, max_size=3)
    ),
    max_leaves=8,
)


def _mentions_marker(value: Any, markers: tuple[str, ...]) -> bool:
    if isinstance(value, str):
        return any(m in value for m in markers)
    if isinstance(value, list):
        return any(_mentions_marker(v, markers) for v in value)
    if isinstance(value, dict):
        return any(
            _mentions_marker(k, markers) or _mentions_marker(v, markers) for k, v in value.items()
        )
    return False


@st.composite
def calls_for(draw: st.DrawFn, fmt: ToolCallFormat) -> list[ToolCall]:
    """One to three calls (up to the format's limit) with nested, tricky arguments."""
    n = draw(st.integers(min_value=1, max_value=min(3, fmt.max_calls)))
    calls = []
    for _ in range(n):
        args = draw(st.dictionaries(param_names, json_values, max_size=4))
        if not fmt.json_safe_markers:
            # These formats write values unescaped: their own tags cannot occur inside.
            args = {k: v for k, v in args.items() if not _mentions_marker(v, fmt.markers)}
        calls.append(ToolCall(id="", name=draw(tool_names(fmt)), args=args))
    return calls


def _schema_of(value: Any) -> dict[str, Any]:
    if value is None:
        return {"type": "null"}
    if isinstance(value, bool):
        return {"type": "boolean"}
    if isinstance(value, int):
        return {"type": "integer"}
    if isinstance(value, float):
        return {"type": "number"}
    if isinstance(value, str):
        return {"type": "string"}
    if isinstance(value, list):
        return {"type": "array"}
    return {"type": "object"}


def tools_for(calls: list[ToolCall]) -> list[ToolDefinition]:
    """Tool definitions whose schemas give each argument the type it was generated with."""
    props: dict[str, dict[str, Any]] = {}
    for c in calls:
        props.setdefault(c.name, {}).update({k: _schema_of(v) for k, v in c.args.items()})
    return [
        ToolDefinition(name=n, parameters={"type": "object", "properties": p})
        for n, p in props.items()
    ]


def consistent_types(calls: list[ToolCall]) -> bool:
    """True if calls sharing a tool name give each shared argument the same JSON type."""
    seen: dict[tuple[str, str], str] = {}
    for c in calls:
        for k, v in c.args.items():
            t = _schema_of(v)["type"]
            if seen.setdefault((c.name, k), t) != t:
                return False
    return True


def fmt(name: str) -> ToolCallFormat:
    """Shorthand for ``get_format``."""
    return get_format(name)


def text_from_the_start_markers(fmt: ToolCallFormat) -> st.SearchStrategy[str]:
    """Tricky text that opens with pieces of ``fmt``'s start-only markers, where they count."""
    pieces = {"f", "get_weather", "all", " ", "\n", "{", "}", ":"}
    for pattern, closes in fmt.start_reasoning:
        pieces.update(t for t in pattern if isinstance(t, str))
        pieces.update(closes)
    for opener in fmt.start_openers:
        pieces.update(t for t in opener.pattern if isinstance(t, str))
    head = st.lists(st.sampled_from(sorted(pieces)), min_size=1, max_size=4).map("".join)
    return st.tuples(head, tricky_text).map("".join)


@dataclass(frozen=True)
class Form:
    """Another form of a rendered reply: its text, and what parsing it must give back."""

    text: str
    content: str
    reasoning: str | None = None
    think_open: bool = False


# Other forms of a rendered reply that servers and models also write, per format:
# (rendered text, its content, its calls) -> that form.
OtherForm = Callable[[str, str, list[ToolCall]], st.SearchStrategy[Form]]


@st.composite
def _deepseek_begin_spelling(
    draw: st.DrawFn, text: str, content: str, calls: list[ToolCall]
) -> Form:
    """The section's begin token spelled another way (the R1 distills of Qwen)."""
    begin = draw(st.sampled_from(deepseek_r1.CALLS_BEGIN_VARIANTS))
    assert text.count(deepseek_r1.CALLS_BEGIN) == 1
    return Form(text.replace(deepseek_r1.CALLS_BEGIN, begin), content)


def _deepseek_fence_on_the_json_line(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """R1's closing fence written right after the JSON, on its last line."""
    fence = "\n```" + deepseek_r1.CALL_END
    assert text.count(fence) == len(calls)
    return st.just(Form(text.replace(fence, "```" + deepseek_r1.CALL_END), content))


def _functionary_after_the_prompt(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """The reply as a server returns it: the prompt ended with the first ``>>>``."""
    assert text.startswith(functionary_v3_2.PREFIX)
    # At the start, ``all`` opens the text: a first call named ``all`` cannot be told
    # from it (llama.cpp reads it as text too).
    assume(calls[0].name != "all")
    return st.just(Form(text[len(functionary_v3_2.PREFIX) :], content))


@st.composite
def _granite_thinking_in_prose(
    draw: st.DrawFn, text: str, content: str, calls: list[ToolCall]
) -> Form:
    """Granite 3.2 with thinking on: the thought in prose, then the response."""
    thought = draw(tricky_text.filter(lambda t: not any(r in t for r in granite.RESPONSE_STARTS)))
    start = draw(st.sampled_from(granite.THOUGHT_STARTS))
    response = draw(st.sampled_from(granite.RESPONSE_STARTS))
    lead, mid, after = (draw(st.sampled_from(["", " ", "\n", "\n\n"])) for _ in range(3))
    text = f"{lead}{start}{mid}{thought}{mid}{response}{after}{text}"
    return Form(text, content, thought.strip() or None)


def _granite_31_plain_tag(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """Granite 3.1: the list after a plain-text ``<tool_call>``, closed or not."""
    # The first marker is the list's (a JSON string may hold another).
    plain = text.replace(granite.TOOL_CALL, granite.TEXT_TOOL_CALL, 1)
    return st.sampled_from([Form(plain, content), Form(plain + "</tool_call>", content)])


@st.composite
def _gpt_oss_recipient_in_header(
    draw: st.DrawFn, text: str, content: str, calls: list[ToolCall]
) -> Form:
    """The recipient in the role header; with no text first, the reply continues the
    prompt's ``<|start|>assistant``."""
    for c in calls:
        old = f"{gpt_oss.START}assistant{gpt_oss.CHANNEL}commentary to=functions.{c.name} "
        new = f"{gpt_oss.START}assistant to=functions.{c.name}{gpt_oss.CHANNEL}commentary "
        text = text.replace(old, new, 1)
    head = gpt_oss.START + "assistant"
    if not content and draw(st.booleans()):
        text = text[len(head) :]
    return Form(text, content)


def _qwen3_coder_without_tool_call_tags(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """The ``<function=...>`` blocks with no ``<tool_call>`` around them."""
    bare = text.replace(hermes.OPEN + "\n", "").replace("\n" + hermes.CLOSE, "")
    return st.just(Form(bare, content))


@st.composite
def _calls_inside_an_open_think_block(
    draw: st.DrawFn, text: str, content: str, calls: list[ToolCall], fmt: ToolCallFormat,
    opened_by_prompt: bool,
) -> Form:
    """The whole reply inside a think block never closed (opened by the prompt, or by
    ``<think>``): the text is reasoning, the calls are read."""
    thought = draw(text_without_markers(fmt))
    reasoning = (f"{thought}\n{content}" if content else thought).strip() or None
    head = "" if opened_by_prompt else "<think>"
    return Form(f"{head}{thought}\n{text}", "", reasoning, think_open=opened_by_prompt)


def _without_the_last_closing_marker(
    close: str, *, also: str = ""
) -> OtherForm:
    """The reply ended before its last closing marker (and ``also`` before it)."""

    def form(text: str, content: str, calls: list[ToolCall]) -> st.SearchStrategy[Form]:
        cut = also + close
        assert text.endswith(cut)
        return st.just(Form(text[: -len(cut)], content))

    return form


def _pythonic_in_llama4_tags_cut_before_the_end(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """Llama 4's ``<|python_start|>`` list with its ``<|python_end|>`` cut off."""
    body = text[len(content) + 1 :] if content else text
    assert body.startswith("[")
    lead = f"{content}\n" if content else ""
    return st.just(Form(f"{lead}<|python_start|>{body}", content))


def _command_a_text_wrapper(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """Command A: the text before the action inside ``<|START_TEXT|>...<|END_TEXT|>``."""
    action = text[len(content) + 1 :] if content else text
    assert action.startswith(command_r7b.START_ACTION)
    wrapped = f"{command_r7b.START_TEXT}{content}{command_r7b.END_TEXT}" if content else ""
    return st.just(Form(wrapped + action, content))


def _mistral_v11_without_args_token(
    text: str, content: str, calls: list[ToolCall]
) -> st.SearchStrategy[Form]:
    """A server dropped the ``[ARGS]`` control token (and the ids with ``[CALL_ID]``)."""
    for i, c in enumerate(calls):
        text = text.replace(f"{mistral.CALL_ID}{c.id or f'call_{i}'}{mistral.ARGS}", "", 1)
    return st.just(Form(text, content))


OTHER_FORMS: dict[str, dict[str, OtherForm]] = {
    "deepseek_r1": {
        "begin spelling": _deepseek_begin_spelling,
        "fence on the JSON line": _deepseek_fence_on_the_json_line,
    },
    "deepseek_v3_1": {
        "begin spelling": _deepseek_begin_spelling,
        "no section end": _without_the_last_closing_marker(deepseek_r1.CALLS_END),
    },
    "deepseek_v3_2": {
        "no section end": _without_the_last_closing_marker("</｜DSML｜function_calls>"),
    },
    "functionary_v3_2": {"after the prompt": _functionary_after_the_prompt},
    "granite": {
        "thinking in prose": _granite_thinking_in_prose,
        "granite 3.1 plain tag": _granite_31_plain_tag,
    },
    "gpt_oss": {"recipient in the header": _gpt_oss_recipient_in_header},
    "hermes": {"no last </tool_call>": _without_the_last_closing_marker("\n" + hermes.CLOSE)},
    "qwen3_coder": {
        "no <tool_call>": _qwen3_coder_without_tool_call_tags,
        "no last </tool_call>": _without_the_last_closing_marker("\n" + hermes.CLOSE),
        "inside the prompt's think block": lambda t, c, calls: _calls_inside_an_open_think_block(
            t, c, calls, get_format("qwen3_coder"), opened_by_prompt=True
        ),
    },
    "kimi_k2": {
        "no section end": _without_the_last_closing_marker(kimi_k2.SECTION_END),
        "no call or section end": _without_the_last_closing_marker(
            kimi_k2.SECTION_END, also=kimi_k2.CALL_END
        ),
        "inside an unclosed <think>": lambda t, c, calls: _calls_inside_an_open_think_block(
            t, c, calls, get_format("kimi_k2"), opened_by_prompt=False
        ),
    },
    "pythonic": {"llama 4 without <|python_end|>": _pythonic_in_llama4_tags_cut_before_the_end},
    "command_r7b": {"command a text wrapper": _command_a_text_wrapper},
    "mistral_v11": {"no [ARGS]": _mistral_v11_without_args_token},
    "nemotron": {"no </TOOLCALL>": _without_the_last_closing_marker(nemotron.CLOSE)},
}
