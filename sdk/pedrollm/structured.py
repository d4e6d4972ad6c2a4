"""Typed structured output: a reply constrained to a dataclass's JSON schema, decoded to it.

:meth:`pedrollm.Backend.infer_structured` sends the schema :func:`json_schema_for`
derives from a dataclass as the request's ``json_schema`` (the server constrains the
reply to it), then reads the reply back as an instance.
:meth:`pedrollm.Backend.stream_structured` does the same over a stream and returns a
:class:`StructuredStream`.

The schema comes from the dataclass's type hints through the walker tools already use
(:mod:`pedrollm.tool_schema`): ``str``, ``int``, ``float``, ``bool``, ``None``,
``Optional``/unions, ``list[X]``, ``dict[str, X]``, ``Literal``, ``Enum``, nested
dataclasses and ``Annotated[X, "description"]``; fields without a default are
``required`` and no other keys are allowed. The reply is checked against that schema
(so the error names the field and what is wrong) and converted with the same code that
hands a tool its typed arguments (Enum members, nested dataclasses, floats for ints).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator, Iterator
from typing import Any, Generic, TypeVar

from .errors import StructuredOutputError
from .tool_schema import ToolSchemaError, convert, dataclass_schema, validate
from .types import InferenceRequest, InferenceResponse, StreamDelta

T = TypeVar("T")

#: How much of a bad reply an error message quotes (``raw_text`` keeps all of it).
QUOTED_CHARS = 200


def json_schema_for(cls: type[Any]) -> dict[str, Any]:
    """Return the JSON schema of a dataclass type; TypeError names a field without one."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeError(f"structured output needs a dataclass type, got {cls!r}")
    try:
        return dataclass_schema(cls)
    except ToolSchemaError as exc:
        raise TypeError(f"structured output: {exc}") from None


def structured_request(req: InferenceRequest, cls: type[Any]) -> InferenceRequest:
    """Return ``req`` with ``cls``'s schema as its ``json_schema`` (refusing one it has)."""
    schema = json_schema_for(cls)
    if req.json_schema is not None and req.json_schema != schema:
        raise ValueError(f"the request already has a json_schema; structured output sets it "
                         f"from {cls.__name__} (leave json_schema unset)")
    return dataclasses.replace(req, json_schema=schema)


def parse_structured(response: InferenceResponse, cls: type[T]) -> T:
    """Decode a reply's text as an instance of ``cls``; StructuredOutputError says why not."""
    text = response.text

    def fail(reason: str) -> StructuredOutputError:
        quoted = text if len(text) <= QUOTED_CHARS else text[:QUOTED_CHARS] + "..."
        return StructuredOutputError(
            f"the reply is not a valid {cls.__name__}: {reason}; reply: {quoted!r}",
            raw_text=text, reason=reason)

    try:
        value = json.loads(text)
    except ValueError as exc:
        if response.finish_reason == "length":
            raise fail("the reply was cut at max_tokens (finish_reason 'length') before "
                       "its JSON was complete; raise max_tokens") from None
        raise fail(f"not JSON ({exc})") from None
    problems = validate(value, json_schema_for(cls))
    if problems:
        raise fail("; ".join(problems))
    try:
        return convert(value, cls)  # type: ignore[no-any-return]
    except (TypeError, ValueError) as exc:  # e.g. the dataclass's own __post_init__ check
        raise fail(f"{cls.__name__}(...) refused the values: {exc}") from None


class StructuredStream(Generic[T]):
    """A streamed structured reply: iterate it for the deltas, then read ``result``.

    ::

        stream = backend.stream_structured(req, Weather)
        for delta in stream:
            print(delta.content, end="")
        weather = stream.result          # a Weather

    Iterating yields every :class:`~pedrollm.types.StreamDelta`, the last one carrying
    the whole response as ``stream()`` does; when the reply does not decode, the loop
    ends with :class:`~pedrollm.errors.StructuredOutputError`. ``result`` reads the
    rest of the stream first when the loop stopped early or never ran, so
    ``backend.stream_structured(req, Weather).result`` is ``infer_structured`` over a
    stream. Breaking out of the loop and calling :meth:`close` closes the connection.
    """

    def __init__(self, deltas: Iterator[StreamDelta], cls: type[T]) -> None:
        self._deltas = deltas
        self._cls = cls
        self._iterator = self._run()
        self._response: InferenceResponse | None = None
        self._result: T | None = None
        self._error: StructuredOutputError | None = None

    def __iter__(self) -> Iterator[StreamDelta]:
        """The deltas, once: a second loop continues where the first stopped."""
        return self._iterator

    def _run(self) -> Generator[StreamDelta, None, None]:
        for delta in self._deltas:
            if delta.response is not None:
                self._response = delta.response
            yield delta
        self._decode()
        if self._error is not None:
            raise self._error

    def _decode(self) -> None:
        """Decode the finished reply once, keeping the instance or the error."""
        if self._response is not None and self._result is None and self._error is None:
            try:
                self._result = parse_structured(self._response, self._cls)
            except StructuredOutputError as exc:
                self._error = exc

    @property
    def response(self) -> InferenceResponse:
        """The whole reply (text, usage, finish reason), once the stream has ended."""
        self._drain()
        if self._response is None:
            raise RuntimeError("the stream was closed before its reply was complete")
        return self._response

    @property
    def result(self) -> T:
        """The decoded instance; raises StructuredOutputError when the reply is not one."""
        response = self.response
        self._decode()
        if self._error is not None:
            raise self._error
        if self._result is None:  # only if convert() built None, which a dataclass is not
            raise RuntimeError(f"no {self._cls.__name__} was decoded from {response.text!r}")
        return self._result

    def _drain(self) -> None:
        """Read what is left of the stream (a decoding error is kept for ``result``)."""
        if self._response is None:
            try:
                for _ in self._iterator:
                    pass
            except StructuredOutputError:
                pass

    def close(self) -> None:
        """Stop reading and close the connection."""
        self._iterator.close()
        close = getattr(self._deltas, "close", None)
        if close is not None:
            close()


__all__ = ["StructuredStream", "json_schema_for", "parse_structured", "structured_request"]
