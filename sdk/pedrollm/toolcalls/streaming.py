"""Parsing a reply chunk by chunk as it streams, with the same scanner as a whole parse."""

from __future__ import annotations

from pedrollm.toolcalls.engine import Scanner, ToolCallFormat
from pedrollm.toolcalls.registry import get_format
from pedrollm.toolcalls.result import ParseResult
from pedrollm.types import StreamDelta, ToolDefinition


class StreamingParser:
    """Parse a reply as it streams: feed chunks, get deltas; ``finish`` equals ``parse``.

    ``format`` is a format object or a name ``get_format`` knows.
    """

    def __init__(
        self,
        format: str | ToolCallFormat = "hermes",
        tools: list[ToolDefinition] | None = None,
        *,
        think_open: bool | None = False,
    ) -> None:
        self.format = get_format(format) if isinstance(format, str) else format
        self._scanner = Scanner(self.format, tools, think_open, streaming=True)
        self._finished: ParseResult | None = None

    def feed(self, chunk: str) -> list[StreamDelta]:
        """Add a chunk; return the content, reasoning and tool-call deltas it settles."""
        if self._finished is not None:
            raise RuntimeError("feed() after finish()")
        self._scanner.feed(chunk)
        return self._scanner.take_events()

    def finish(self) -> ParseResult:
        """End the stream and return the whole result (the same as ``parse`` on all text)."""
        if self._finished is None:
            self._scanner.advance(final=True)
            self._finished = self._scanner.result()
        return self._finished

    def flush(self) -> list[StreamDelta]:
        """End the stream and return the deltas the end of text settled."""
        self.finish()
        return self._scanner.take_events()
