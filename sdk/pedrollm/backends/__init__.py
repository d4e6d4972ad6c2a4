"""One module per server; each holds only what differs from the generic OpenAI backend."""

from ..backend import Backend
from .llamacpp import LlamaCppBackend
from .lmstudio import LMStudioBackend
from .ollama import OllamaBackend
from .openai import OpenAIBackend
from .pool import PoolBackend
from .vllm import VLLMBackend

BACKENDS: dict[str, type[Backend]] = {
    "llamacpp": LlamaCppBackend,
    "ollama": OllamaBackend,
    "vllm": VLLMBackend,
    "lmstudio": LMStudioBackend,
    "openai": OpenAIBackend,
    "pool": PoolBackend,
}
PoolBackend.member_types = BACKENDS

__all__ = [
    "BACKENDS",
    "LMStudioBackend",
    "LlamaCppBackend",
    "OllamaBackend",
    "OpenAIBackend",
    "PoolBackend",
    "VLLMBackend",
]
