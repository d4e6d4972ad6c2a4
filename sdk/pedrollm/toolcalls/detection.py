"""Picking a format from a server's chat template or a model's name.

Templates are recognised by the literal markers they write for tool calls (the
most specific first: several formats share ``<tool_call>`` or ``<function=``).
Names are a fallback for servers that do not expose their template.
"""

from __future__ import annotations

import re

# (markers that must all be in the template, format), most specific first.
_TEMPLATE_RULES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("<seed:tool_call>",), "seed_oss"),
    (("<minimax:tool_call>",), "minimax_m2"),
    (("<arg_key>",), "glm45"),
    (("<|tool_calls_section_begin|>",), "kimi_k2"),
    (("<|tool_call_section_begin|>",), "kimi_k2"),
    (("<|channel|>", "<|message|>"), "gpt_oss"),
    (("｜DSML｜",), "deepseek_v3_2"),
    (("<｜tool▁calls▁begin｜>", "```json"), "deepseek_r1"),
    (("<｜tool▁calls▁begin｜>",), "deepseek_v3_1"),
    (("<｜tool▁call▁begin｜>",), "deepseek_v3_1"),
    (("[TOOL_CALLS]", "[ARGS]"), "mistral_v11"),
    (("[TOOL_CALLS]",), "mistral"),
    (("<|START_ACTION|>",), "command_r7b"),
    (("<tool_call>", "<function=", "<parameter="), "qwen3_coder"),
    (("<function=", "<parameter="), "qwen3_coder"),
    ((">>>all",), "functionary_v3_2"),
    (("<function=", "</function>"), "functionary_v3_1"),
    (("<TOOLCALL>",), "nemotron"),
    (("<tool_calls>",), "jamba"),
    (("functools[",), "firefunction"),
    (("<|tool|>", "<|/tool|>"), "firefunction"),
    (("<|tool_call|>",), "granite"),
    (("<|python_start|>",), "pythonic"),
    (("<|tool_call_start|>",), "pythonic"),
    (("<|tool_list_start|>",), "pythonic"),
    (("[func_name1(",), "pythonic"),
    (("<tool_call>",), "hermes"),
    (("<|python_tag|>",), "llama3_json"),
    (("<|start_header_id|>", "ipython"), "llama3_json"),
    (("<|start_header_id|>", '"parameters"'), "llama3_json"),
)

# (pattern on the lower-cased model name, format), most specific first.
_NAME_RULES: tuple[tuple[str, str], ...] = (
    (r"qwen3[-_.]?coder|qwen3[._]5", "qwen3_coder"),
    (r"seed[-_]?oss", "seed_oss"),
    (r"minimax[-_]?m2", "minimax_m2"),
    (r"glm[-_]?4[._]?[5-9]", "glm45"),
    (r"kimi[-_]?k2", "kimi_k2"),
    (r"gpt[-_]?oss", "gpt_oss"),
    (r"deepseek[-_]?v3[._]2", "deepseek_v3_2"),
    (r"deepseek[-_]?v3[._]1", "deepseek_v3_1"),
    (r"deepseek[-_]?(r1|v3)", "deepseek_r1"),
    (r"devstral|magistral|mistral[-_]small[-_]3[._][12]|ministral[-_]3|2506|2507", "mistral_v11"),
    (r"mistral|mixtral|ministral|codestral", "mistral"),
    (r"command[-_]?(r7b|a)", "command_r7b"),
    (r"functionary.*v3[._]1", "functionary_v3_1"),
    (r"functionary", "functionary_v3_2"),
    (r"granite[-_]?3", "granite"),
    (r"firefunction|phi[-_]?4[-_]?mini", "firefunction"),
    (r"nemotron", "nemotron"),
    (r"jamba|hunyuan", "jamba"),
    (r"llama[-_]?4|lfm[-_]?2", "pythonic"),
    (r"llama[-_]?3", "llama3_json"),
    (r"qwen|qwq|hermes|granite", "hermes"),
)


def _from_template(template: str) -> str | None:
    for markers, name in _TEMPLATE_RULES:
        if all(m in template for m in markers):
            return name
    return None


def _from_name(model_name: str) -> str | None:
    base = model_name.lower().rsplit("/", 1)[-1]
    for pattern, name in _NAME_RULES:
        if re.search(pattern, base):
            return name
    return None


def detect_format(chat_template: str | None = None, model_name: str | None = None) -> str | None:
    """Return the format name a chat template (preferred) or model name points to, or None."""
    if chat_template:
        found = _from_template(chat_template)
        if found is not None:
            return found
    if model_name:
        return _from_name(model_name)
    return None


_THINK_PAIRS = (
    ("<think>", "</think>"),
    ("<seed:think>", "</seed:think>"),
    ("<|START_THINKING|>", "<|END_THINKING|>"),
    ("[THINK]", "[/THINK]"),
)


def template_opens_think(chat_template: str | None) -> bool:
    """True if the template's generation prompt opens a think block the reply will close.

    Pass the answer as ``think_open`` to ``parse``/``StreamingParser``. A template
    that writes an empty block (``<think>\n\n</think>``) to switch thinking off does
    not count.
    """
    if not chat_template:
        return False
    at = chat_template.rfind("add_generation_prompt")
    if at < 0:
        return False
    tail = chat_template[at : at + 400]
    return any(o in tail and c not in tail for o, c in _THINK_PAIRS)
