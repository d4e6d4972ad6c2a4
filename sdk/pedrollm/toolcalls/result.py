"""What parsing a model's text gives back: content, tool calls and reasoning."""

from __future__ import annotations

from dataclasses import dataclass, field

from pedrollm.types import InvalidToolCall, ToolCall


@dataclass
class ParseResult:
    """The text a model wrote, split into content, tool calls, refused calls and reasoning."""

    content: str = ""
    calls: list[ToolCall] = field(default_factory=list)
    invalid: list[InvalidToolCall] = field(default_factory=list)
    reasoning: str | None = None
    # Calls taken from a region whose closing marker never came: the reply ended
    # right after a complete body (servers cut end-of-turn tokens, models stop early).
    unclosed: int = 0


@dataclass
class Region:
    """What one tool-call region of the text decoded to.

    ``items`` keeps valid and refused calls in the order they were written; a valid
    call whose ``id`` is empty gets a positional id (``call_0``, ``call_1``...) from
    the parser. ``content`` is text the region turned out to carry instead of calls
    (a fenced JSON block that is not a call, a response wrapper). ``unclosed`` says
    the reply ended before the closing marker, after a complete body.
    """

    items: list[ToolCall | InvalidToolCall] = field(default_factory=list)
    content: str = ""
    # The region's closing marker never came; its body was complete, so its calls count.
    unclosed: bool = False
