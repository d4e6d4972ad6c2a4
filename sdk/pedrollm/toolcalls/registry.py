"""The formats by name."""

from __future__ import annotations

from pedrollm.toolcalls import (
    command_r7b,
    deepseek_r1,
    deepseek_v3_1,
    deepseek_v3_2,
    firefunction,
    functionary_v3_1,
    functionary_v3_2,
    generic,
    glm45,
    gpt_oss,
    granite,
    hermes,
    jamba,
    kimi_k2,
    llama3_builtin,
    llama3_json,
    minimax_m2,
    mistral,
    mistral_v11,
    nemotron,
    pythonic,
    qwen3_coder,
    seed_oss,
)
from pedrollm.toolcalls.engine import ToolCallFormat

# In the order of how common they are.
_MODULES = (
    hermes,
    qwen3_coder,
    llama3_json,
    mistral,
    mistral_v11,
    pythonic,
    deepseek_r1,
    deepseek_v3_1,
    deepseek_v3_2,
    generic,
    functionary_v3_1,
    functionary_v3_2,
    granite,
    command_r7b,
    glm45,
    kimi_k2,
    minimax_m2,
    gpt_oss,
    nemotron,
    jamba,
    firefunction,
    seed_oss,
    llama3_builtin,
)

FORMATS: dict[str, ToolCallFormat] = {m.FORMAT.name: m.FORMAT for m in _MODULES}
_ALIASES: dict[str, str] = {a: f.name for f in FORMATS.values() for a in f.aliases}


class UnknownFormatError(KeyError, ValueError):
    """No tool-call format has this name; the message lists the known ones."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown tool-call format"


def format_names() -> list[str]:
    """Return the canonical names of all formats, sorted."""
    return sorted(FORMATS)


def get_format(name: str) -> ToolCallFormat:
    """Return the format called ``name`` (or one of its aliases)."""
    key = name.strip().lower().replace("-", "_").replace(".", "_")
    key = _ALIASES.get(key, key)
    try:
        return FORMATS[key]
    except KeyError:
        known = ", ".join(format_names())
        raise UnknownFormatError(f"unknown tool-call format {name!r}; known: {known}") from None
