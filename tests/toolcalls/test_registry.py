"""Looking formats up by name and detecting them from chat templates and model names."""

from __future__ import annotations

import pytest

from pedrollm.toolcalls import (
    UnknownFormatError,
    detect_format,
    format_names,
    get_format,
    template_opens_think,
)

# Fragments of the models' published chat templates: the part that shows the
# model how to write a call, which is what tells the formats apart.
TEMPLATES = {
    "hermes": (
        '{{- "\\n</tools>\\n\\nFor each function call, return a json object with function name '
        'and arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n{\\"name\\": '
        '<function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n" }}'
    ),
    "qwen3_coder": (
        "<tool_call>\\n<function=example_function_name>\\n<parameter=example_parameter_1>\\n"
        "value_1\\n</parameter>\\n</function>\\n</tool_call>"
    ),
    "llama3_json": (
        "{{- '<|start_header_id|>ipython<|end_header_id|>\\n\\n' }}"
        """{{- '{"name": function name, "parameters": dictionary of argument name """
        "and its value}' }}"
    ),
    "mistral": (
        "{{- '[AVAILABLE_TOOLS] ' + tools|tojson + '[/AVAILABLE_TOOLS]' }}{{- '[TOOL_CALLS] [' }}"
    ),
    "mistral_v11": "{{- '[TOOL_CALLS]' + tool.function.name + '[ARGS]' + arguments }}",
    "pythonic": "{{- '<|python_start|>' }}{{- '[' + tool_call.function.name + '(' }}",
    "deepseek_r1": (
        "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>' + tool['type'] + '<｜tool▁sep｜>' + "
        "tool['function']['name'] + '\\n' + '```json' + '\\n' + tool['function']['arguments'] + "
        "'\\n' + '```' + '<｜tool▁call▁end｜>'}}"
    ),
    "deepseek_v3_1": (
        "{{'<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>'+ tool['function']['name'] + "
        "'<｜tool▁sep｜>' + tool['function']['arguments'] + '<｜tool▁call▁end｜>'}}"
    ),
    "functionary_v3_1": (
        "{{ '<function=' + tool_call.name + '>' + tool_call.arguments + '</function>' }}"
    ),
    "functionary_v3_2": "{{ '>>>all\\n' + message['content'] }}",
    "granite": (
        "{{- '<|start_of_role|>assistant<|end_of_role|><|tool_call|>' + tool_calls | tojson }}"
    ),
    "command_r7b": "<|START_THINKING|>{{ tool_plan }}<|END_THINKING|><|START_ACTION|>[",
    "glm45": "<tool_call>{{ tc.name }}\\n{% for k, v in args.items() %}<arg_key>{{ k }}</arg_key>",
    "kimi_k2": "<|tool_calls_section_begin|>{% for tool_call in message['tool_calls'] %}",
    "minimax_m2": '<minimax:tool_call>\\n<invoke name="{{ tool_call.name }}">',
    "gpt_oss": (
        "{{- '<|start|>assistant to=' + tool_call.name + '<|channel|>commentary json<|message|>' }}"
    ),
    "nemotron": "<TOOLCALL>[{{ tool_calls }}]</TOOLCALL>",
    "jamba": "<tool_calls>{{ message.tool_calls | tojson }}</tool_calls>",
    "firefunction": "{{ ' functools[' + message['tool_calls'] | tojson + ']' }}",
    "seed_oss": "<seed:tool_call>\\n<function={{ tool_call.name }}>",
}


@pytest.mark.parametrize(("expected", "template"), sorted(TEMPLATES.items()))
def test_detect_format_from_the_templates_distinctive_markers(expected: str, template: str) -> None:
    assert detect_format(chat_template=template) == expected


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("Qwen/Qwen3-Coder-30B-A3B-Instruct", "qwen3_coder"),
        ("Qwen2.5-7B-Instruct-Q4_K_M.gguf", "hermes"),
        ("meta-llama/Llama-3.1-8B-Instruct", "llama3_json"),
        ("meta-llama/Llama-4-Scout-17B-16E-Instruct", "pythonic"),
        ("mistralai/Mistral-7B-Instruct-v0.3", "mistral"),
        ("mistralai/Devstral-Small-2507", "mistral_v11"),
        ("deepseek-ai/DeepSeek-R1-0528", "deepseek_r1"),
        ("deepseek-ai/DeepSeek-V3.1", "deepseek_v3_1"),
        ("zai-org/GLM-4.5-Air", "glm45"),
        ("moonshotai/Kimi-K2-Instruct", "kimi_k2"),
        ("MiniMaxAI/MiniMax-M2", "minimax_m2"),
        ("openai/gpt-oss-20b", "gpt_oss"),
        ("ByteDance-Seed/Seed-OSS-36B-Instruct", "seed_oss"),
        ("some-unknown-model", None),
    ],
)
def test_detect_format_falls_back_to_the_model_name(model: str, expected: str | None) -> None:
    assert detect_format(chat_template="{{ messages }}", model_name=model) == expected


def test_detect_format_with_nothing_to_go_on_is_none() -> None:
    assert detect_format() is None


def test_every_format_and_alias_resolves() -> None:
    for name in format_names():
        fmt = get_format(name)
        assert fmt.name == name
        for alias in fmt.aliases:
            assert get_format(alias) is fmt
    assert get_format("Qwen2.5").name == "hermes"


def test_unknown_format_names_the_known_ones() -> None:
    with pytest.raises(UnknownFormatError) as err:
        get_format("nope")
    assert "hermes" in str(err.value) and "nope" in str(err.value)
    assert isinstance(err.value, ValueError) and isinstance(err.value, KeyError)


def test_template_that_opens_think_in_the_generation_prompt() -> None:
    opens = "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n<think>\\n' }}{%- endif %}"
    off = (
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking "
        "is false %}{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}{%- endif %}"
    )
    assert template_opens_think(opens)
    assert not template_opens_think(off)
    assert not template_opens_think(None)
