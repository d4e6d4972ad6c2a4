"""Synthesized replies: what the fake answers a valid request that no fixture covers.

The reply is built the way llama-server builds its own (``server-task.cpp``): the same
objects, keys in the same order, a fresh ``chatcmpl-`` id and ``created`` each time,
``usage`` and ``timings`` counted with the fake's tokenizer (one token per UTF-8 byte),
streams sent one token (here: one character) per chunk. Its text is deterministic and says
what it is: ``fakellama: `` and the last user message. The request's controls are honoured
as a model under llama-server's grammar would honour them: ``max_tokens`` (and its aliases)
cuts the text and gives ``finish_reason: "length"``, a ``stop`` string ends it early, ``n``
gives that many choices, a ``json_schema`` / ``response_format`` is answered with an
instance that validates, ``tool_choice: "required"`` or a named tool with a call whose
arguments validate against the tool's ``parameters``, ``logprobs`` with one entry per token.
The Anthropic Messages and Responses APIs get the same generation in their own shapes, and
their streams are built from the finished reply by ``api_streams``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from fakellama import api_streams
from fakellama.convert import TOKEN_SECONDS, nominal_timings
from fakellama.fixtures import Fixture, SseEvent
from fakellama.matching import request_limit, request_stops
from fakellama.personalities import ModelInfo
from fakellama.prompt import count_prompt_tokens, detokenize
from fakellama.schema_instance import Unsatisfiable, instance
from fakellama.translate import anthropic_as_chat, responses_as_chat
from fakellama.validation import reply_schema
from fakellama.wire import JSON_CONTENT_TYPE, SSE_CONTENT_TYPE, dumps, random_id, sse_event

DONE = "[DONE]"
AUTHORED = "synthesized"
PREFIX = "fakellama: "
_DEFAULT_TEXT = "this reply was synthesized; no fixture matches the request."


@dataclass
class Generation:
    """One choice's generated text (or tool call) and why it ended."""

    text: str
    finish: str
    tokens: int
    call: dict[str, Any] | None = None
    stopping_word: str = ""
    # A prefilled assistant turn the text starts with: not generated, so not counted,
    # cut or searched for stop words, and streamed with the first generated token.
    prefill: str = ""

    def pieces(self) -> list[str]:
        """The text as streamed: one token (character) a chunk, the prefill with the first."""
        generated = list(self.text[len(self.prefill):])
        if not generated:
            return [self.prefill] if self.prefill else []
        return [self.prefill + generated[0], *generated[1:]]


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content
                        if isinstance(p, dict) and isinstance(p.get("text"), str))
    return ""


def reply_text(body: dict[str, Any]) -> str:
    """The deterministic text a synthesized reply carries for a request."""
    asked = ""
    if isinstance(body.get("messages"), list):
        for message in reversed(body["messages"]):
            if isinstance(message, dict) and message.get("role") == "user":
                asked = _content_text(message.get("content"))
                break
    else:
        prompts = prompt_texts(body.get("prompt"))
        asked = prompts[0] if prompts else ""
    asked = " ".join(asked.split())[:200]
    text = PREFIX + (asked or _DEFAULT_TEXT)
    prefill = _prefill(body)
    return prefill + " " + text if prefill else text


def _prefill(body: dict[str, Any]) -> str:
    """The text of a prefilled last assistant turn, which llama-server continues ("" if none)."""
    messages = body.get("messages")
    if isinstance(messages, list) and messages and isinstance(messages[-1], dict) \
            and messages[-1].get("role") == "assistant" and not messages[-1].get("tool_calls"):
        return _content_text(messages[-1].get("content"))
    return ""


def prompt_texts(prompt: Any) -> list[str]:
    """The prompts of a completion request (a list of strings is several prompts)."""
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, dict):
        return [str(prompt.get("prompt_string", ""))]
    if isinstance(prompt, list):
        if prompt and all(isinstance(p, int) for p in prompt):
            return [detokenize(list(prompt))]
        out = []
        for part in prompt:
            if isinstance(part, str):
                out.append(part)
            elif isinstance(part, list):
                out.append(detokenize([t for t in part if isinstance(t, int)]))
            elif isinstance(part, dict):
                out.append(str(part.get("prompt_string", "")))
        return out
    return []


def _chosen_tool(body: dict[str, Any]) -> dict[str, Any] | None:
    """The tool a request forces a call to (tool_choice "required" or named), if any."""
    tools = [t for t in body.get("tools") or [] if isinstance(t, dict)
             and isinstance(t.get("function"), dict)]
    if not tools:
        return None
    choice = body.get("tool_choice")
    if choice == "required":
        return dict(tools[0]["function"])
    if isinstance(choice, dict):
        wanted = (choice.get("function") or {}).get("name")
        for tool in tools:
            if tool["function"].get("name") == wanted:
                return dict(tool["function"])
    return None


def generate(body: dict[str, Any], chat: bool, room: int | None = None) -> Generation:
    """Decide one choice's output for a valid request.

    ``room``: the tokens left in the context after the prompt, where an ``ignore_eos``
    reply with no limit of its own stops.
    """
    limit = request_limit(body)
    if body.get("ignore_eos") is True and limit is None and room is not None:
        limit = max(room, 0)
    if limit == 0:
        # llama-server checks the budget only after a token is generated, so a limit of 0
        # still gives one token (cut, finish_reason "length").
        limit = 1
    grammar = body.get("grammar")
    if isinstance(grammar, str) and grammar:
        raise Unsatisfiable("the reply is constrained by a GBNF grammar, which the fake cannot "
                            "write text for")
    tool = _chosen_tool(body) if chat else None
    if tool is not None:
        arguments = json.dumps(instance(tool.get("parameters") or {"type": "object"}))
        call = {"name": str(tool.get("name", "")), "arguments": arguments}
        spent = len(dumps(call).encode())
        if limit is not None and spent > limit:
            return Generation("", "length", limit)
        return Generation("", "tool_calls", spent, call=call)
    schema = reply_schema(body) if chat else body.get("json_schema")
    prefill = _prefill(body) if chat and schema is None else ""
    # The reply's content is the prefill and what follows it; only what follows is
    # generated, so only that counts against the limit and is searched for stop words.
    text = json.dumps(instance(schema)) if schema is not None else reply_text(body)
    text = text[len(prefill):]
    if body.get("ignore_eos") is True and limit is not None and schema is None and text:
        # The model never ends its turn: the text goes on (the fake repeats it) until the
        # limit (or a stop string) cuts it, as llama-server's ignore_eos does.
        text = (text + " ") * (limit // (len(text.encode()) + 1) + 1)
    finish, stopping_word = "stop", ""
    stops = [(text.find(s), s) for s in request_stops(body) if s in text]
    if stops:
        at, stopping_word = min(stops)
        text = text[:at]
    raw = text.encode()
    spent = len(raw) + len(stopping_word.encode())
    if limit is not None and len(raw) > limit or (limit is not None and spent > limit):
        text = raw[:limit].decode("utf-8", errors="ignore")
        return Generation(prefill + text, "length", limit, prefill=prefill)
    return Generation(prefill + text, finish, spent, stopping_word=stopping_word,
                      prefill=prefill)


def _count(body: dict[str, Any]) -> int:
    value = body.get("n_cmpl", body.get("n"))
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1:
        return int(value)
    return 1


def _usage(prompt_n: int, predicted_n: int) -> dict[str, Any]:
    return {"completion_tokens": predicted_n, "prompt_tokens": prompt_n,
            "total_tokens": prompt_n + predicted_n, "prompt_tokens_details": {"cached_tokens": 0}}


def _token_logprobs(text: str) -> list[dict[str, Any]]:
    """One entry per token (byte): the chosen token is certain, so its logprob is 0."""
    out = []
    for byte in text.encode():
        piece = bytes([byte]).decode("utf-8", errors="ignore")
        entry = {"id": byte, "token": piece, "bytes": [byte], "logprob": 0.0}
        out.append({**entry, "top_logprobs": [dict(entry)]})
    return out


@dataclass
class Synthesized:
    """A synthesized answer: a JSON body, the data payloads of a stream, or its framed events."""

    body: Any = None
    payloads: list[str] | None = None
    framed: list[str] | None = None  # whole `event:` / `data:` blocks (Anthropic, Responses)


_PATHS = {"chat": "/v1/chat/completions", "completion": "/completion",
          "oai_completion": "/v1/completions", "anthropic": "/v1/messages",
          "responses": "/v1/responses"}


def as_fixture(endpoint: str, body: dict[str, Any], info: ModelInfo, stream: bool) -> Fixture:
    """The synthesized reply for one request, as a one-use fixture the replay path serves.

    Serving it like a fixture keeps one path for every personality, fault and framing;
    its metadata says it was synthesized, never recorded.
    """
    if endpoint == "chat":
        made = chat(body, info, stream)
    elif endpoint == "anthropic":
        made = anthropic(body, info, stream)
    elif endpoint == "responses":
        made = responses(body, info, stream)
    else:
        made = completion(body, info, stream, oai=endpoint == "oai_completion")
    path, metadata = _PATHS[endpoint], {"authored": AUTHORED}
    if made.payloads is not None or made.framed is not None:
        # Stamped at the nominal millisecond a token that the timings report, so a fake
        # replaying in real time (--realtime) streams a synthesized reply at that pace too.
        raws = list(made.framed or ()) or [sse_event(p) for p in made.payloads or ()]
        events = tuple(SseEvent(index * TOKEN_SECONDS, raw)
                       for index, raw in enumerate(raws))
        return Fixture("synthesized", "POST", path, body, 200,
                       {"Content-Type": SSE_CONTENT_TYPE}, events=events, metadata=metadata)
    return Fixture("synthesized", "POST", path, body, 200, {"Content-Type": JSON_CONTENT_TYPE},
                   response_body=made.body, metadata=metadata)


def _tool_call(call: dict[str, Any]) -> dict[str, Any]:
    return {"type": "function", "function": dict(call), "id": random_id()}


def chat(body: dict[str, Any], info: ModelInfo, stream: bool) -> Synthesized:
    """A chat.completion (or its stream) for a valid chat request."""
    prompt_n = count_prompt_tokens(body)
    generations = [generate(body, chat=True, room=info.ctx_size - prompt_n)
                   for _ in range(_count(body))]
    predicted = generations[0].tokens  # llama-server's usage for n > 1: the first choice's
    head = {"created": int(time.time()), "id": "chatcmpl-" + random_id(),
            "model": info.name, "system_fingerprint": info.build_info}
    logprobs = body.get("logprobs") is True
    if not stream:
        choices = []
        for index, gen in enumerate(generations):
            message: dict[str, Any] = {"role": "assistant", "content": gen.text}
            if gen.call is not None:
                message["tool_calls"] = [_tool_call(gen.call)]
            choice: dict[str, Any] = {"finish_reason": gen.finish, "index": index,
                                      "message": message}
            if logprobs and gen.text:
                choice["logprobs"] = {"content": _token_logprobs(gen.text[len(gen.prefill):])}
            choices.append(choice)
        return Synthesized(body={
            "choices": choices, "created": head["created"], "model": head["model"],
            "system_fingerprint": head["system_fingerprint"], "object": "chat.completion",
            "usage": _usage(prompt_n, predicted), "id": head["id"],
            "timings": nominal_timings(prompt_n, predicted)})
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    return Synthesized(payloads=list(_chat_stream(head, generations, logprobs, include_usage,
                                                  prompt_n, predicted)))


def _chunk(head: dict[str, Any], choices: list[dict[str, Any]]) -> dict[str, Any]:
    return {"choices": choices, "created": head["created"], "id": head["id"],
            "model": head["model"], "system_fingerprint": head["system_fingerprint"],
            "object": "chat.completion.chunk"}


def _chat_stream(head: dict[str, Any], generations: list[Generation], logprobs: bool,
                 include_usage: bool, prompt_n: int, predicted: int) -> Iterator[str]:
    def delta(index: int, part: dict[str, Any], extra: dict[str, Any] | None = None) -> str:
        choice = {"finish_reason": None, "index": index, "delta": part, **(extra or {})}
        return dumps(_chunk(head, [choice]))

    for index, gen in enumerate(generations):
        yield delta(index, {"role": "assistant", "content": None})
        for position, piece in enumerate(gen.pieces()):
            # A token's logprobs are for the generated token, not the prefill before it.
            token = piece[len(gen.prefill):] if position == 0 else piece
            extra = {"logprobs": {"content": _token_logprobs(token)}} if logprobs else None
            yield delta(index, {"content": piece}, extra)
        if gen.call is not None:
            arguments = gen.call["arguments"]
            first = {"index": 0, "id": random_id(), "type": "function",
                     "function": {"name": gen.call["name"], "arguments": arguments[:1]}}
            yield delta(index, {"tool_calls": [first]})
            for char in arguments[1:]:
                yield delta(index, {"tool_calls": [{"index": 0,
                                                    "function": {"arguments": char}}]})
    finals = [_chunk(head, [{"finish_reason": gen.finish, "index": index, "delta": {}}])
              for index, gen in enumerate(generations)]
    if include_usage:
        usage_chunk = _chunk(head, [])
        usage_chunk["usage"] = _usage(prompt_n, predicted)
        finals.append(usage_chunk)
    finals[-1]["timings"] = nominal_timings(prompt_n, predicted)
    yield from (dumps(f) for f in finals)
    yield DONE


def completion(body: dict[str, Any], info: ModelInfo, stream: bool, oai: bool) -> Synthesized:
    """A /completion (native) or /v1/completions (text_completion) reply for a valid request."""
    prompts = prompt_texts(body.get("prompt")) or [""]
    per_prompt = _count(body)
    results: list[tuple[str, Generation]] = []
    for text in prompts:
        asked = dict(body, prompt=text)
        room = info.ctx_size - len(text.encode())
        results.extend((text, generate(asked, chat=False, room=room)) for _ in range(per_prompt))
    prompt_n = len(prompts[0].encode())
    predicted = results[0][1].tokens  # as for chat: the first result's usage
    head = {"created": int(time.time()), "id": "chatcmpl-" + random_id(),
            "model": info.name, "system_fingerprint": info.build_info}
    if oai:
        return _text_completion(head, results, stream, prompt_n, predicted)
    return _native_completion(body, info, results, stream)


def _text_completion(head: dict[str, Any], results: list[tuple[str, Generation]], stream: bool,
                     prompt_n: int, predicted: int) -> Synthesized:
    def shell(choices: list[dict[str, Any]]) -> dict[str, Any]:
        return {"choices": choices, "created": head["created"], "model": head["model"],
                "system_fingerprint": head["system_fingerprint"], "object": "text_completion",
                "id": head["id"]}

    if not stream:
        out = shell([{"text": g.text, "index": i, "logprobs": None, "finish_reason": g.finish}
                     for i, (_, g) in enumerate(results)])
        out["usage"] = _usage(prompt_n, predicted)
        out = {**{k: out[k] for k in ("choices", "created", "model", "system_fingerprint",
                                      "object", "usage", "id")},
               "timings": nominal_timings(prompt_n, predicted)}
        return Synthesized(body=out)
    payloads = []
    for index, (_, gen) in enumerate(results):
        for char in gen.text:
            payloads.append(dumps(shell([{"text": char, "index": index, "logprobs": None,
                                          "finish_reason": None}])))
    for index, (_, gen) in enumerate(results):
        last = shell([{"text": "", "index": index, "logprobs": None,
                       "finish_reason": gen.finish}])
        payloads.append(dumps(last))
    final = json.loads(payloads[-1])
    final["usage"] = _usage(prompt_n, predicted)
    final["timings"] = nominal_timings(prompt_n, predicted)
    payloads[-1] = dumps(final)
    payloads.append(DONE)
    return Synthesized(payloads=payloads)


def _stop_type(gen: Generation) -> str:
    if gen.finish == "length":
        return "limit"
    return "word" if gen.stopping_word else "eos"


def _native_completion(body: dict[str, Any], info: ModelInfo,
                       results: list[tuple[str, Generation]], stream: bool) -> Synthesized:
    def final(index: int, prompt: str, gen: Generation, content: str) -> dict[str, Any]:
        prompt_n = len(prompt.encode())
        return {"index": index, "content": content, "tokens": [], "id_slot": 0, "stop": True,
                "model": info.name, "tokens_predicted": gen.tokens,
                "tokens_evaluated": prompt_n,
                "generation_settings": {"n_predict": request_limit(body) or -1,
                                        "stop": request_stops(body), "stream": stream},
                "prompt": prompt, "has_new_line": "\n" in gen.text, "truncated": False,
                "stop_type": _stop_type(gen), "stopping_word": gen.stopping_word,
                "tokens_cached": prompt_n + gen.tokens,
                "timings": nominal_timings(prompt_n, gen.tokens)}

    if not stream:
        if len(results) == 1:
            prompt, gen = results[0]
            return Synthesized(body=final(0, prompt, gen, gen.text))
        # Several prompts or n > 1: llama-server answers a JSON array of results.
        return Synthesized(body=[final(i, p, g, g.text) for i, (p, g) in enumerate(results)])
    payloads = []
    for index, (prompt, gen) in enumerate(results):
        for position, char in enumerate(gen.text, start=1):
            # Partial results carry their token ids and no slot yet (id_slot -1).
            payloads.append(dumps({"index": index, "content": char, "tokens": list(char.encode()),
                                   "stop": False, "id_slot": -1, "tokens_predicted": position,
                                   "tokens_evaluated": len(prompt.encode())}))
        payloads.append(dumps(final(index, prompt, gen, "")))
    return Synthesized(payloads=payloads)


def _anthropic_generation_body(body: dict[str, Any]) -> dict[str, Any]:
    """The chat body an Anthropic request becomes, with a named tool_choice kept by name.

    llama-server turns {"type": "tool", "name": ...} into "required" (any tool); a model
    calling the named one satisfies both, so the fake calls that one when it is offered.
    """
    chat_body = anthropic_as_chat(body)
    choice = body.get("tool_choice")
    name = choice.get("name") if isinstance(choice, dict) and choice.get("type") == "tool" \
        else None
    offered = [t["function"].get("name") for t in chat_body.get("tools") or []]
    if isinstance(name, str) and name in offered:
        chat_body["tool_choice"] = {"type": "function", "function": {"name": name}}
    return chat_body


def _per_token(gen: Generation) -> Callable[[str], list[str]]:
    """How a choice's text is split into stream events: as the chat stream splits it."""
    def split(text: str) -> list[str]:
        return gen.pieces() if text == gen.text else list(text)
    return split


def anthropic(body: dict[str, Any], info: ModelInfo, stream: bool = False) -> Synthesized:
    """An Anthropic Messages reply (or its event stream) for a valid request."""
    chat_body = _anthropic_generation_body(body)
    gen = generate(chat_body, chat=True)
    # As to_json_anthropic: a stop word or the end of turn is "end_turn" (the word goes in
    # stop_sequence), a tool call "tool_use", the token limit "max_tokens".
    reason = "max_tokens" if gen.finish == "length" else (
        "tool_use" if gen.call is not None else "end_turn")
    content: list[dict[str, Any]] = []
    if gen.text:
        content.append({"type": "text", "text": gen.text})
    if gen.call is not None:
        content.append({"type": "tool_use", "id": random_id(), "name": gen.call["name"],
                        "input": json.loads(gen.call["arguments"])})
    message = {
        "id": "chatcmpl-" + random_id(), "type": "message", "role": "assistant",
        "content": content, "model": info.name,
        "stop_reason": reason, "stop_sequence": gen.stopping_word or None,
        "usage": {"cache_read_input_tokens": 0, "input_tokens": count_prompt_tokens(chat_body),
                  "output_tokens": gen.tokens}}
    if not stream:
        return Synthesized(body=message)
    if gen.call is not None:
        content[-1] = dict(content[-1], arguments=gen.call["arguments"])
    events = api_streams.anthropic_events(message, _per_token(gen))
    return Synthesized(framed=[api_streams.frame(name, data) for name, data in events])


def responses(body: dict[str, Any], info: ModelInfo, stream: bool = False) -> Synthesized:
    """A Responses API reply (or its event stream) for a valid request.

    With ``n`` > 1 llama-server answers one whole response per choice: a JSON array, or
    their streams interleaved token by token.
    """
    chat_body = responses_as_chat(body)
    prompt_n = count_prompt_tokens(chat_body)
    generations = [generate(chat_body, chat=True) for _ in range(_count(chat_body))]
    replies = [_one_response(gen, info, prompt_n) for gen in generations]
    if not stream:
        bodies = [response for response, _ in replies]
        return Synthesized(body=bodies[0] if len(bodies) == 1 else bodies)
    streams = [api_streams.responses_events(response, _per_token(gen),
                                            nominal_timings(prompt_n, tokens))
               for (response, tokens), gen in zip(replies, generations, strict=True)]
    events = api_streams.interleave(streams)
    return Synthesized(framed=[api_streams.frame(name, data) for name, data in events])


def _one_response(gen: Generation, info: ModelInfo, prompt_n: int) -> tuple[dict[str, Any], int]:
    """One choice as a whole /v1/responses body, with the tokens it generated."""
    now = int(time.time())
    output: list[dict[str, Any]] = []
    if gen.text:
        output.append({"content": [{"type": "output_text", "annotations": [], "logprobs": [],
                                    "text": gen.text}],
                       "id": "msg_" + random_id(), "role": "assistant", "status": "completed",
                       "type": "message"})
    if gen.call is not None:
        call_id = random_id()  # llama-server's one id per call, behind two prefixes
        output.append({"id": "fc_" + call_id, "type": "function_call", "status": "completed",
                       "arguments": gen.call["arguments"], "call_id": "call_" + call_id,
                       "name": gen.call["name"]})
    response = {
        "completed_at": now, "created_at": now, "id": "resp_" + random_id(),
        "model": info.name, "object": "response", "output": output, "status": "completed",
        "usage": {"input_tokens": prompt_n, "output_tokens": gen.tokens,
                  "total_tokens": prompt_n + gen.tokens,
                  "input_tokens_details": {"cached_tokens": 0}}}
    return response, gen.tokens
