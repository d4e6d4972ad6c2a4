"""Tools from Python functions, and the multi-turn loop that lets a model use them.

A :class:`ToolRegistry` turns plain functions into :class:`Tool` objects (schema from
the signature, type hints and docstring; see :mod:`pedrollm.tool_schema`). An
:class:`Agent` runs a task against a backend::

    registry = ToolRegistry()

    @registry.register
    def get_weather(city: str) -> dict[str, object]:
        '''Current weather for a city.

        Args:
            city: The city name, e.g. "Paris".
        '''
        ...

    result = Agent(backend, registry, "You are helpful.").run("Weather in Paris?")
    print(result.final_text)

How the loop behaves, and why:

- Each turn is one request carrying the registry's tools. The backend decides how
  they travel: natively in ``tools`` when the server supports it, otherwise described
  in the system prompt in the model's text format, with earlier calls written back as
  text and the reply's calls parsed from its text (see :mod:`pedrollm.toolprompt`).
- A reply with tool calls (valid or not) continues the loop: every call gets exactly
  one tool result, so the conversation stays valid. An unknown tool, arguments that
  do not fit the tool's schema (required keys, JSON types, enum), a call the SDK could
  not decode (``invalid_tool_calls``) or a tool that raises all produce a result
  starting with ``Error:`` that tells the model what went wrong; nothing is raised.
  Results that are not strings are JSON-encoded (dataclasses as objects, enums as
  their values, anything else by ``str``).
- A reply without calls ends the run with ``stopped_reason="complete"``. After
  ``max_turns`` requests the run stops with ``stopped_reason="max_turns"``; the calls of
  that last reply are not run (the model would never see their results) and the
  ``max_turns`` event lists them.
- Caps, so a model (or a server) gone wrong cannot run away with the caller's
  machine, each a constructor argument:

  - ``max_calls_per_turn`` (default 32): a reply asking for more calls has only the
    first ones run; the rest are left out of the conversation (so none waits for a
    result), the last result sent back says how many were left out, and a
    ``calls_dropped`` event lists them.
  - ``max_tool_output_chars`` (default 32,000 characters, about 8,000 tokens): a
    longer tool result is cut there and ends with a ``[truncated: ...]`` line telling
    the model how long the whole output was. The ``tool_result`` event carries the
    text that was sent.
  - ``max_identical_calls`` (default 2; None for no limit): how many times one call
    (the same tool name and arguments) is run in a run. A model that asks for it
    again after seeing its results is looping (typically a template that does not
    show it the results); the run then stops with
    ``stopped_reason="repeated_call"`` and a ``repeated_call`` event naming the call,
    which is not run.

- Call ids are made unique within a reply before anything is run: a missing id, or
  one an earlier call of the same reply already has, gets a ``_2``, ``_3``... suffix
  (or ``call_<turn>_<n>`` when missing), in the assistant message and its tool result
  alike. Without this, two calls with one id would answer each other's results, and a
  broken call would make a valid one sharing its id look refused.
- Errors from the backend itself (connection, HTTP, context overflow) are reported as
  an ``error`` event and then raised: they are the server's fault, not the model's.
- Context trimming: before each request the conversation is estimated in tokens
  (``count_tokens``, by default one token per four characters, rounded up, plus four
  per message for the role and framing; offered tool schemas count too;
  ``count_tokens="server"`` counts each text with the server's own tokenizer instead,
  exact on llama-server and vLLM, one ``/tokenize`` request per new message, see
  :func:`server_token_counter`) and compared
  with ``backend.get_usable_context()``. Over budget, the oldest turns are dropped
  first. Never dropped: the system prompt, the task message (without it the model no
  longer knows what it is doing), and the latest turn (the assistant's pending calls
  with their results). A turn is an assistant message together with its tool results,
  so a result is never sent without its call. When the backend cannot say its
  context size, nothing is trimmed. Trimming only shapes what is sent: the
  transcript keeps every message.
- Events: ``request``, ``tool_call``, ``tool_result``, ``calls_dropped``, ``final``,
  ``max_turns``, ``repeated_call``, ``error`` (and ``delta`` for streamed text when
  ``stream=True``) go to ``on_event`` and, except ``delta``, into the transcript.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import json
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, overload

from dataclasses_json import DataClassJsonMixin

from .backend import Backend
from .errors import PedroLLMError
from .tokens import TokenCounter, estimate_tokens, message_tokens
from .tool_schema import ToolSchemaError, convert_arguments, description_for, schema_for, validate
from .types import InferenceRequest, InferenceResponse, Message, ToolCall, ToolDefinition
from .validation import TOOL_NAME_PATTERN

log = logging.getLogger("pedrollm")

EventKind = Literal["request", "delta", "tool_call", "tool_result", "calls_dropped", "final",
                    "max_turns", "repeated_call", "error"]
StoppedReason = Literal["complete", "max_turns", "repeated_call"]
ERROR_PREFIX = "Error: "
DEFAULT_MAX_CALLS_PER_TURN = 32
# About 8,000 tokens at four characters a token: room for a file or a page, not a dump.
DEFAULT_MAX_TOOL_OUTPUT_CHARS = 32_000
DEFAULT_MAX_IDENTICAL_CALLS = 2

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentResult",
    "Tool",
    "ToolRegistry",
    "ToolSchemaError",
    "estimate_tokens",
    "schema_for",
    "server_token_counter",
    "trim_conversation",
]


# -- tools ---------------------------------------------------------------------------


@dataclass
class Tool:
    """A tool the model may call: name, description, JSON-schema parameters and a callable."""

    name: str
    description: str
    parameters: dict[str, Any]
    func: Callable[..., Any]

    def __post_init__(self) -> None:
        if not TOOL_NAME_PATTERN.match(self.name):
            raise ValueError(
                f"tool name {self.name!r} must match {TOOL_NAME_PATTERN.pattern} "
                "(letters, digits, '_', '.', '-'; 1 to 64 characters)"
            )

    @classmethod
    def from_function(cls, func: Callable[..., Any], *, name: str | None = None,
                      description: str | None = None) -> Tool:
        """Build a tool from a function's signature, type hints and docstring."""
        tool_name = name or str(getattr(func, "__name__", ""))
        return cls(
            name=tool_name,
            description=description if description is not None else description_for(func),
            parameters=schema_for(func),
            func=func,
        )

    def definition(self) -> ToolDefinition:
        """Return the ToolDefinition offered to the model."""
        return ToolDefinition(name=self.name, description=self.description,
                              parameters=self.parameters)

    def check(self, args: dict[str, Any]) -> list[str]:
        """Return what is wrong with ``args`` for this tool (empty when they fit)."""
        return validate(args, self.parameters)

    def invoke(self, args: dict[str, Any]) -> Any:
        """Call the function with ``args`` converted to its annotated types."""
        return self.func(**convert_arguments(self.func, args))


class ToolRegistry:
    """The tools an agent offers, by name."""

    def __init__(self, tools: Sequence[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    @overload
    def register(self, func: Callable[..., Any], *, name: str | None = None,
                 description: str | None = None) -> Callable[..., Any]: ...

    @overload
    def register(self, func: None = None, *, name: str | None = None,
                 description: str | None = None
                 ) -> Callable[[Callable[..., Any]], Callable[..., Any]]: ...

    def register(
        self,
        func: Callable[..., Any] | None = None,
        *,
        name: str | None = None,
        description: str | None = None,
    ) -> Any:
        """Register a function as a tool; usable as ``@register`` or ``@register(name=...)``."""
        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            self.add(Tool.from_function(f, name=name, description=description))
            return f  # the decorated function stays an ordinary function

        return add(func) if func is not None else add

    def add(self, tool: Tool) -> None:
        """Add a tool; a second tool with the same name is refused."""
        if tool.name in self._tools:
            raise ValueError(f"a tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def get(self, name: str) -> Tool | None:
        """Return the tool called ``name``, or None."""
        return self._tools.get(name)

    def names(self) -> list[str]:
        """Return the registered tool names, in registration order."""
        return list(self._tools)

    def definitions(self) -> list[ToolDefinition]:
        """Return the ToolDefinitions to offer the model."""
        return [t.definition() for t in self._tools.values()]

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def __iter__(self) -> Iterator[Tool]:
        return iter(list(self._tools.values()))


# -- events, transcript, result ------------------------------------------------------


@dataclass
class AgentEvent(DataClassJsonMixin):
    """One step of a run, for progress display: what happened, in which turn, with details."""

    kind: EventKind
    turn: int
    data: dict[str, Any] = field(default_factory=dict)


TranscriptEntry = Message | AgentEvent


@dataclass
class AgentResult:
    """How a run ended: the final answer, turns used, why it stopped, and the transcript."""

    final_text: str
    turns: int
    stopped_reason: StoppedReason
    transcript: list[TranscriptEntry] = field(default_factory=list)

    @property
    def completed(self) -> bool:
        """True when the model gave a final answer (not stopped by max_turns)."""
        return self.stopped_reason == "complete"

    @property
    def messages(self) -> list[Message]:
        """The conversation: system prompt, task, replies and tool results, in order."""
        return [e for e in self.transcript if isinstance(e, Message)]

    @property
    def events(self) -> list[AgentEvent]:
        """The recorded events, in order."""
        return [e for e in self.transcript if isinstance(e, AgentEvent)]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; each transcript entry is ``{"message"|"event": ...}``."""
        return {
            "final_text": self.final_text,
            "turns": self.turns,
            "stopped_reason": self.stopped_reason,
            "transcript": [
                {"message": e.to_dict()} if isinstance(e, Message) else {"event": e.to_dict()}
                for e in self.transcript
            ],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialise the result and its transcript to JSON."""
        return json.dumps(self.to_dict(), indent=indent, ensure_ascii=False)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AgentResult:
        """Rebuild a result from ``to_dict`` output."""
        entries: list[TranscriptEntry] = []
        for item in data.get("transcript", []):
            if "message" in item:
                entries.append(Message.from_dict(item["message"]))
            else:
                entries.append(AgentEvent.from_dict(item["event"]))
        return cls(final_text=data["final_text"], turns=data["turns"],
                   stopped_reason=data["stopped_reason"], transcript=entries)

    @classmethod
    def from_json(cls, text: str) -> AgentResult:
        """Rebuild a result from ``to_json`` output."""
        return cls.from_dict(json.loads(text))


# -- token estimate and trimming -----------------------------------------------------


def server_token_counter(backend: Backend, cache_size: int = 4096) -> TokenCounter:
    """A token counter that asks ``backend``'s tokenizer, remembering each text's count.

    Exact on llama-server and vLLM (``/tokenize``), the estimate elsewhere. A message's
    text is sent once per run and agent (later turns find it in the cache), so a turn
    costs one small request per new message; the framing around each message is still
    estimated (four tokens). Errors from the server are raised as they come.
    """

    @functools.lru_cache(maxsize=cache_size)
    def count(text: str) -> int:
        return backend.count_text_tokens(text).n if text else 0

    return count


def _turn_groups(messages: Sequence[Message]) -> list[list[Message]]:
    """Split messages into turns: each user or assistant message with the tool results after it."""
    groups: list[list[Message]] = []
    for msg in messages:
        if msg.role == "tool" and groups:
            groups[-1].append(msg)
        else:
            groups.append([msg])
    return groups


@dataclass
class Trimmed:
    """What trimming kept: the messages to send, how many were dropped, the estimate."""

    messages: list[Message]
    dropped: int
    estimated_tokens: int


def trim_conversation(
    pinned: Sequence[Message],
    turns: Sequence[Message],
    budget: int | None,
    *,
    count: TokenCounter = estimate_tokens,
    extra_tokens: int = 0,
) -> Trimmed:
    """Drop the oldest turns until ``pinned + turns`` fits ``budget`` (the last turn stays).

    ``pinned`` (system prompt, task) is always kept; ``extra_tokens`` accounts for what
    is sent beside the messages (tool schemas).
    """
    groups = _turn_groups(turns)
    sizes = [sum(message_tokens(m, count) for m in g) for g in groups]
    fixed = extra_tokens + sum(message_tokens(m, count) for m in pinned)
    total = fixed + sum(sizes)
    first = 0
    dropped = 0
    if budget is not None:
        while total > budget and first < len(groups) - 1:
            total -= sizes[first]
            dropped += len(groups[first])
            first += 1
    kept = [m for g in groups[first:] for m in g]
    return Trimmed(messages=[*pinned, *kept], dropped=dropped, estimated_tokens=total)



# -- results -------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    """Encode what json cannot: dataclasses as objects, enums by value, the rest by str."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def encode_result(value: Any) -> str:
    """Return a tool's return value as the text of a tool result (non-strings as JSON)."""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def truncate_output(text: str, limit: int) -> str:
    """Cut a tool result to ``limit`` characters, ending with a line that says so."""
    if len(text) <= limit:
        return text
    return (f"{text[:limit]}\n[truncated: the output was {len(text):,} characters; "
            f"only the first {limit:,} are shown]")


def unique_call_ids(calls: Sequence[ToolCall], turn: int) -> list[ToolCall]:
    """Give each call of one reply its own id: missing ones made up, repeats suffixed."""
    seen: set[str] = set()
    out: list[ToolCall] = []
    for n, call in enumerate(calls, start=1):
        base = call.id or f"call_{turn}_{n}"
        new, k = base, 2
        while new in seen:
            new, k = f"{base}_{k}", k + 1
        seen.add(new)
        out.append(call if new == call.id else dataclasses.replace(call, id=new))
    return out


def call_key(call: ToolCall) -> tuple[str, str]:
    """What makes two calls the same call: the tool name and the arguments."""
    return call.name, json.dumps(call.args, sort_keys=True, ensure_ascii=False, default=str)


# -- the loop ------------------------------------------------------------------------


class Agent:
    """Runs a task: asks the model, runs the tools it calls, and repeats until it answers."""

    def __init__(
        self,
        backend: Backend,
        registry: ToolRegistry,
        system_prompt: str | None = None,
        *,
        max_turns: int = 8,
        on_event: Callable[[AgentEvent], None] | None = None,
        stream: bool = False,
        count_tokens: TokenCounter | Literal["server"] | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        max_calls_per_turn: int = DEFAULT_MAX_CALLS_PER_TURN,
        max_tool_output_chars: int = DEFAULT_MAX_TOOL_OUTPUT_CHARS,
        max_identical_calls: int | None = DEFAULT_MAX_IDENTICAL_CALLS,
    ) -> None:
        for cap, value in (("max_turns", max_turns), ("max_calls_per_turn", max_calls_per_turn),
                           ("max_tool_output_chars", max_tool_output_chars),
                           ("max_identical_calls", max_identical_calls)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      or value < 1):
                raise ValueError(f"{cap} must be an integer of at least 1, got {value!r}")
        self.backend = backend
        self.registry = registry
        self.system_prompt = system_prompt
        self.max_turns = max_turns
        self.on_event = on_event
        self.stream = stream
        if count_tokens == "server":
            self.count_tokens = server_token_counter(backend)
        elif count_tokens is None or callable(count_tokens):
            self.count_tokens = count_tokens or estimate_tokens
        else:
            raise ValueError(f"count_tokens must be a function from text to tokens, 'server' "
                             f"or None, got {count_tokens!r}")
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.max_calls_per_turn = max_calls_per_turn
        self.max_tool_output_chars = max_tool_output_chars
        self.max_identical_calls = max_identical_calls

    def run(self, task: str) -> AgentResult:
        """Run ``task`` to a final answer or to ``max_turns``; return the result."""
        return _Run(self, task).go()


class _Run:
    """The state of one ``Agent.run``: conversation, transcript, turn counter."""

    def __init__(self, agent: Agent, task: str) -> None:
        self.agent = agent
        self.backend = agent.backend
        self.tools = agent.registry.definitions()
        self.native = bool(self.tools) and self.backend.supports_native_tools()
        self.transcript: list[TranscriptEntry] = []
        self.pinned: list[Message] = []
        system = self._system_text()
        if system is not None:
            self.pinned.append(self._record(Message.system(system)))
        self.pinned.append(self._record(Message.user(task)))
        self.turns: list[Message] = []
        self.budget = self._budget()
        # How many times each (name, arguments) has been run, for max_identical_calls.
        self.runs_of: dict[tuple[str, str], int] = {}

    def _system_text(self) -> str | None:
        """The system prompt (the backend adds the tools to it when they aren't native)."""
        return self.agent.system_prompt

    def _budget(self) -> int | None:
        """The usable context in tokens, or None when the backend cannot say."""
        try:
            return self.backend.get_usable_context()
        except PedroLLMError as exc:
            log.info("not trimming the conversation: %s", exc)
            return None

    def _record(self, msg: Message) -> Message:
        """Append a message to the transcript and return it."""
        self.transcript.append(msg)
        return msg

    def _emit(self, kind: EventKind, turn: int, **data: Any) -> None:
        """Record an event (streamed text deltas only go to the callback) and report it."""
        event = AgentEvent(kind=kind, turn=turn, data=data)
        if kind != "delta":
            self.transcript.append(event)
        if self.agent.on_event is not None:
            self.agent.on_event(event)

    def go(self) -> AgentResult:
        """Run the loop: request, run the calls, repeat until an answer or max_turns."""
        count = self.agent.count_tokens
        # The schemas cost tokens either way: in ``tools`` or described in the prompt.
        tool_tokens = count(json.dumps([t.to_openai() for t in self.tools])) if self.tools \
            else 0
        last_text = ""
        for turn in range(1, self.agent.max_turns + 1):
            trimmed = trim_conversation(self.pinned, self.turns, self.budget, count=count,
                                        extra_tokens=tool_tokens)
            self._emit("request", turn, messages=len(trimmed.messages),
                       estimated_tokens=trimmed.estimated_tokens, budget=self.budget,
                       dropped_messages=trimmed.dropped, native_tools=self.native)
            # Without native tools the backend describes them in the system prompt,
            # writes earlier calls as text and parses calls from the reply.
            req = InferenceRequest(messages=trimmed.messages, tools=self.tools,
                                   temperature=self.agent.temperature,
                                   max_tokens=self.agent.max_tokens)
            try:
                resp = self._ask(req, turn)
            except PedroLLMError as exc:
                self._emit("error", turn, error=str(exc), type=type(exc).__name__)
                raise
            calls = list(resp.tool_calls)
            refusals: list[str | None] = [None] * len(calls)
            for bad in resp.invalid_tool_calls:
                # Give every refused call a place in the assistant message, so its error
                # result answers a call the conversation contains.
                calls.append(ToolCall(id=bad.id or "", name=bad.name or "unreadable_tool_call",
                                      args={}))
                refusals.append(f"the tool call could not be read ({bad.error}): "
                                f"{bad.raw[:500]}")
            calls = unique_call_ids(calls, turn)
            cap = self.agent.max_calls_per_turn
            dropped, calls, refusals = calls[cap:], calls[:cap], refusals[:cap]
            last_text = resp.text
            self.turns.append(self._record(Message.assistant(resp.text or None, calls)))
            if not calls:
                self._emit("final", turn, text=resp.text)
                return AgentResult(resp.text, turn, "complete", self.transcript)
            dropped_note = ""
            if dropped:
                dropped_note = (f"\n[{len(dropped)} more tool calls in this reply were not run: "
                                f"at most {cap} calls are run per turn]")
                self._emit("calls_dropped", turn, max_calls_per_turn=cap,
                           dropped=[{"id": c.id, "name": c.name} for c in dropped])
            if turn == self.agent.max_turns:
                break
            repeated = self._over_repeat_limit(calls, refusals)
            if repeated is not None:
                limit = self.agent.max_identical_calls
                self._emit("repeated_call", turn, max_identical_calls=limit,
                           call={"id": repeated.id, "name": repeated.name,
                                 "args": repeated.args},
                           message=f"stopped: the model asked for {repeated.name}"
                                   f"({json.dumps(repeated.args, ensure_ascii=False)}) again "
                                   f"after it had run {limit} times; the calls of this reply "
                                   "were not run")
                return AgentResult(last_text, turn, "repeated_call", self.transcript)
            for i, (call, refusal) in enumerate(zip(calls, refusals, strict=True)):
                self._emit("tool_call", turn, id=call.id, name=call.name, args=call.args)
                content, ok = self._execute(call, refusal)
                if refusal is None:
                    key = call_key(call)
                    self.runs_of[key] = self.runs_of.get(key, 0) + 1
                content = truncate_output(content, self.agent.max_tool_output_chars)
                if i == len(calls) - 1:
                    content += dropped_note
                self.turns.append(self._record(Message.tool(call.id, content, call.name)))
                self._emit("tool_result", turn, id=call.id, name=call.name, ok=ok,
                           content=content)
        unanswered = [{"id": c.id, "name": c.name, "args": c.args}
                      for c in self.turns[-1].tool_calls]
        self._emit("max_turns", self.agent.max_turns, max_turns=self.agent.max_turns,
                   message=f"stopped after {self.agent.max_turns} turns without a final "
                           "answer; the last tool calls were not run",
                   unanswered_calls=unanswered)
        return AgentResult(last_text, self.agent.max_turns, "max_turns", self.transcript)

    def _over_repeat_limit(self, calls: Sequence[ToolCall],
                           refusals: Sequence[str | None]) -> ToolCall | None:
        """The first call of a reply already run ``max_identical_calls`` times, if any."""
        limit = self.agent.max_identical_calls
        if limit is None:
            return None
        for call, refusal in zip(calls, refusals, strict=True):
            if refusal is None and self.runs_of.get(call_key(call), 0) >= limit:
                return call
        return None

    def _ask(self, req: InferenceRequest, turn: int) -> InferenceResponse:
        """Send one request, streamed or not; return the whole reply."""
        if not self.agent.stream:
            return self.backend.infer(req)
        for delta in self.backend.stream(req):
            if delta.response is not None:
                return delta.response
            if delta.content:
                self._emit("delta", turn, content=delta.content)
        raise PedroLLMError("the stream ended without a final reply")

    def _execute(self, call: ToolCall, refused: str | None) -> tuple[str, bool]:
        """Run one call; return the result text and whether it succeeded."""
        if refused is not None:
            return ERROR_PREFIX + refused, False
        tool = self.agent.registry.get(call.name)
        if tool is None:
            known = ", ".join(self.agent.registry.names()) or "none"
            return (f"{ERROR_PREFIX}unknown tool {call.name!r}; available tools: {known}",
                    False)
        problems = tool.check(call.args)
        if problems:
            return (f"{ERROR_PREFIX}invalid arguments for {call.name}: " + "; ".join(problems),
                    False)
        try:
            value = tool.invoke(call.args)
        except Exception as exc:  # a tool's failure is the model's to handle, not a crash
            log.info("tool %s raised %s", call.name, exc, exc_info=True)
            return f"{ERROR_PREFIX}{call.name} raised {type(exc).__name__}: {exc}", False
        return encode_result(value), True
