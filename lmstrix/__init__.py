"""lmstrix: find the real context limits of LM Studio models, and use them.

The core uses the Python standard library only. Importing this package does no
I/O and loads nothing heavy: each public name is imported from its module the
first time it is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from ._lazy import lazy_names
from ._version import __version__
from .errors import (
    APIConnectionError,
    APIError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    ConfigError,
    ContextOverflowError,
    ContextSearchError,
    FallbackError,
    LMStrixError,
    MissingVariableError,
    ModelLoadError,
    ModelNotFoundError,
    PermissionDeniedError,
    QuotaExceededError,
    RegistryCorruptError,
    RegistryError,
    SchemaValidationError,
    StreamError,
    TemplateCycleError,
    TemplateError,
    TemplateSyntaxError,
    ToolCallError,
    ToolLoopError,
)

if TYPE_CHECKING:
    from .client._calls import CallEvent, ChatClient
    from .client._client import Client
    from .client._native_types import NativeChatResult
    from .client._stream import ChatStream
    from .config import Timeout
    from .context._recheck import RecheckResult, recheck_limits
    from .context._runner import ContextReport, SearchProgress, find_context_limit
    from .middleware._retry import RetryPolicy
    from .pool._pool import Pool
    from .prompts._render import PromptLibrary, render
    from .registry._fingerprint import Fingerprint
    from .registry._registry import ModelRecord, ProbeRecord, Registry
    from .registry._speed import SpeedPoint
    from .text._fit import fit
    from .transport._request import Request
    from .transport._stdlib import Response, StdlibTransport, Transport
    from .types import Chunk, Completion, LoadedInstance, ModelInfo, Stats, Usage

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "CallEvent",
    "ChatClient",
    "ChatStream",
    "Chunk",
    "Client",
    "Completion",
    "ConfigError",
    "ContextOverflowError",
    "ContextReport",
    "ContextSearchError",
    "FallbackError",
    "Fingerprint",
    "LMStrixError",
    "LoadedInstance",
    "MissingVariableError",
    "ModelInfo",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelRecord",
    "NativeChatResult",
    "PermissionDeniedError",
    "Pool",
    "ProbeRecord",
    "PromptLibrary",
    "QuotaExceededError",
    "RecheckResult",
    "Registry",
    "RegistryCorruptError",
    "RegistryError",
    "SchemaValidationError",
    "Request",
    "Response",
    "RetryPolicy",
    "Stats",
    "SearchProgress",
    "SpeedPoint",
    "StreamError",
    "TemplateCycleError",
    "TemplateError",
    "TemplateSyntaxError",
    "Timeout",
    "ToolCallError",
    "ToolLoopError",
    "Transport",
    "StdlibTransport",
    "Usage",
    "__version__",
    "find_context_limit",
    "fit",
    "recheck_limits",
    "render",
]

# Public name -> the module that defines it; imported on first attribute access.
_LAZY: Dict[str, str] = {
    "CallEvent": "client._calls",
    "ChatClient": "client._calls",
    "ChatStream": "client._stream",
    "Chunk": "types",
    "Client": "client._client",
    "Completion": "types",
    "ContextReport": "context._report",
    "Fingerprint": "registry._fingerprint",
    "LoadedInstance": "types",
    "ModelInfo": "types",
    "ModelRecord": "registry._registry",
    "NativeChatResult": "client._native_types",
    "Pool": "pool._pool",
    "ProbeRecord": "registry._registry",
    "PromptLibrary": "prompts._render",
    "RecheckResult": "context._recheck",
    "Registry": "registry._registry",
    "Request": "transport._request",
    "Response": "transport._stdlib",
    "RetryPolicy": "middleware._retry",
    "SearchProgress": "context._report",
    "SpeedPoint": "registry._speed",
    "Stats": "types",
    "Timeout": "config",
    "Transport": "transport._stdlib",
    "StdlibTransport": "transport._stdlib",
    "Usage": "types",
    "find_context_limit": "context._runner",
    "fit": "text._fit",
    "recheck_limits": "context._recheck",
    "render": "prompts._render",
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
del lazy_names
