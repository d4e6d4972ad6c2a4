"""Tool calls written inside a model's text, for every common model format.

When a server hands back tool calls as text (no ``--jinja``, an older server, a
template it does not know, a stream), ``parse`` finds them::

    result = parse(text, format="hermes", tools=tools)
    result.content, result.calls, result.invalid, result.reasoning

Each wire format is a module holding ``FORMAT``, a ``ToolCallFormat`` with
``render(calls, content)`` (what a model writes) and ``parse(text, tools)``;
``get_format`` looks one up by name and ``detect_format`` picks one from a chat
template or a model name. ``StreamingParser`` (given a format or its name) does the
same on a stream of chunks. Modules import one way: ``engine`` (the scanner) knows
no format, the formats build on it, ``registry`` names them, ``streaming`` sits on
top.

Rules every format follows:

- Content is the text outside tool calls and reasoning, joined in order, with
  leading and trailing whitespace stripped (a stream holds back whitespace until
  more content follows, so it never has to take text back). Whitespace between
  pieces of content is kept as written; ``render`` puts a newline between content
  and calls where the format's template does.
- Reasoning blocks (``<think>``, ``[THINK]``, ``<seed:think>``, harmony's analysis
  channel, Command R7B's thinking, Granite 3.2's ``Here is my thought process:``
  up to ``Here is my response:``) go to ``reasoning``, stripped the same way;
  several blocks are joined; None when there is none. An unclosed block runs to the
  end of the text. Text inside reasoning is not read for calls, except in formats
  whose models write calls before closing the block (Kimi K2's section, Qwen3.5's
  ``<tool_call>``: ``ToolCallFormat.reasoning_openers``); there the calls are read
  and the block goes on after them. A block opened by
  the prompt is read with ``think_open=True`` (``template_opens_think`` tells from a
  chat template); ``think_open=None`` decides from the text (a closing tag with no
  opening tag before it), at the price of a stream holding content until it knows.
- Some markers count only at the very start of the reply, where the prompt leaves
  the model: Functionary v3.2's ``all\\n`` and ``name\\n{`` (its prompt ends with the
  first ``>>>``) and Granite 3.2's prose thinking (after leading whitespace). The
  same text anywhere else is content.
- Calls keep their written order. A call whose format carries an id keeps it
  (Kimi ``functions.f:0``, Mistral ``[CALL_ID]`` and ``"id"``, Command R7B
  ``tool_call_id``); the others get ``call_0``, ``call_1``... by position among the
  valid calls, so parsing is a pure function of the text.
- A call that is cut off (unbalanced JSON, a value never closed) or broken (bad
  JSON, no name, arguments not an object, a number JSON cannot carry such as
  ``1e999`` or ``NaN``) goes to ``invalid`` with its raw text and the reason; nothing
  is guessed. A region whose closing marker never came counts only at the end of a
  finished reply and only when its body is whole (complete JSON, a closed
  ``</function>`` or ``</invoke>``): ``ParseResult.unclosed`` counts such regions and
  the ``pedrollm.toolcalls`` logger says so. A stream holds such a region back until
  it ends. Where the format has no closing marker, or its closing token is the end of
  the turn (Llama 3.x JSON, Mistral, Granite, FireFunction, Functionary v3.2, gpt-oss
  ``<|call|>``), the end of complete JSON ends the call.
- Marker-less formats (Llama 3.x JSON, pythonic, generic JSON) only take JSON or
  brackets shaped like a call; anything else, complete, stays content.
- JSON arguments may be written as Python dicts (single quotes, True/None).
- JSON formats scan strings, so a marker inside a JSON argument string is just
  text. Formats that write values bare or end regions on special tokens (the XML
  formats, DeepSeek, Kimi, gpt-oss) cannot carry their own tags inside a value.
- Arguments of the XML formats (Qwen3-Coder, Seed-OSS, GLM 4.5, MiniMax-M2,
  DeepSeek V3.2 without ``string=``) are bare text: with ``tools`` given, each value
  is converted to the type its JSON schema names (``schema.convert``: ``null`` where
  the schema allows null, a union with ``string`` keeps the text); a value that does
  not convert, or has no schema, stays a string. Qwen3-Coder and Seed-OSS put a
  newline after ``<parameter=x>`` and before ``</parameter>``: one of each is layout,
  not value, and a value ends at the ``</parameter>`` the next tag follows, so it may
  hold ``</parameter>`` or ``</function>`` text. GLM and MiniMax values are taken
  exactly as written.
- No JSON pedrollm writes (stream deltas, rendered replies) holds NaN or Infinity.
- docs/toolcalls.md has the table of per-format choices.
- A streamed call is delivered whole, once its region has closed (one
  ``StreamDelta`` whose ``tool_call`` holds the index, id, name and complete JSON
  arguments); refused calls come only in ``finish()``'s result. ``flush()`` ends a
  stream and returns its last deltas.
"""

from __future__ import annotations

from pedrollm.toolcalls.detection import detect_format, template_opens_think
from pedrollm.toolcalls.engine import ToolCallFormat
from pedrollm.toolcalls.registry import UnknownFormatError, format_names, get_format
from pedrollm.toolcalls.result import ParseResult
from pedrollm.toolcalls.streaming import StreamingParser
from pedrollm.types import ToolDefinition

__all__ = [
    "ParseResult",
    "StreamingParser",
    "ToolCallFormat",
    "UnknownFormatError",
    "detect_format",
    "format_names",
    "get_format",
    "parse",
    "template_opens_think",
]


def parse(
    text: str,
    format: str = "hermes",
    tools: list[ToolDefinition] | None = None,
    *,
    think_open: bool | None = False,
) -> ParseResult:
    """Split a reply into content, tool calls, refused calls and reasoning."""
    return get_format(format).parse(text, tools, think_open=think_open)
