"""The SDK's data types: requests, responses, messages and tool calls.

Every type is a dataclass that round-trips through JSON with ``to_json`` /
``from_json`` (dataclasses-json).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from dataclasses_json import DataClassJsonMixin

Role = Literal["system", "user", "assistant", "tool"]
NextAction = Literal["CONTINUE", "COMPLETE"]
#: How hard a thinking model should think (see ``InferenceRequest.think``).
ThinkLevel = Literal["low", "medium", "high"]
THINK_LEVELS: tuple[str, ...] = ("low", "medium", "high")


@dataclass
class ToolDefinition(DataClassJsonMixin):
    """A tool offered to the model: a name, a description and a JSON-schema object."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )

    def to_openai(self) -> dict[str, Any]:
        """Return the OpenAI ``tools`` entry for this definition."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": self.parameters,
            },
        }


@dataclass
class ToolCall(DataClassJsonMixin):
    """A tool call the model asked for, with its arguments decoded to a dict."""

    id: str
    name: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass
class InvalidToolCall(DataClassJsonMixin):
    """A tool call that could not be decoded: the raw text and why it was refused."""

    raw: str
    error: str
    name: str | None = None
    id: str | None = None


@dataclass
class Image(DataClassJsonMixin):
    """An image in a user message: an http(s) URL, or a ``data:image/...;base64,`` URL.

    Build one with :func:`pedrollm.image` (a path, bytes or a URL), which checks it.
    """

    url: str

    @property
    def mime_type(self) -> str | None:
        """The type a ``data:`` URL declares (``image/png``...); None for an http(s) URL."""
        if self.url.startswith("data:"):
            return self.url[len("data:"):].split(";", 1)[0] or None
        return None


@dataclass
class Message(DataClassJsonMixin):
    """One chat message: system, user, assistant (maybe with tool calls) or a tool result.

    A user message may carry ``images`` beside its text; they are sent after the text.
    """

    role: Role
    content: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)
    tool_call_id: str | None = None
    name: str | None = None
    images: list[Image] = field(default_factory=list)

    @classmethod
    def system(cls, content: str) -> Message:
        """Build a system message."""
        return cls(role="system", content=content)

    @classmethod
    def user(cls, content: str, images: list[Image] | None = None) -> Message:
        """Build a user message, optionally with images (see :func:`pedrollm.image`)."""
        return cls(role="user", content=content, images=list(images or []))

    @classmethod
    def assistant(cls, content: str | None, tool_calls: list[ToolCall] | None = None) -> Message:
        """Build an assistant message, optionally carrying tool calls."""
        return cls(role="assistant", content=content, tool_calls=list(tool_calls or []))

    @classmethod
    def tool(cls, tool_call_id: str, content: str, name: str | None = None) -> Message:
        """Build a tool-result message answering the call ``tool_call_id``."""
        return cls(role="tool", content=content, tool_call_id=tool_call_id, name=name)


@dataclass
class InferenceRequest(DataClassJsonMixin):
    """What to ask the model: prompts or a message list, tools and sampling controls.

    Give either ``system_prompt``/``user_prompt`` or a full ``messages`` list; when
    both are given the prompts are placed around the list (system first, user last).
    ``extra`` is merged into the request body unchanged, for server options the SDK
    does not name.
    """

    system_prompt: str | None = None
    user_prompt: str | None = None
    messages: list[Message] = field(default_factory=list)
    model: str | None = None
    temperature: float | None = None
    max_tokens: int | None = None
    tools: list[ToolDefinition] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    top_p: float | None = None
    top_k: int | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    grammar: str | None = None
    json_schema: dict[str, Any] | None = None
    n_probs: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: Seconds the whole request may take, retries and a stream's last token included
    #: (None: the backend's ``deadline`` setting, which is off by default).
    deadline: float | None = None
    #: Thinking control for reasoning models: True or False turns thinking on or off,
    #: "low"/"medium"/"high" sets its effort (and turns it on); None leaves the server's
    #: default. Each backend maps it to its server's fields (docs/backends-comparison.md);
    #: the thinking comes back in ``InferenceResponse.reasoning``, apart from the text.
    think: bool | ThinkLevel | None = None

    def all_messages(self) -> list[Message]:
        """Return the conversation to send: system prompt, messages, then user prompt."""
        out: list[Message] = []
        if self.system_prompt is not None:
            out.append(Message.system(self.system_prompt))
        out.extend(self.messages)
        if self.user_prompt is not None:
            out.append(Message.user(self.user_prompt))
        return out


@dataclass
class Usage(DataClassJsonMixin):
    """Token counts for one request."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


@dataclass
class Timings(DataClassJsonMixin):
    """llama-server's ``timings`` block: prompt and generation speed."""

    prompt_n: int | None = None
    prompt_ms: float | None = None
    prompt_per_token_ms: float | None = None
    prompt_per_second: float | None = None
    predicted_n: int | None = None
    predicted_ms: float | None = None
    predicted_per_token_ms: float | None = None
    predicted_per_second: float | None = None
    cache_n: int | None = None


@dataclass
class InferenceResponse(DataClassJsonMixin):
    """The model's reply: text, tool calls (valid and invalid), reasoning and accounting."""

    text: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    invalid_tool_calls: list[InvalidToolCall] = field(default_factory=list)
    reasoning: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    timings: Timings | None = None
    model: str | None = None

    @property
    def next_action(self) -> NextAction:
        """``CONTINUE`` when there are tool calls to run, else ``COMPLETE``."""
        return "CONTINUE" if self.tool_calls else "COMPLETE"

    def to_message(self) -> Message:
        """Return this reply as the assistant message to append to a conversation."""
        return Message.assistant(self.text or None, self.tool_calls)

    def to_dict(self, encode_json: bool = False) -> dict[str, Any]:
        """Return a JSON-ready dict, including the derived ``next_action``."""
        out = super().to_dict(encode_json=encode_json)
        out["next_action"] = self.next_action
        return out


@dataclass
class ToolCallDelta(DataClassJsonMixin):
    """A fragment of a streamed tool call; ``index`` says which call it extends."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass
class StreamDelta(DataClassJsonMixin):
    """One step of a streamed reply.

    Intermediate deltas carry ``content``, ``reasoning`` or a ``tool_call`` fragment;
    the last one carries ``response``: the same InferenceResponse ``infer`` returns.
    """

    content: str = ""
    reasoning: str = ""
    tool_call: ToolCallDelta | None = None
    response: InferenceResponse | None = None

    @property
    def done(self) -> bool:
        """True on the final delta, the one that carries the whole response."""
        return self.response is not None


@dataclass
class ModelInfo(DataClassJsonMixin):
    """One model a server lists."""

    id: str
    context_window: int | None = None
    owned_by: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class ServerInfo(DataClassJsonMixin):
    """What discovery learned about a server."""

    backend: str
    server_url: str
    model: str | None = None
    context_window: int | None = None
    native_tools: bool | None = None
    version: str | None = None
    chat_template: str | None = None
    #: The model format tool calls are read in when they come as text.
    tool_call_format: str | None = None
    #: How tools reach the server: native, constrained (the reply held to a tool call
    #: or an answer by a JSON schema) or prompt (described in the prompt only).
    tool_mode: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
