"""llama-server's own checks on a request body: the status, error type and message it answers.

Each check follows the pinned llama-server's source (``tools/server/server-common.cpp``
``oaicompat_chat_params_parse``, ``server-schema.cpp`` field parsing, ``common/json-schema.cpp``)
in the order the real server runs them, so the first complaint is the same one. A
``std::invalid_argument`` there is a 400 ``invalid_request_error``; any other exception is a
500 ``server_error`` (``ex_wrapper`` in ``server.cpp``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from fakellama.translate import Untranslatable, anthropic_as_chat, responses_as_chat

INVALID = "invalid_request_error"
SERVER = "server_error"

# The generation parameters llama-server's schema reads (server-schema.cpp), in its order,
# so the first complaint is the same: (names, kind, hard limits). The first of a field's
# names present is the one read and named. nlohmann::json's get<T>() decides the types:
# a boolean field takes only booleans, a number field numbers and booleans (truncated to
# an integer where the field is one). A field with hard limits refuses values outside them.
INT32_MAX = 2**31 - 1
FAKE_VOCAB = 256  # the fake's tokenizer: one token per byte value
N_PARALLEL = 4  # llama-server's slots when started without --parallel; caps "n"
_SCHEMA_FIELDS: tuple[tuple[tuple[str, ...], str, tuple[int, int] | None], ...] = (
    (("verbose",), "bool", None), (("timings_per_token",), "bool", None),
    (("stream",), "bool", None), (("include_usage",), "nested", None),
    (("cache_prompt",), "bool", None), (("return_tokens",), "bool", None),
    (("return_progress",), "bool", None), (("sse_ping_interval",), "int", (-1, INT32_MAX)),
    (("n_predict", "max_completion_tokens", "max_tokens"), "int", (-1, INT32_MAX)),
    (("n_indent",), "int", (0, INT32_MAX)), (("n_keep",), "int", (-1, INT32_MAX)),
    (("n_discard",), "int", (0, INT32_MAX)), (("n_cmpl", "n"), "int", (1, N_PARALLEL)),
    (("n_cache_reuse",), "int", (0, INT32_MAX)), (("t_max_predict_ms",), "int", (-1, 2**63 - 1)),
    (("top_k",), "int", None), (("top_p",), "num", None), (("min_p",), "num", None),
    (("top_n_sigma",), "num", None), (("xtc_probability",), "num", None),
    (("xtc_threshold",), "num", None), (("typical_p",), "num", None),
    (("temperature",), "num", None), (("dynatemp_range",), "num", None),
    (("dynatemp_exponent",), "num", None), (("repeat_last_n",), "int", (0, INT32_MAX)),
    (("repeat_penalty",), "num", None), (("frequency_penalty",), "num", None),
    (("presence_penalty",), "num", None), (("dry_multiplier",), "num", None),
    (("dry_base",), "num", None), (("dry_allowed_length",), "int", (0, INT32_MAX)),
    (("dry_penalty_last_n",), "int", (0, INT32_MAX)), (("mirostat",), "int", None),
    (("mirostat_tau",), "num", None), (("mirostat_eta",), "num", None),
    (("seed",), "int", None), (("n_probs", "logprobs"), "int", None),
    (("min_keep",), "int", (0, INT32_MAX)), (("backend_sampling",), "bool", None),
    (("post_sampling_probs",), "bool", None), (("dry_sequence_breakers",), "breakers", None),
    (("json_schema",), "schema", None), (("grammar_lazy",), "bool", None),
    (("reasoning_budget_tokens",), "int", None),
    (("ignore_eos",), "bool", None), (("stop",), "stop", None),
)
_FIELD_NAMES = frozenset(name for names, _, _ in _SCHEMA_FIELDS for name in names)
_SCHEMA_TYPES = frozenset({"object", "string", "array", "integer", "number", "boolean", "null"})


@dataclass(frozen=True)
class Refusal:
    """llama-server's answer to an invalid request."""

    status: int
    message: str
    error_type: str
    extra: dict[str, Any] = field(default_factory=dict)


def _is_obj_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, dict) for v in value)


def _bad(message: str) -> Refusal:
    return Refusal(400, message, INVALID)


def _server(message: str) -> Refusal:
    return Refusal(500, message, SERVER)


def json_type_name(value: Any) -> str:
    """nlohmann::json's name for a value's type (as in its type_error messages)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(expected: str, value: Any) -> str:
    return (f"[json.exception.type_error.302] type must be {expected}, but is "
            f"{json_type_name(value)}")


def _field_types(body: dict[str, Any], read_schema: bool = True) -> Refusal | None:
    """The schema's checks on generation parameters (a null value means absent).

    read_schema: False for a chat, whose schema became a grammar before this step.
    """
    given = body.keys() & _FIELD_NAMES
    for names, kind, limits in _SCHEMA_FIELDS:
        if kind == "schema" and not read_schema:
            continue
        if kind != "nested" and given.isdisjoint(names):
            continue  # most requests set few of these fields: skip the rest cheaply
        source = body.get("stream_options") if kind == "nested" else body
        if not isinstance(source, dict):
            continue
        present = [n for n in names if source.get(n) is not None]
        if not present:
            continue
        name, value = present[0], source[present[0]]
        if kind == "stop":
            words = value if isinstance(value, list) else []
            for word in words:  # empty ones (null, [], {}, "") are skipped, others read as text
                if word not in (None, [], {}, "") and not isinstance(word, str):
                    return _bad(f"Field 'stop': {_type_error('string', word)}")
            continue
        if kind == "breakers":
            if not (isinstance(value, list) and value and all(isinstance(v, str) for v in value)):
                return _bad("Field 'dry_sequence_breakers': Error: dry_sequence_breakers must be "
                            "a non-empty array of strings")
            continue
        if kind == "schema":
            if "grammar" in source:
                continue  # a grammar field, even empty, makes the schema unread
            schema = value if isinstance(value, dict) and value else (
                {"type": "object"} if isinstance(value, dict) else value)
            if (problem := schema_error(schema)) is not None:
                return _bad(f"Field 'json_schema': \"json_schema\": JSON schema conversion "
                            f"failed:\n{problem}")
            continue
        if kind in ("bool", "nested"):
            if not isinstance(value, bool):
                return _bad(f"Field '{name}': {_type_error('boolean', value)}")
            continue
        if not isinstance(value, (int, float)):
            return _bad(f"Field '{name}': {_type_error('number', value)}")
        if limits is not None:
            number = int(value)  # get<int>: booleans are 0 or 1, fractions truncated
            if not limits[0] <= number <= limits[1]:
                return _bad(f"Field '{name}': Value must be between {limits[0]} <= value <= "
                            f"{limits[1]}, but got {number}")
    return None


def schema_error(schema: Any, path: str = "#") -> str | None:
    """The first complaint llama-server's JSON-schema reader has about a schema, if any."""
    if not isinstance(schema, dict):
        return f"JSON schema error at {path}: schema must be an object"
    if "$ref" in schema:
        ref = schema["$ref"]
        if not isinstance(ref, str):
            return f"JSON schema error at {path}: $ref must be a string"
        if not ref.startswith("#/"):
            return (f"JSON schema error at {path}: unsupported $ref {ref}, only references "
                    f"into the same document are supported")
        return None
    for key in ("oneOf", "anyOf"):
        if key in schema:
            alts = schema[key]
            where = f"{path}/{key}"
            if not isinstance(alts, list):
                return f"JSON schema error at {where}: must be an array of schemas"
            if not alts:
                return f"JSON schema error at {where}: must not be empty"
            for i, alt in enumerate(alts):
                if (problem := schema_error(alt, f"{where}/{i}")) is not None:
                    return problem
            return None
    kind = schema.get("type")
    if isinstance(kind, list):
        if not kind:
            return f"JSON schema error at {path}: type must not be empty"
        for i, one in enumerate(kind):
            if (problem := schema_error(dict(schema, type=one), f"{path}/type/{i}")) is not None:
                return problem
        return None
    if "const" in schema:
        return None
    if "enum" in schema:
        values = schema["enum"]
        if not isinstance(values, list) or not values:
            return f"JSON schema error at {path}: enum must be a non-empty array"
        return None
    if kind is not None and not isinstance(kind, str):
        return f"JSON schema error at {path}: type must be a string or an array of strings"
    if isinstance(kind, str) and kind and kind not in _SCHEMA_TYPES:
        return f"JSON schema error at {path}: unrecognized type {kind}"
    properties = schema.get("properties")
    if "properties" in schema and not isinstance(properties, dict):
        return f"JSON schema error at {path}: properties must be an object"
    for name, sub in (properties or {}).items():
        if (problem := schema_error(sub, f"{path}/properties/{name}")) is not None:
            return problem
    items = schema.get("items")
    if isinstance(items, dict) and (problem := schema_error(items, f"{path}/items")) is not None:
        return problem
    return None


def _response_format_schema(body: dict[str, Any]) -> tuple[Any, Refusal | None]:
    """The schema a request constrains its reply to (None for none), as llama-server reads it."""
    schema = body.get("json_schema")
    if "response_format" in body:
        response_format = body.get("response_format")
        if not isinstance(response_format, dict):
            response_format = {}
        kind = response_format.get("type")
        kind = kind if isinstance(kind, str) else ""
        if kind == "json_object":
            if "schema" in response_format or not schema:
                schema = response_format.get("schema") or {}
        elif kind == "json_schema":
            wrapper = response_format.get("json_schema")
            wrapper = wrapper if isinstance(wrapper, dict) else {}
            schema = wrapper.get("schema") or {}
        elif kind and kind != "text":
            return None, _bad('response_format type must be one of "text" or "json_object", '
                              f"but got: {kind}")
    if isinstance(schema, dict) and not schema:
        schema = {"type": "object"}
    return schema, None


def reply_schema(body: dict[str, Any]) -> Any:
    """The JSON schema a valid chat request constrains its reply to, or None."""
    return _response_format_schema(body)[0]


def check_chat(body: Any, generating: bool = True) -> Refusal | None:
    """llama-server's complaint about a /v1/chat/completions body, or None if it is valid.

    generating: the body goes on to generation, whose parameters are type-checked too
    (/apply-template and token counting stop before that).
    """
    if not isinstance(body, dict):
        return _bad("'messages' is required")
    grammar = body.get("grammar")
    if body.get("json_schema") is not None and isinstance(grammar, str) and grammar:
        return _server("Cannot use both json_schema and grammar")
    schema, refusal = _response_format_schema(body)
    if refusal is not None:
        return refusal
    if "messages" not in body:
        return _bad("'messages' is required")
    messages = body["messages"]
    if not isinstance(messages, list):
        return _bad("Expected 'messages' to be an array")
    for message in messages:
        message = message if isinstance(message, dict) else {}
        role = message.get("role") if isinstance(message.get("role"), str) else ""
        if role != "assistant" and "content" not in message:
            return _bad("All non-assistant messages must contain 'content'")
        if role == "assistant":
            if "content" not in message and "tool_calls" not in message:
                return _bad("Assistant message must contain either 'content' or 'tool_calls'!")
            if "content" not in message:
                continue
        content = message["content"]
        if content is None or isinstance(content, str):
            continue
        if not isinstance(content, list):
            return _bad("Expected 'content' to be a string or an array")
        for part in content:
            kind = part.get("type") if isinstance(part, dict) else None
            kind = kind if isinstance(kind, str) else ""
            if kind == "image_url":
                return _server("image input is not supported - hint: if this is unexpected, "
                               "you may need to provide the mmproj")
            if kind == "input_audio":
                return _server("audio input is not supported - hint: if this is unexpected, "
                               "you may need to provide the mmproj")
            if kind in ("input_video", "video_url"):
                return _server("video input is not supported - hint: if this is unexpected, "
                               "you may need to provide the mmproj")
            if kind != "text":
                return _bad("unsupported content[].type")
    if (problem := _message_problem(messages)) is not None:
        return _server(f"Failed to parse messages: {problem}")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        return _server(f"Failed to parse tools: Expected 'tools' to be an array, got "
                       f"{json.dumps(tools, separators=(',', ':'), ensure_ascii=False)}; "
                       f"tools = {json.dumps(tools, indent=2, ensure_ascii=False)}")
    continuing = bool(body.get("continue_final_message"))
    add_generation_prompt = body.get("add_generation_prompt", True)
    roles = [m.get("role") if isinstance(m, dict) else None for m in messages]
    if not continuing and roles and roles[-1] == "assistant":
        # llama-server prefills a last assistant turn: it continues that message.
        if len(roles) >= 2 and roles[-2] == "assistant":
            return _bad("Cannot have 2 or more assistant messages at the end of the list.")
        continuing, add_generation_prompt = True, False
    if continuing and add_generation_prompt is True:
        return _bad("Cannot set both add_generation_prompt and continue_final_message to true.")
    if (refusal := _reasoning_format_refusal(body)) is not None:
        return refusal
    if isinstance(tools, list) and tools and body.get("tool_choice") != "none" \
            and "grammar" in body:
        return _bad("Cannot use custom grammar constraints with tools.")
    kwargs = body.get("chat_template_kwargs")
    if isinstance(kwargs, dict) and isinstance(kwargs.get("enable_thinking"), str):
        # Each template argument is kept as its JSON text; a quoted one is a string.
        return _bad('invalid type for "enable_thinking" (expected boolean, got string)')
    if schema is not None and (problem := schema_error(schema)) is not None:
        return _bad("Unable to generate parser for this template. Automatic parser generation "
                    f"failed: {problem}")
    if body.get("logprobs") is True and isinstance(tools, list) and tools \
            and body.get("stream") is True:
        return _bad("logprobs is not supported with tools + stream")
    if body.get("logprobs") is not True and body.get("top_logprobs") is not None:
        return _bad("top_logprobs requires logprobs to be set to true")
    return _field_types(body, read_schema=False) if generating else None


REASONING_FORMATS = ("none", "auto", "deepseek", "deepseek-legacy")


def _reasoning_format_refusal(body: dict[str, Any]) -> Refusal | None:
    """common_reasoning_format_from_name's complaint about a request's reasoning_format."""
    if "reasoning_format" not in body:
        return None
    value = body["reasoning_format"]
    if not isinstance(value, str):
        # get<std::string>() throws a json type_error, which the server answers with a 400.
        return _bad(_type_error("string", value))
    if value not in REASONING_FORMATS:
        return _server(f"Unknown reasoning format: {value}")
    return None


def _dump(value: Any) -> str:
    """nlohmann::json's compact dump()."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _items(value: Any) -> list[Any]:
    """What a C++ range-for over a JSON value visits: array items, object values, else itself."""
    if value is None:
        return []
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        return list(value.values())
    return [value]


def _string_field(value: Any) -> str | None:
    if isinstance(value, str):
        return None
    return f"[json.exception.type_error.302] type must be string, but is {json_type_name(value)}"


def _message_problem(messages: list[Any]) -> str | None:
    """common_chat_msgs_parse_oaicompat's complaint about the messages (common/chat.cpp)."""
    for message in messages:
        if not isinstance(message, dict):
            return f"Expected 'message' to be an object, got {_dump(message)}"
        if "role" not in message:
            return f"Missing 'role' in message: {_dump(message)}"
        if (problem := _string_field(message["role"])) is not None:
            return problem
        content = message.get("content")
        if isinstance(content, list):
            for part in content:  # media parts were refused before: these are text parts
                if "text" not in part:
                    return "[json.exception.out_of_range.403] key 'text' not found"
                if (problem := _string_field(part["text"])) is not None:
                    return problem
        for call in _items(message.get("tool_calls")) if "tool_calls" in message else []:
            if not isinstance(call, dict) or "type" not in call:
                return f"Missing tool call type: {_dump(call)}"
            if call["type"] != "function":
                return f"Unsupported tool call type: {_dump(call)}"
            function = call.get("function")
            if "function" not in call:
                return f"Missing tool call function: {_dump(call)}"
            if not isinstance(function, dict) or "name" not in function:
                return f"Missing tool call name: {_dump(call)}"
            if (problem := _string_field(function["name"])) is not None:
                return problem
            if "arguments" not in function:
                return "[json.exception.out_of_range.403] key 'arguments' not found"
            if "id" in call and (problem := _string_field(call["id"])) is not None:
                return problem
        if "content" not in message and "tool_calls" not in message:
            return ("Expected 'content' or 'tool_calls' (ref: https://github.com/ggml-org/"
                    "llama.cpp/issues/8367 & https://github.com/ggml-org/llama.cpp/issues/12279)")
        for key in ("reasoning_content", "name", "tool_call_id"):
            if key in message and (problem := _string_field(message[key])) is not None:
                return problem
    return None


def check_completion(body: Any) -> Refusal | None:
    """llama-server's complaint about a /completion or /v1/completions body, or None."""
    if not isinstance(body, dict):
        return _cannot_at(body)
    if "prompt" not in body:
        return _bad("[json.exception.out_of_range.403] key 'prompt' not found")
    if (problem := prompt_problem(body["prompt"])) is not None:
        return _bad(problem)
    if (refusal := _field_types(body)) is not None:
        return refusal
    if any(not 0 <= token < FAKE_VOCAB for token in _prompt_tokens(body["prompt"])):
        return _bad("Prompt contains invalid tokens")  # checked when a slot takes the task
    return None


def _prompt_tokens(prompt: Any) -> list[int]:
    """The token ids given directly in a completion prompt."""
    if _is_token(prompt):
        return [prompt]
    if isinstance(prompt, list):
        return [t for part in prompt for t in _prompt_tokens(part)]
    return []


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _subprompt_problem(prompt: Any) -> str | None:
    """tokenize_input_subprompt's complaint about one prompt (server-common.cpp)."""
    if isinstance(prompt, str):
        return None
    if isinstance(prompt, list):
        kinds = {type(p) for p in prompt if isinstance(p, str) or _is_token(p)}
        if str in kinds and int in kinds:  # mixed strings and tokens: strings read as such
            for part in prompt:
                if not isinstance(part, (str, float)) and not _is_token(part):
                    return (f"[json.exception.type_error.302] type must be string, but is "
                            f"{json_type_name(part)}")
            return None
        if all(_is_token(p) for p in prompt):
            return None
    if isinstance(prompt, dict) and "prompt_string" in prompt:
        return None
    return ('"prompt" elements must be a string, a list of tokens, a JSON object containing a '
            'prompt string, or a list of mixed strings & tokens.')


def prompt_problem(prompt: Any) -> str | None:
    """tokenize_input_prompts' complaint about a completion prompt, or None."""
    several = isinstance(prompt, list) and not any(_is_token(p) for p in prompt)
    for part in prompt if several else [prompt]:
        if (problem := _subprompt_problem(part)) is not None:
            return problem
    if several and not prompt:
        return '"prompt" must not be empty'
    return None


def _cannot_at(body: Any) -> Refusal:
    return _bad(f"[json.exception.type_error.304] cannot use at() with {json_type_name(body)}")


def check_tokenize(body: Any) -> Refusal | None:
    """llama-server's complaint about a /tokenize body (no "content" tokenizes nothing)."""
    if not isinstance(body, dict) or "content" not in body:
        return None
    content = body["content"]
    if not isinstance(content, list):  # read as one string
        if isinstance(content, str):
            return None
        return _bad("[json.exception.type_error.302] type must be string, but is "
                    + json_type_name(content))
    for part in content:  # text pieces and token ids
        if not isinstance(part, (str, int, float)):
            return _bad("[json.exception.type_error.302] type must be number, but is "
                        + json_type_name(part))
    return None


def check_detokenize(body: Any) -> Refusal | None:
    """llama-server's complaint about a /detokenize body (tokens: an array of integers)."""
    if not isinstance(body, dict) or "tokens" not in body:
        return None
    tokens = body["tokens"]
    if not isinstance(tokens, list):
        return _bad(f"[json.exception.type_error.302] type must be array, but is "
                    f"{json_type_name(tokens)}")
    for token in tokens:
        if not isinstance(token, (int, float)):
            return _bad(f"[json.exception.type_error.302] type must be number, but is "
                        f"{json_type_name(token)}")
    return None


def check_anthropic(body: Any, generating: bool = True) -> Refusal | None:
    """llama-server's complaint about an Anthropic Messages body, then as the chat it becomes."""
    if not isinstance(body, dict) or "messages" not in body:
        return _server("'messages' is required")
    return check_chat(anthropic_as_chat(body), generating)


def check_responses(body: Any) -> Refusal | None:
    """llama-server's complaint about a Responses API body, then as the chat it becomes."""
    try:
        chat = responses_as_chat(body)
    except Untranslatable as exc:
        return _bad(str(exc))
    return check_chat(chat)


def check_llama(endpoint: str, body: Any) -> Refusal | None:
    """llama-server's complaint about a request body for one of its endpoints, or None."""
    if endpoint == "anthropic":
        return check_anthropic(body)
    if endpoint == "anthropic_tokens":
        return check_anthropic(body, generating=False)
    if endpoint == "responses":
        return check_responses(body)
    if endpoint in ("chat", "chat_tokens", "apply_template"):
        return check_chat(body, generating=endpoint == "chat")
    if endpoint in ("completion", "oai_completion"):
        return check_completion(body)
    if endpoint == "tokenize":
        return check_tokenize(body)
    if endpoint == "detokenize":
        return check_detokenize(body)
    return None


def check_basic(endpoint: str, body: Any) -> str | None:
    """A plain complaint about a JSON body of the wrong shape (non-llama-server personalities)."""
    if not isinstance(body, dict):
        return "Expected a JSON object as the request body"
    if endpoint == "chat":
        if "messages" not in body:
            return "'messages' is required"
        if not isinstance(body["messages"], list):
            return "Expected 'messages' to be an array"
        if not _is_obj_list(body["messages"]):
            return "Expected 'messages' to be an array of objects"
        if "tools" in body and not _is_obj_list(body["tools"]):
            return "Expected 'tools' to be an array of objects"
    if endpoint in ("completion", "oai_completion") and "prompt" not in body:
        return "\"prompt\" must be provided"
    if endpoint == "tokenize" and not isinstance(body.get("content", ""), str):
        return "\"content\" must be a string"
    if endpoint == "detokenize" and not (
        isinstance(body.get("tokens", []), list)
        and all(isinstance(t, int) for t in body.get("tokens", []))
    ):
        return "\"tokens\" must be an array of integers"
    if "stream" in body and not isinstance(body["stream"], bool):
        return "\"stream\" must be a boolean"
    return None
