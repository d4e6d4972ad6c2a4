"""Building blocks for formats: where a region ends and how its body decodes."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from pedrollm.toolcalls.engine import EndFinder, Opener, RegionDecoder, Tools
from pedrollm.toolcalls.jsontext import MALFORMED, calls_from_json, scan_value, skip_ws
from pedrollm.toolcalls.markers import NEED_MORE, Pattern, match_pattern
from pedrollm.toolcalls.result import Region
from pedrollm.types import InvalidToolCall, ToolCall

Items = list[ToolCall | InvalidToolCall]
BodyDecoder = Callable[[str, Tools], Items]


def _literal_end(text: str, start: int, close: str, final: bool) -> int | None:
    j = text.find(close, start)
    if j >= 0:
        return j + len(close)
    return len(text) if final else None


def until(close: str) -> EndFinder:
    """Region ends after the first ``close`` (or at the end of a complete text)."""

    def find(text: str, start: int, head_end: int, final: bool) -> int | None:
        return _literal_end(text, head_end, close, final)

    return find


def json_then(close: str | None) -> EndFinder:
    """Region is a JSON value after the marker, then ``close`` if given.

    The value is scanned string-aware, so a ``close`` inside an argument does not end
    the region; if the value is not followed by ``close`` the region runs to the next
    ``close`` and will be refused.
    """

    def find(text: str, start: int, head_end: int, final: bool) -> int | None:
        n = len(text)
        pos = skip_ws(text, head_end)
        if pos >= n:
            return n if final else None
        search_from = pos
        if text[pos] in "{[":
            end = scan_value(text, pos)
            if end is None:
                return n if final else None
            if end != MALFORMED:
                if close is None:
                    return end
                after = skip_ws(text, end)
                r = match_pattern((close,), text, after, final)
                if r >= 0:
                    return r
                if r == NEED_MORE:
                    return None
                search_from = end
        if close is None:
            return head_end
        return _literal_end(text, search_from, close, final)

    return find


def bracket_end(text: str, start: int, head_end: int, final: bool) -> int | None:
    """Region is the bracketed value the marker starts (a marker-less JSON or call list).

    When the brackets close the wrong way the region is just its marker, which then
    decodes as content.
    """
    end = scan_value(text, start)
    if end is None:
        return len(text) if final else None
    return head_end if end == MALFORMED else end


def body_of(region: str, head_len: int, close: str | None) -> tuple[str, bool]:
    """Return the region's body (between markers) and whether its closing marker is there."""
    body = region[head_len:]
    if close is None:
        return body, True
    if body.endswith(close):
        return body[: -len(close)], True
    return body, False


def unterminated(region: str, close: str) -> Region:
    """A region cut off before its closing marker: one refused call with the raw text."""
    return Region(items=[InvalidToolCall(raw=region, error=f"tool call cut off before {close}")])


def spans(text: str, begin: str, end: str) -> Iterator[str | InvalidToolCall]:
    """Yield the text between each ``begin`` and its ``end``, in order.

    A span whose ``end`` never comes is yielded as a refused call holding the raw text
    from ``begin`` on, and ends the scan.
    """
    pos = 0
    while (b := text.find(begin, pos)) >= 0:
        e = text.find(end, b)
        if e < 0:
            yield InvalidToolCall(raw=text[b:], error=f"tool call cut off before {end}")
            return
        yield text[b + len(begin) : e]
        pos = e + len(end)


def accept_unclosed(region: str, close: str, items: Items) -> Region:
    """A region the reply ended in before ``close``: its calls count when all are whole.

    ``items`` is the body read strictly (nothing cut off tolerated); one refused call
    refuses the region, as a cut-off one.
    """
    if items and all(isinstance(i, ToolCall) for i in items):
        return Region(items=items, unclosed=True)
    return unterminated(region, close)


def decoder(
    close: str | None, body: BodyDecoder, unclosed: BodyDecoder | None = None
) -> RegionDecoder:
    """Decode the body between the marker and ``close`` with ``body``.

    A region whose ``close`` never came is refused, unless ``unclosed`` (a strict
    reading of the body) finds only whole calls in it: the reply ended right after.
    """

    def decode(region: str, head_len: int, tools: Tools) -> Region:
        text, closed = body_of(region, head_len, close)
        if not closed and close is not None:
            if unclosed is None or not text.strip():
                return unterminated(region, close)
            return accept_unclosed(region, close, unclosed(text, tools))
        if not text.strip():
            return Region(items=[InvalidToolCall(raw=region, error="empty tool call")])
        return Region(items=body(text, tools))

    return decode


def json_body(text: str, tools: Tools) -> list[ToolCall | InvalidToolCall]:
    """Body is one call object or a list of them, in JSON or Python-dict notation."""
    return calls_from_json(text)


def whole_json_body(text: str, tools: Tools) -> list[ToolCall | InvalidToolCall]:
    """``json_body`` for a body the reply ended in: only one whole value, nothing after."""
    raw = text.strip()
    if not raw.startswith(("{", "[")) or scan_value(raw, 0) != len(raw):
        return [InvalidToolCall(raw=raw, error="tool call cut off")]
    return calls_from_json(raw)


def json_region(pattern: Pattern, close: str | None) -> Opener:
    """An opener for ``marker JSON close`` regions holding call objects."""
    return Opener(pattern, json_then(close), decoder(close, json_body, whole_json_body))


def drop(pattern: Pattern) -> Opener:
    """An opener for a marker that carries no text of its own (a response wrapper tag)."""

    def find(text: str, start: int, head_end: int, final: bool) -> int | None:
        return head_end

    def decode(region: str, head_len: int, tools: Tools) -> Region:
        return Region()

    return Opener(pattern, find, decode)


def join_content(content: str, blocks: list[str], sep: str = "\n") -> str:
    """Put the content first and the call blocks after it, as models write them."""
    return sep.join([content, *blocks] if content else blocks)
