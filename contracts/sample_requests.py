"""The requests the contract clauses send, in one place.

The fake server's bundled fixtures are recorded by running the suite against a
real llama-server through fakellama's recorder, so the suite and the fixtures
agree as long as these requests stay as they are: change one, record again.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass
from typing import Any, Literal

from pedrollm.images import image_from_bytes
from pedrollm.types import InferenceRequest, Message, ToolCall, ToolDefinition

WEATHER_TOOL = ToolDefinition(
    name="get_weather",
    description="Get the current weather for a city",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string", "description": "The city name"}},
        "required": ["city"],
    },
)

WEATHER_QUESTION = "What is the weather in Paris?"
WEATHER_RESULT = "sunny, 22 C"

def greedy(**fields: Any) -> InferenceRequest:
    """A request with deterministic sampling, so a stream and a whole reply compare."""
    return InferenceRequest(temperature=0.0, seed=42, **fields)


def chat() -> InferenceRequest:
    """A plain question, no tools."""
    return greedy(user_prompt="Say hello in one short sentence.", max_tokens=48)


def tool_call() -> InferenceRequest:
    """A question the weather tool answers."""
    return greedy(user_prompt=WEATHER_QUESTION, tools=[WEATHER_TOOL], max_tokens=96)


def tool_result_turn() -> InferenceRequest:
    """The conversation after the tool ran: question, the call, its result."""
    return greedy(
        messages=[
            Message.user(WEATHER_QUESTION),
            Message.assistant(None, [ToolCall("call_weather_1", "get_weather",
                                              {"city": "Paris"})]),
            Message.tool("call_weather_1", WEATHER_RESULT, name="get_weather"),
        ],
        tools=[WEATHER_TOOL],
        max_tokens=96,
    )


YES_NO_GRAMMAR = 'root ::= "yes" | "no"'

BOOLEAN_SCHEMA = {
    "type": "object",
    "properties": {"ok": {"type": "boolean"}},
    "required": ["ok"],
    "additionalProperties": False,
}


def grammar() -> InferenceRequest:
    """A question whose answer a GBNF grammar limits to yes or no."""
    return greedy(user_prompt="Is water wet? Answer yes or no.",
                            grammar=YES_NO_GRAMMAR, max_tokens=8)


def json_schema() -> InferenceRequest:
    """A question whose answer a JSON schema limits to one boolean field."""
    return greedy(user_prompt="Is water wet? Answer in JSON.",
                            json_schema=BOOLEAN_SCHEMA, max_tokens=64)


#: At least one character: a model cannot end its turn before max_tokens cuts it.
NOT_EMPTY_GRAMMAR = "root ::= [A-Za-z ,.']+"


def one_token() -> InferenceRequest:
    """A request cut off after one token (a grammar forbids ending before it)."""
    return greedy(user_prompt="Tell me a long story about a lighthouse.",
                  grammar=NOT_EMPTY_GRAMMAR, max_tokens=1)


def long_story() -> InferenceRequest:
    """A reply 2,000 tokens long whatever the model (``ignore_eos``), for leaving early.

    llama-server and vLLM read ``ignore_eos``; servers without it ignore the field, and
    a reply that ends before the stream is left makes the clause inconclusive.
    """
    return greedy(user_prompt="Tell me a long story about a lighthouse.", max_tokens=2000,
                  extra={"ignore_eos": True})


def overflow(context_window: int) -> InferenceRequest:
    """A prompt about twice as long as the context window, in tokens of any tokenizer."""
    words = " ".join(f"word{i}" for i in range(context_window * 2))
    return InferenceRequest(user_prompt=words, max_tokens=8)


def counted() -> InferenceRequest:
    """A request whose prompt is counted, then sent for one token to compare with usage."""
    return greedy(system_prompt="You answer in one word.",
                  user_prompt="How many tokens does this question take?", max_tokens=1)


def counted_with_tools() -> InferenceRequest:
    """The same, offering a tool: its schema is part of the prompt as the server sends it."""
    return greedy(user_prompt="How many tokens does this question take, with a tool?",
                  tools=[WEATHER_TOOL], max_tokens=1)


class WaterState(enum.Enum):
    """A state of matter (an Enum field of the structured-output clause)."""

    LIQUID = "liquid"
    SOLID = "solid"
    GAS = "gas"


@dataclass
class Reason:
    """A nested object of the structured-output clause."""

    everyday: bool


@dataclass
class WaterFacts:
    """What the structured-output clause asks for; every field's values are bounded, so a
    constrained model can always finish within max_tokens."""

    wet: bool
    state: WaterState
    temperature: Literal["cold", "warm", "hot"]
    reason: Reason


def structured() -> InferenceRequest:
    """A question answered as a WaterFacts (the SDK adds the schema).

    400 tokens: the scripted model fills the whitespace the schema allows (up to 20
    characters between tokens) before it closes the object.
    """
    return greedy(user_prompt="Describe water at room temperature as JSON.", max_tokens=400)
def red_square_png(size: int = 32) -> bytes:
    """A PNG of one red square, made here: large enough for a vision model's preprocessing."""
    def part(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))

    rows = b"".join(b"\x00" + b"\xff\x00\x00" * size for _ in range(size))
    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + part(b"IHDR", header) + part(b"IDAT", zlib.compress(rows))
            + part(b"IEND", b""))


def image_question() -> InferenceRequest:
    """A question about an image sent with it."""
    return greedy(messages=[Message.user("What colour is this image? Answer in one word.",
                                         [image_from_bytes(red_square_png())])],
                  max_tokens=16)


def thinking(think: bool = True) -> InferenceRequest:
    """A question asked with thinking turned on (or off)."""
    return greedy(user_prompt="What is 17 + 25? Answer with the number.", think=think,
                  max_tokens=256)
