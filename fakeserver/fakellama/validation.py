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

INVALID = "invalid_request_error"
SERVER = "server_error"

# Fields whose type llama-server's schema checks (server-schema.cpp), by the JSON type
# nlohmann::json's get<T>() accepts: booleans accept only booleans, numbers accept numbers
# and booleans. The first alias present is the one named in the message.
_BOOL_FIELDS = ("verbose", "timings_per_token", "stream", "cache_prompt", "return_tokens",
                "return_progress", "grammar_lazy", "ignore_eos", "post_sampling_probs",
                "backend_sampling")
_NUM_FIELDS = ("sse_ping_interval", ("n_predict", "max_completion_tokens", "max_tokens"),
               "n_indent", "n_keep", "n_discard", ("n_cmpl", "n"), "n_cache_reuse",
               "t_max_predict_ms", "top_k", "top_p", "min_p", "top_n_sigma", "xtc_probability",
               "xtc_threshold", "typical_p", "temperature", "dynatemp_range",
               "dynatemp_exponent", "repeat_last_n", "repeat_penalty", "frequency_penalty",
               "presence_penalty", "dry_multiplier", "dry_base", "dry_allowed_length",
               "dry_penalty_last_n", "mirostat", "mirostat_tau", "mirostat_eta", "seed",
               "min_keep")
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


def _field_types(body: dict[str, Any]) -> Refusal | None:
    """The schema's type checks on sampling and framing fields (null means absent)."""
    for name in _BOOL_FIELDS:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            return _bad(f"Field '{name}': [json.exception.type_error.302] type must be boolean, "
                        f"but is {json_type_name(value)}")
    options = body.get("stream_options")
    if isinstance(options, dict):
        value = options.get("include_usage")
        if value is not None and not isinstance(value, bool):
            return _bad("Field 'include_usage': [json.exception.type_error.302] type must be "
                        f"boolean, but is {json_type_name(value)}")
    for entry in _NUM_FIELDS:
        names = (entry,) if isinstance(entry, str) else entry
        present = [n for n in names if body.get(n) is not None]
        if not present:
            continue
        value = body[present[0]]
        if not isinstance(value, (int, float)):
            return _bad(f"Field '{present[0]}': [json.exception.type_error.302] type must be "
                        f"number, but is {json_type_name(value)}")
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


def check_chat(body: Any) -> Refusal | None:
    """llama-server's complaint about a /v1/chat/completions body, or None if it is valid."""
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
    if isinstance(tools, list) and tools and body.get("tool_choice") != "none" \
            and "grammar" in body:
        return _bad("Cannot use custom grammar constraints with tools.")
    if schema is not None and (problem := schema_error(schema)) is not None:
        return _bad("Unable to generate parser for this template. Automatic parser generation "
                    f"failed: {problem}")
    if body.get("logprobs") is True and isinstance(tools, list) and tools \
            and body.get("stream") is True:
        return _bad("logprobs is not supported with tools + stream")
    if body.get("logprobs") is not True and body.get("top_logprobs") is not None:
        return _bad("top_logprobs requires logprobs to be set to true")
    return _field_types(body)


def check_completion(body: Any) -> Refusal | None:
    """llama-server's complaint about a /completion or /v1/completions body, or None."""
    if not isinstance(body, dict) or "prompt" not in body:
        return _bad("[json.exception.out_of_range.403] key 'prompt' not found")
    prompt = body["prompt"]
    if not _prompt_ok(prompt):
        return _bad('"prompt" elements must be a string, a list of tokens, a JSON object '
                    'containing a prompt string, or a list of mixed strings & tokens.')
    return _field_types(body)


def _prompt_ok(prompt: Any) -> bool:
    if isinstance(prompt, str):
        return True
    if isinstance(prompt, dict):
        return isinstance(prompt.get("prompt_string"), str)
    if isinstance(prompt, list):
        return all(isinstance(p, (str, dict)) or (isinstance(p, int) and not isinstance(p, bool))
                   or (isinstance(p, list) and all(isinstance(t, int) for t in p))
                   for p in prompt)
    return False


def check_tokenize(body: Any) -> Refusal | None:
    """llama-server's complaint about a /tokenize body (it reads "content" as a string)."""
    if not isinstance(body, dict) or "content" not in body:
        return _bad("[json.exception.out_of_range.403] key 'content' not found")
    if not isinstance(body["content"], (str, list)):
        return _bad("[json.exception.type_error.302] type must be string, but is "
                    + json_type_name(body["content"]))
    return None


def check_detokenize(body: Any) -> Refusal | None:
    """llama-server's complaint about a /detokenize body (tokens: an array of integers)."""
    tokens = body.get("tokens", []) if isinstance(body, dict) else []
    if not isinstance(tokens, list):
        return _bad(f"[json.exception.type_error.302] type must be array, but is "
                    f"{json_type_name(tokens)}")
    for token in tokens:
        if not isinstance(token, (int, float)):
            return _bad(f"[json.exception.type_error.302] type must be number, but is "
                        f"{json_type_name(token)}")
    return None


def check_llama(endpoint: str, body: Any) -> Refusal | None:
    """llama-server's complaint about a request body for one of its endpoints, or None."""
    if endpoint in ("chat", "chat_tokens"):
        return check_chat(body)
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
