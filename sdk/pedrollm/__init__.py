"""pedrollm: one synchronous Python SDK for local LLM servers.

Start with :func:`new_backend` and :class:`InferenceRequest`; every error the SDK
raises is a :class:`PedroLLMError`.
"""

from ._version import __version__
from .agent import Agent, AgentEvent, AgentResult, Tool, ToolRegistry
from .backend import Backend, Health
from .errors import (
    AuthenticationError,
    BadRequest,
    ConfigError,
    ConnectionFailed,
    ContextOverflow,
    DeadlineExceeded,
    HTTPError,
    InvalidResponse,
    ModelLoading,
    NoServerAvailable,
    NotFound,
    PedroLLMError,
    RateLimited,
    ReadTimeout,
    RequestValidationError,
    ResponseTooLarge,
    ServerError,
    StreamInterrupted,
    StructuredOutputError,
    Timeout,
    ToolsNotEnabled,
    UnsupportedFeature,
)
from .factory import new_backend
from .structured import StructuredStream, json_schema_for
from .tokens import TokenCount
from .types import (
    InferenceRequest,
    InferenceResponse,
    InvalidToolCall,
    Message,
    ModelInfo,
    ServerInfo,
    StreamDelta,
    ToolCall,
    ToolDefinition,
    Usage,
)

__all__ = [
    "Agent",
    "AgentEvent",
    "AgentResult",
    "Tool",
    "ToolRegistry",
    "AuthenticationError",
    "Backend",
    "BadRequest",
    "ConfigError",
    "ConnectionFailed",
    "ContextOverflow",
    "DeadlineExceeded",
    "HTTPError",
    "Health",
    "InferenceRequest",
    "InferenceResponse",
    "InvalidResponse",
    "InvalidToolCall",
    "Message",
    "ModelInfo",
    "ModelLoading",
    "NoServerAvailable",
    "NotFound",
    "PedroLLMError",
    "RateLimited",
    "ReadTimeout",
    "RequestValidationError",
    "ResponseTooLarge",
    "ServerError",
    "ServerInfo",
    "StreamDelta",
    "StreamInterrupted",
    "StructuredOutputError",
    "StructuredStream",
    "Timeout",
    "TokenCount",
    "ToolCall",
    "ToolDefinition",
    "ToolsNotEnabled",
    "UnsupportedFeature",
    "Usage",
    "__version__",
    "json_schema_for",
    "new_backend",
]
