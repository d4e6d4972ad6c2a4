"""Streamed replies: SSE (or NDJSON) bytes -> JSON chunks -> deltas -> one message.

:func:`iter_events` frames the byte stream; :class:`StreamAccumulator` turns each
chunk into :class:`~pedrollm.types.StreamDelta` values and, at the end, into the
same :class:`RawReply` a non-streamed reply gives, so both finish in
:func:`pedrollm.reply.build_response`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from .errors import InvalidResponse
from .reply import RawReply, RawToolCall
from .types import StreamDelta, ToolCallDelta

DONE = "[DONE]"


class StreamError(Exception):
    """A chunk reported an error (``{"error": …}``) or could not be read."""


class EventTooLarge(StreamError):
    """One event (or one line of it) passed the size cap."""


def iter_events(chunks: Iterable[bytes], *, ndjson: bool = False,
                max_event_bytes: int | None = None) -> Iterator[str]:
    """Yield each event's data from a byte stream: SSE ``data:`` events, or NDJSON lines.

    Comment lines (``: ping``), ``event:``/``id:``/``retry:`` fields and blank keep-alive
    lines are skipped; several ``data:`` lines in one event are joined with newlines.
    Time is linear in the bytes, however long a line; an event larger than
    ``max_event_bytes`` raises :class:`EventTooLarge`.
    """
    pending: list[bytes] = []  # the pieces of the line not yet ended by a newline
    pending_len = 0
    data_lines: list[str] = []
    data_len = 0

    def too_large() -> EventTooLarge:
        return EventTooLarge(f"one stream event is larger than {max_event_bytes} bytes")

    for chunk in chunks:
        if not chunk:
            continue
        if b"\n" not in chunk:
            # No line ends here: keep the piece without re-scanning what came before.
            pending.append(chunk)
            pending_len += len(chunk)
            if max_event_bytes is not None and pending_len + data_len > max_event_bytes:
                raise too_large()
            continue
        if pending:
            pending.append(chunk)
            chunk = b"".join(pending)
            pending, pending_len = [], 0
        *lines, tail = chunk.split(b"\n")
        if tail:
            pending, pending_len = [tail], len(tail)
        for raw in lines:
            line = raw.rstrip(b"\r").decode("utf-8", errors="replace")
            if ndjson:
                if max_event_bytes is not None and len(raw) > max_event_bytes:
                    raise too_large()
                if line.strip():
                    yield line
                continue
            if not line:
                if data_lines:
                    yield "\n".join(data_lines)
                    data_lines, data_len = [], 0
                continue
            if line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            if name == "data":
                data_lines.append(value[1:] if value.startswith(" ") else value)
                data_len += len(raw)
                if max_event_bytes is not None and data_len > max_event_bytes:
                    raise too_large()
        if max_event_bytes is not None and pending_len + data_len > max_event_bytes:
            raise too_large()
    tail_text = b"".join(pending).rstrip(b"\r").decode("utf-8", errors="replace")
    if ndjson:
        if tail_text.strip():
            yield tail_text
        return
    if tail_text.startswith("data:"):
        value = tail_text[5:]
        data_lines.append(value[1:] if value.startswith(" ") else value)
    if data_lines:
        yield "\n".join(data_lines)


class StreamAccumulator:
    """Collects a stream's chunks into deltas and, at the end, one RawReply."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[RawToolCall] = []
        self._ids: dict[str, int] = {}
        self.finish_reason: str | None = None
        self.usage: Mapping[str, Any] | None = None
        self.timings: Mapping[str, Any] | None = None
        self.model: str | None = None
        self.done = False
        self.events = 0
        self.choices = 0

    def feed_data(self, data: str) -> list[StreamDelta]:
        """Feed one event's data (a JSON chunk or ``[DONE]``); return its deltas."""
        if data.strip() == DONE:
            self.done = True
            return []
        try:
            chunk = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise StreamError(f"a stream event is not valid JSON: {data[:200]!r}") from exc
        return self.feed_chunk(chunk)

    def feed_chunk(self, chunk: Any) -> list[StreamDelta]:
        """Feed one decoded chunk; return the deltas it carries."""
        if not isinstance(chunk, Mapping):
            raise StreamError(f"a stream event is not a JSON object: {chunk!r:.200}")
        if "error" in chunk:
            err = chunk["error"]
            msg = err.get("message") if isinstance(err, Mapping) else err
            raise StreamError(f"the server reported an error mid-stream: {msg}")
        self.events += 1
        if isinstance(chunk.get("model"), str):
            self.model = chunk["model"]
        if isinstance(chunk.get("usage"), Mapping):
            self.usage = chunk["usage"]
        if isinstance(chunk.get("timings"), Mapping):
            self.timings = chunk["timings"]
        out: list[StreamDelta] = []
        choices = chunk.get("choices")
        if not isinstance(choices, list):
            return out
        for choice in choices[:1]:
            if not isinstance(choice, Mapping):
                continue
            self.choices += 1
            key = "delta" if "delta" in choice else "message"  # some send whole messages
            delta = choice.get(key)
            if isinstance(delta, Mapping):
                out.extend(self._feed_delta(delta))
            elif delta is not None:
                # The same reply unstreamed is refused as malformed; so is this.
                raise InvalidResponse(
                    f"a stream chunk's {key} is not a JSON object: {delta!r:.200}")
            if isinstance(choice.get("finish_reason"), str):
                self.finish_reason = choice["finish_reason"]
        return out

    def _feed_delta(self, delta: Mapping[str, Any]) -> list[StreamDelta]:
        """Turn one choice delta into StreamDeltas, assembling tool-call fragments."""
        out: list[StreamDelta] = []
        reasoning = delta.get("reasoning_content")
        if reasoning is None:
            reasoning = delta.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            self.reasoning.append(reasoning)
            out.append(StreamDelta(reasoning=reasoning))
        content = delta.get("content")
        if isinstance(content, str) and content:
            self.content.append(content)
            out.append(StreamDelta(content=content))
        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            for frag in tool_calls:
                if isinstance(frag, Mapping):
                    out.append(self._feed_tool_fragment(frag))
        return out

    def _slot_for(self, frag: Mapping[str, Any]) -> int:
        """Find which call a fragment extends: by index, else by id, else a new or last call.

        Ollama sends each call whole with no index; some servers omit the id on
        continuation fragments; both are handled here.
        """
        index = frag.get("index")
        call_id = frag.get("id") if isinstance(frag.get("id"), str) and frag.get("id") else None
        if isinstance(index, int) and not isinstance(index, bool) and index >= 0:
            while len(self.calls) <= index:
                self.calls.append(RawToolCall())
            return index
        if call_id is not None:
            if call_id in self._ids:
                return self._ids[call_id]
            self.calls.append(RawToolCall())
            return len(self.calls) - 1
        fn = frag.get("function")
        starts_new = isinstance(fn, Mapping) and isinstance(fn.get("name"), str)
        if starts_new or not self.calls:
            self.calls.append(RawToolCall())
        return len(self.calls) - 1

    def _feed_tool_fragment(self, frag: Mapping[str, Any]) -> StreamDelta:
        """Merge one tool-call fragment into its call and describe it as a delta."""
        slot = self._slot_for(frag)
        call = self.calls[slot]
        call_id = frag.get("id")
        if isinstance(call_id, str) and call_id:
            call.id = call_id
            self._ids[call_id] = slot
        fn = frag.get("function")
        fn = fn if isinstance(fn, Mapping) else {}
        name = fn.get("name")
        if isinstance(name, str) and name:
            call.name = name if not call.name else call.name
        args = fn.get("arguments")
        piece = ""
        if isinstance(args, str):
            piece = args
            call.arguments = (call.arguments if isinstance(call.arguments, str) else "") + args
        elif isinstance(args, Mapping):
            call.arguments = dict(args)
            piece = json.dumps(args, ensure_ascii=False)
        return StreamDelta(tool_call=ToolCallDelta(
            index=slot,
            id=call_id if isinstance(call_id, str) and call_id else None,
            name=name if isinstance(name, str) and name else None,
            arguments=piece,
        ))

    def reply(self) -> RawReply:
        """Return what has arrived so far as a RawReply."""
        return RawReply(
            content="".join(self.content),
            reasoning="".join(self.reasoning),
            tool_calls=[RawToolCall(c.id, c.name, c.arguments) for c in self.calls],
            finish_reason=self.finish_reason,
            usage=self.usage,
            timings=self.timings,
            model=self.model,
        )


_OPEN, _CLOSE = "<think>", "</think>"


class ThinkSplitter:
    """Moves a leading ``<think>…</think>`` block of streamed text into reasoning deltas.

    A server that leaves the thinking in the text (llama-server with
    ``reasoning_format: none``, vLLM without a reasoning parser) would otherwise stream
    it as content while :func:`pedrollm.reply.split_think` moves it out of the final
    response; with this the deltas add up to that response's text and reasoning. Text
    that could still become a tag is held back until the next chunk decides.
    """

    def __init__(self) -> None:
        self.state = "start"  # start -> think -> after -> text, or start -> text
        self.held = ""
        self.space = ""  # reasoning's trailing whitespace, sent only if more follows
        self.started = False

    def feed(self, chunk: str) -> list[StreamDelta]:
        """Add streamed text; return the deltas it settles."""
        if self.state == "start":
            self.held += chunk
            head = self.held.lstrip()
            if head.startswith(_OPEN):
                self.state, self.held = "think", ""
                return self._think(head[len(_OPEN):])
            if _OPEN.startswith(head):
                return []  # empty, blank or a partial "<think>" so far
            self.state, text, self.held = "text", self.held, ""
            return [StreamDelta(content=text)]
        if self.state == "think":
            return self._think(chunk)
        if self.state == "after":
            chunk = chunk.lstrip()  # split_think drops the space after </think>
            if not chunk:
                return []
            self.state = "text"
        return [StreamDelta(content=chunk)]

    def flush(self) -> list[StreamDelta]:
        """End the text; return what was held back."""
        held, self.held = self.held, ""
        if self.state == "start":
            return [StreamDelta(content=held)] if held else []
        if self.state == "think":
            return self._reason(held, final=True)
        return []

    def _think(self, text: str) -> list[StreamDelta]:
        """Text inside the block: reasoning up to ``</think>``, then the rest as text."""
        buf, self.held = self.held + text, ""
        end = buf.find(_CLOSE)
        if end >= 0:
            out = self._reason(buf[:end], final=True)
            self.state = "after"
            return out + self.feed(buf[end + len(_CLOSE):])
        keep = next((n for n in range(min(len(buf), len(_CLOSE) - 1), 0, -1)
                     if _CLOSE.startswith(buf[-n:])), 0)
        if keep:
            buf, self.held = buf[:-keep], buf[-keep:]
        return self._reason(buf, final=False)

    def _reason(self, piece: str, *, final: bool) -> list[StreamDelta]:
        """A reasoning delta, trimmed as split_think trims the whole reasoning."""
        piece, self.space = self.space + piece, ""
        if not self.started:
            piece = piece.lstrip()
            self.started = bool(piece)
        trimmed = piece.rstrip()
        if not final:
            self.space = piece[len(trimmed):]
        return [StreamDelta(reasoning=trimmed)] if trimmed else []
