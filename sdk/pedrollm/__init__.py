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
    MediaNotSupported,
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
    ThinkingNotSupported,
    Timeout,
    ToolsNotEnabled,
    UnsupportedFeature,
)
from .factory import new_backend
from .images import image
from .structured import StructuredStream, json_schema_for
from .tokens import TokenCount
from .types import (
    Image,
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
    "Image",
    "InferenceRequest",
    "InferenceResponse",
    "InvalidResponse",
    "InvalidToolCall",
    "MediaNotSupported",
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
    "ThinkingNotSupported",
    "Timeout",
    "TokenCount",
    "ToolCall",
    "ToolDefinition",
    "ToolsNotEnabled",
    "UnsupportedFeature",
    "Usage",
    "__version__",
    "image",
    "json_schema_for",
    "new_backend",
]
