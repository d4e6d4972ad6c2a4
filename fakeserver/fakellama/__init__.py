"""fakellama: a fake llama-server that replays recorded OpenAI-format traffic."""

__version__ = "0.1.0"
