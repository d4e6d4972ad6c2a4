"""The one scanner every format runs on, whole text or chunk by chunk.

A format is a list of *openers* (a marker pattern, a way to find where the region it
opens ends, and a decoder for that region) plus its reasoning delimiters. The
scanner walks the text: outside regions it is content, inside reasoning delimiters
it is reasoning, and a region is decoded into calls once its end is known.

``parse`` is the same machine fed the whole text at once, so a stream and a parse
agree by construction; every decision is taken only once the text seen so far
settles it (a partial marker, a run of whitespace that a later chunk may extend, a
region whose end has not arrived), which is why a stream never takes text back.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

from pedrollm.toolcalls.jsontext import dumps
from pedrollm.toolcalls.markers import NEED_MORE, Pattern, match_pattern, partial_suffix_start
from pedrollm.toolcalls.result import ParseResult, Region
from pedrollm.types import InvalidToolCall, StreamDelta, ToolCall, ToolCallDelta, ToolDefinition

# (text, region start, end of the opening marker, text is complete) -> region end or None.
EndFinder = Callable[[str, int, int, bool], int | None]
# (region text, length of its opening marker, tools by name) -> what the region holds.
RegionDecoder = Callable[[str, int, "Tools"], Region]
Tools = dict[str, ToolDefinition]
Renderer = Callable[[list[ToolCall], str], str]

_log = logging.getLogger("pedrollm.toolcalls")


def positional_id(index: int, call: ToolCall) -> str:
    """The id a call gets when its format carries none: ``call_<position>``."""
    return f"call_{index}"


@dataclass(frozen=True)
class Opener:
    """A marker that opens a tool-call region, how to find the region's end, how to decode it."""

    pattern: Pattern
    find_end: EndFinder
    decode: RegionDecoder


@dataclass(frozen=True)
class ToolCallFormat:
    """One wire format: how a model writes tool calls into its text, both ways."""

    name: str
    openers: tuple[Opener, ...]
    renderer: Renderer
    reasoning: tuple[tuple[str, str], ...] = (("<think>", "</think>"),)
    # Reasoning the reply opens at its start, written in prose (Granite 3.2's "Here is
    # my thought process:"): (pattern, closing strings); the first closing string to
    # come ends it. Anywhere else the same words are content.
    start_reasoning: tuple[tuple[Pattern, tuple[str, ...]], ...] = ()
    # Openers that match only at the start of the reply: the model's text continues a
    # prompt that ended partway into the format's syntax (Functionary v3.2's ``>>>``).
    start_openers: tuple[Opener, ...] = ()
    # Special strings of the format: they cannot appear verbatim in content or in
    # unescaped (XML-style) argument values, because they would be read as structure.
    markers: tuple[str, ...] = ()
    # Openers also read inside reasoning: models whose calls start with a special token
    # write them inside an open think block (Kimi-K2-Thinking, Qwen3.5); after the
    # region the block goes on.
    reasoning_openers: tuple[Opener, ...] = ()
    # The most calls one rendered reply can hold (Llama 3.1 built-ins hold one).
    max_calls: int = 64
    # Tool names the format can write (pythonic ones must be Python identifiers).
    identifier_names: bool = False
    # Argument values travel as untyped text; tools' JSON schemas give them types.
    untyped_values: bool = False
    # A JSON argument string may hold the markers (the region end is found by
    # scanning the JSON, not by searching for the closing marker).
    json_safe_markers: bool = True
    # The id parse gives the call at ``index`` when the text carries none of its own;
    # formats that write ids (Kimi) render this one.
    id_for: Callable[[int, ToolCall], str] = positional_id
    description: str = ""
    aliases: tuple[str, ...] = field(default=())

    def render(self, calls: list[ToolCall], content: str = "") -> str:
        """Write ``content`` followed by ``calls`` the way a model of this format would."""
        return self.renderer(calls, content)

    def parse(
        self,
        text: str,
        tools: list[ToolDefinition] | None = None,
        *,
        think_open: bool | None = False,
    ) -> ParseResult:
        """Split a whole reply into content, tool calls, refused calls and reasoning."""
        machine = Scanner(self, tools, think_open)
        machine.buf = text
        machine.advance(final=True)
        return machine.result()

    def contains_marker(self, text: str) -> bool:
        """Return True if ``text`` holds something this format reads as structure."""
        if any(m in text for m in self.markers):
            return True
        if any(match_pattern(p, text, 0, True) >= 0 for p in self._start_patterns()):
            return True
        pats = [p for p in self._patterns()]
        firsts = {p[0] for p in pats if isinstance(p[0], str)}
        for first in firsts:
            i = text.find(first)
            while i >= 0:
                for p in pats:
                    if p[0] == first and match_pattern(p, text, i, True) >= 0:
                        return True
                i = text.find(first, i + 1)
        return False

    @cached_property
    def scan_items(self) -> list[tuple[Pattern, Opener | tuple[str, ...]]]:
        """The markers the scanner looks for: reasoning first, then the openers."""
        items: list[tuple[Pattern, Opener | tuple[str, ...]]] = [
            ((o,), (c,)) for o, c in self.reasoning
        ]
        return items + [(o.pattern, o) for o in self.openers]

    @cached_property
    def scan_triggers(self) -> tuple[str, ...]:
        """The first literal of every marker in ``scan_items``, each once."""
        return tuple(sorted({p[0] for p, _ in self.scan_items if isinstance(p[0], str)}))

    @cached_property
    def longest_trigger(self) -> int:
        """The length of the longest trigger (how far back a cut marker can start)."""
        return max((len(t) for t in self.scan_triggers), default=1)

    @cached_property
    def reasoning_triggers(self) -> tuple[str, ...]:
        """The first literal of every opener read inside reasoning, each once."""
        firsts = {o.pattern[0] for o in self.reasoning_openers}
        return tuple(sorted(t for t in firsts if isinstance(t, str)))

    def _patterns(self) -> list[Pattern]:
        return [(o,) for o, _ in self.reasoning] + [o.pattern for o in self.openers]

    def _start_patterns(self) -> list[Pattern]:
        return [p for p, _ in self.start_reasoning] + [o.pattern for o in self.start_openers]


# What a matched marker opens: a tool-call region, or reasoning that its closing
# strings end.
_Target = Opener | tuple[str, ...]
_Items = list[tuple[Pattern, _Target]]


_CONTENT, _REASONING, _REGION, _UNDECIDED = range(4)
# Last characters of the markers and values that end regions.
_REGION_ENDINGS = ">]})`"


class _Accumulator:
    """Text that is emitted with outer whitespace stripped, so deltas never need retracting."""

    __slots__ = ("parts", "started", "pending")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.started = False
        self.pending = ""

    def add(self, piece: str) -> str:
        if not piece:
            return ""
        if not self.started:
            piece = piece.lstrip()
            if not piece:
                return ""
            self.started = True
        piece = self.pending + piece
        kept = piece.rstrip()
        # Trailing whitespace waits: it is only content if more content follows.
        self.pending = piece[len(kept) :]
        if kept:
            self.parts.append(kept)
        return kept

    def value(self) -> str:
        return "".join(self.parts)


class Scanner:
    """The scanner's state: what is settled, where it stands, what comes next.

    ``buf`` is the text so far; ``advance`` settles what it can, ``events`` holds the
    deltas a stream has not collected yet, ``result`` is what is settled.
    """

    def __init__(
        self,
        fmt: ToolCallFormat,
        tools: list[ToolDefinition] | None,
        think_open: bool | None,
        streaming: bool = False,
    ) -> None:
        self.fmt = fmt
        self.tools: Tools = {t.name: t for t in tools or []}
        self.buf = ""
        self.pos = 0
        self.scan_from = 0
        self.content = _Accumulator()
        self.reasoning = _Accumulator()
        self.saw_reasoning = False
        self.calls: list[ToolCall] = []
        self.unclosed = 0
        # The reasoning block a region inside it interrupted, to go back to after it.
        self.region_in: tuple[str, ...] | None = None
        self.invalid: list[InvalidToolCall] = []
        self.closes: tuple[str, ...] = ()
        self.region: tuple[Opener, int, int] | None = None
        self.region_seen = 0
        self.items: _Items = fmt.scan_items
        self.triggers = fmt.scan_triggers
        self.longest = fmt.longest_trigger
        self.start_items: _Items = [(p, c) for p, c in fmt.start_reasoning]
        self.start_items += [(o.pattern, o) for o in fmt.start_openers]
        # A whole-text parse has nobody to send deltas to.
        self.streaming = streaming
        self.next_at: dict[str, int] = {}
        self.events: list[StreamDelta] = []
        if think_open and fmt.reasoning:
            self.mode = _REASONING
            self.closes = (fmt.reasoning[0][1],)
            self.saw_reasoning = True
        elif think_open is None and fmt.reasoning:
            self.mode = _UNDECIDED
        else:
            self.mode = _CONTENT
        # The start markers are still to be tried (content begins at the reply's start).
        self.at_start = self.mode != _REASONING and bool(self.start_items)

    # -- emitting -------------------------------------------------------------

    def _emit_content(self, text: str) -> None:
        delta = self.content.add(text)
        if delta and self.streaming:
            self.events.append(StreamDelta(content=delta))

    def _emit_reasoning(self, text: str) -> None:
        delta = self.reasoning.add(text)
        if delta and self.streaming:
            self.events.append(StreamDelta(reasoning=delta))

    def _emit_region(self, region: Region) -> None:
        if region.unclosed and any(isinstance(i, ToolCall) for i in region.items):
            self.unclosed += 1
            _log.info("%s: tool call accepted without its closing marker", self.fmt.name)
        for item in region.items:
            if isinstance(item, InvalidToolCall):
                self.invalid.append(item)
                continue
            index = len(self.calls)
            if not item.id:
                item = ToolCall(id=self.fmt.id_for(index, item), name=item.name, args=item.args)
            call = item
            self.calls.append(call)
            if not self.streaming:
                continue
            self.events.append(
                StreamDelta(
                    tool_call=ToolCallDelta(
                        index=index, id=call.id, name=call.name, arguments=dumps(call.args)
                    )
                )
            )
        if self.region_in is not None:
            self._emit_reasoning(region.content)
        else:
            self._emit_content(region.content)

    # -- scanning -------------------------------------------------------------

    def advance(self, final: bool) -> None:
        """Settle as much of the buffer as the text so far allows."""
        while True:
            if self.mode == _CONTENT:
                progressed = self._step_content(final)
            elif self.mode == _REASONING:
                progressed = self._step_reasoning(final)
            elif self.mode == _REGION:
                progressed = self._step_region(final)
            else:
                progressed = self._step_undecided(final)
            if not progressed:
                return

    def _next_trigger(self, start: int) -> int:
        best = -1
        for t in self.triggers:
            # A cached hit at or after ``start`` is still the first one; a cached miss
            # still holds until the buffer grows (feed() forgets misses).
            at = self.next_at.get(t)
            if at is None or 0 <= at < start:
                at = self.buf.find(t, start)
                self.next_at[t] = at
            if at >= 0 and (best < 0 or at < best):
                best = at
        return best

    def _enter(self, start: int, end: int, target: _Target) -> None:
        """Enter the region or reasoning block whose marker spans ``start:end``."""
        if isinstance(target, Opener):
            self.region = (target, start, end)
            self.mode = _REGION
            self.pos = self.scan_from = start
        else:
            self.closes = target
            self.mode = _REASONING
            self.saw_reasoning = True
            self.pos = self.scan_from = end

    def _step_start(self, final: bool) -> bool | None:
        # At the reply's start only: a start marker that matches wins, one that cannot
        # tell yet makes the scanner wait; None when none applies (scan as usual).
        for pattern, target in self.start_items:
            end = match_pattern(pattern, self.buf, self.pos, final)
            if end == NEED_MORE:
                return False
            if end >= 0:
                self.at_start = False
                self._enter(self.pos, end, target)
                return True
        self.at_start = False
        return None

    def _step_content(self, final: bool) -> bool:
        if self.at_start:
            started = self._step_start(final)
            if started is not None:
                return started
        buf = self.buf
        while True:
            i = self._next_trigger(self.scan_from)
            if not final:
                # A marker cut by the chunk boundary is held back until it is known.
                p = partial_suffix_start(buf, self.scan_from, self.triggers, self.longest)
                if p < len(buf) and (i < 0 or p < i):
                    i = -1
                    hold = p
                else:
                    hold = len(buf)
            else:
                hold = len(buf)
            if i < 0:
                self._emit_content(buf[self.pos : hold])
                self.pos = self.scan_from = hold
                return False
            # The first listed marker that matches wins; one listed before it that
            # cannot tell yet makes the scanner wait.
            chosen: tuple[int, _Target] | None = None
            waiting = False
            for pattern, target in self.items:
                end = match_pattern(pattern, buf, i, final)
                if end == NEED_MORE:
                    waiting = True
                    break
                if end >= 0:
                    chosen = (end, target)
                    break
            if waiting:
                self._emit_content(buf[self.pos : i])
                self.pos = self.scan_from = i
                return False
            if chosen is None:
                self.scan_from = i + 1
                continue
            self._emit_content(buf[self.pos : i])
            end, target = chosen
            self._enter(i, end, target)
            return True

    def _step_reasoning(self, final: bool) -> bool:
        buf = self.buf
        # The block ends at the first of its closing strings (the longest, at a tie).
        j, close = -1, ""
        for c in self.closes:
            k = buf.find(c, self.pos)
            if k >= 0 and (j < 0 or k < j or (k == j and len(c) > len(close))):
                j, close = k, c
        if self.fmt.reasoning_openers:
            entered = self._call_in_reasoning(len(buf) if j < 0 else j, final)
            if entered is not None:
                return entered
        if j >= 0:
            self._emit_reasoning(buf[self.pos : j])
            self.pos = self.scan_from = j + len(close)
            self.mode = _CONTENT
            return True
        hold = len(buf)
        if not final:
            longest = max(len(c) for c in self.closes)
            hold = partial_suffix_start(buf, self.pos, self.closes, longest)
            triggers = self.fmt.reasoning_triggers
            if triggers:
                longest = max(len(t) for t in triggers)
                hold = min(hold, partial_suffix_start(buf, self.pos, triggers, longest))
        self._emit_reasoning(buf[self.pos : hold])
        self.pos = self.scan_from = hold
        return False

    def _call_in_reasoning(self, limit: int, final: bool) -> bool | None:
        # A call opener before the block's end enters a region (True); one that cannot
        # tell yet holds the reasoning at it (False); None when there is none.
        buf = self.buf
        at = self.pos
        while True:
            hits = [k for t in self.fmt.reasoning_triggers if 0 <= (k := buf.find(t, at)) < limit]
            if not hits:
                return None
            k = min(hits)
            for opener in self.fmt.reasoning_openers:
                end = match_pattern(opener.pattern, buf, k, final)
                if end == NEED_MORE:
                    self._emit_reasoning(buf[self.pos : k])
                    self.pos = self.scan_from = k
                    return False
                if end >= 0:
                    self._emit_reasoning(buf[self.pos : k])
                    self.region_in = self.closes
                    self._enter(k, end, opener)
                    return True
            at = k + 1

    def _step_region(self, final: bool) -> bool:
        assert self.region is not None
        opener, start, head_end = self.region
        if not final and not self._worth_looking(start):
            return False
        end = opener.find_end(self.buf, start, head_end, final)
        if end is None:
            if final:
                end = len(self.buf)
            else:
                self.region_seen = len(self.buf)
                return False
        end = max(end, head_end)
        raw = self.buf[start:end]
        try:
            region = opener.decode(raw, head_end - start, self.tools)
        except (RecursionError, MemoryError):
            region = Region(items=[InvalidToolCall(raw=raw, error="tool call nested too deeply")])
        self._emit_region(region)
        self.pos = self.scan_from = end
        self.mode = _CONTENT
        if self.region_in is not None:
            # The region sat inside a think block, which goes on after it.
            self.mode, self.closes, self.region_in = _REASONING, self.region_in, None
        self.region = None
        self.region_seen = 0
        return True

    def _worth_looking(self, start: int) -> bool:
        # Looking for a region's end rescans the region, so a stream of small chunks
        # looks again only when a chunk brings a character that can end a region, or
        # when the region has grown by a quarter: linear time, and the result (not
        # the timing of deltas) is what a later look decides anyway.
        seen = self.region_seen
        if seen <= start:
            return True
        fresh = self.buf[seen:]
        if any(ch in fresh for ch in _REGION_ENDINGS):
            return True
        return len(self.buf) - seen >= max(256, (seen - start) // 4)

    def _step_undecided(self, final: bool) -> bool:
        # A reply whose prompt opened the think block starts inside it: a closing tag
        # with no opening tag before it means everything up to it was reasoning.
        opening, closing = self.fmt.reasoning[0]
        j = self.buf.find(closing)
        k = self.buf.find(opening)
        if j >= 0 and (k < 0 or j < k):
            # Read from the start as the block the prompt opened (calls in it included,
            # where the format reads them), as think_open=True would.
            self.saw_reasoning = True
            self.mode = _REASONING
            self.closes = (closing,)
            # The reply started inside the block: its content does not start the reply.
            self.at_start = False
            return True
        if k >= 0 or final:
            self.mode = _CONTENT
            return True
        return False

    def feed(self, chunk: str) -> None:
        """Add a chunk of a stream and settle what it allows."""
        if not chunk:
            return
        self.buf += chunk
        self.next_at = {t: at for t, at in self.next_at.items() if at >= 0}
        self.advance(final=False)
        self._compact()

    def take_events(self) -> list[StreamDelta]:
        """Return the deltas settled since the last call, and forget them."""
        out, self.events = self.events, []
        return out

    def _compact(self) -> None:
        # Drop the settled head of the buffer so long streams stay linear.
        cut = self.pos
        if self.mode == _REGION and self.region is not None:
            cut = min(cut, self.region[1])
        if self.mode == _UNDECIDED or cut < 4096:
            return
        if self.region is not None:
            opener, start, head_end = self.region
            self.region = (opener, start - cut, head_end - cut)
            self.region_seen = max(0, self.region_seen - cut)
        self.buf = self.buf[cut:]
        self.pos -= cut
        self.scan_from -= cut
        self.next_at = {t: at - cut for t, at in self.next_at.items() if at >= cut}

    def result(self) -> ParseResult:
        """What the text settled so far holds."""
        reasoning = self.reasoning.value()
        return ParseResult(
            content=self.content.value(),
            calls=list(self.calls),
            invalid=list(self.invalid),
            reasoning=reasoning if reasoning else None,
            unclosed=self.unclosed,
        )
