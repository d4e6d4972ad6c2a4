"""OpenAI gpt-oss (harmony): channels, with calls addressed to ``functions.<name>``::

    <|channel|>analysis<|message|>Need the weather.<|end|>
    <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json
    <|message|>{"city": "Paris"}<|call|>

The analysis channel is reasoning; final and plain commentary messages are content
(their header tokens carry no text). ``<|call|>`` and ``<|return|>`` end the turn, so
servers often cut them off: a call whose JSON is complete at the end of the text
counts.

The recipient may also stand in the role header, before the channel:
``<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>``.
A server's prompt ends with ``<|start|>assistant``, so a reply that opens with a call
starts at `` to=functions.get_weather``: at the very start of the reply that opens a
call too.
"""

from __future__ import annotations

import re

from pedrollm.toolcalls.engine import Opener, ToolCallFormat, Tools
from pedrollm.toolcalls.jsontext import decode_arguments, dumps, load_lenient, scan_value
from pedrollm.toolcalls.markers import WS
from pedrollm.toolcalls.regions import drop, join_content, until
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

START = "<|start|>"
CHANNEL = "<|channel|>"
MESSAGE = "<|message|>"
CALL = "<|call|>"
END = "<|end|>"
RETURN = "<|return|>"
CONSTRAIN = "<|constrain|>"

_RECIPIENT = re.compile(r"to=([^\s<]+)")


def _decode(region: str, head_len: int, tools: Tools) -> Region:
    header, sep, body = region.partition(MESSAGE)
    m = _RECIPIENT.search(header)
    recipient = m.group(1) if m else ""
    name = recipient[len("functions.") :] if recipient.startswith("functions.") else recipient
    if not sep or not name:
        return Region(items=[InvalidToolCall(raw=region, error="tool call cut off in its header")])
    if body.endswith(CALL):
        body = body[: -len(CALL)]
    text = body.strip()
    if not text.startswith("{") or scan_value(text, 0) != len(text):
        return Region(items=[InvalidToolCall(raw=region, error="arguments cut off", name=name)])
    try:
        args = decode_arguments(load_lenient(text))
    except ValueError as exc:
        return Region(items=[InvalidToolCall(raw=region, error=str(exc), name=name)])
    return Region(items=[ToolCall(id="", name=name, args=args)])


def _call(pattern: tuple[str, ...]) -> Opener:
    return Opener((*pattern[:-1], WS, pattern[-1]), until(CALL), _decode)


def render(calls: list[ToolCall], content: str = "") -> str:
    """Write the content as a final message, then one commentary message per call."""
    parts = [f"{CHANNEL}final{MESSAGE}{content}{END}"] if content else []
    parts += [
        f"{START}assistant{CHANNEL}commentary to=functions.{c.name} {CONSTRAIN}json"
        f"{MESSAGE}{dumps(c.args)}{CALL}"
        for c in calls
    ]
    return join_content("", parts, sep="")


FORMAT = ToolCallFormat(
    name="gpt_oss",
    openers=(
        _call((CHANNEL + "commentary", "to=")),
        _call((CHANNEL + "analysis", "to=")),
        _call((START + "assistant", "to=")),
        drop((START + "assistant",)),
        drop((CHANNEL + "final", WS, MESSAGE)),
        drop((CHANNEL + "commentary", WS, MESSAGE)),
        drop((END,)),
        drop((RETURN,)),
    ),
    # The reply continues the prompt's ``<|start|>assistant``: its header's recipient.
    start_openers=(Opener((WS, "to="), until(CALL), _decode),),
    renderer=render,
    reasoning=((CHANNEL + "analysis" + MESSAGE, END),),
    markers=(START, CHANNEL, MESSAGE, CALL, END, RETURN, CONSTRAIN),
    json_safe_markers=False,
    description="gpt-oss harmony: <|channel|>commentary to=functions.f <|message|>{json}<|call|>",
    aliases=("harmony", "gpt_oss_20b", "gpt_oss_120b"),
)
