"""lmstrix: find the real context limits of LM Studio models, and use them.

The core uses the Python standard library only. Importing this package does no
I/O and loads nothing heavy: each public name is imported from its module the
first time it is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

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
    LMStrixError,
    MissingVariableError,
    ModelLoadError,
    ModelNotFoundError,
    RegistryCorruptError,
    RegistryError,
    StreamError,
    TemplateCycleError,
    TemplateError,
)

if TYPE_CHECKING:
    from ._calls import CallEvent, ChatClient
    from ._request import Request
    from .client import Client
    from .config import Timeout
    from .context import ContextReport, SearchProgress, find_context_limit
    from .middleware import RetryPolicy
    from .prompts import PromptLibrary, render
    from .registry import ModelRecord, ProbeRecord, Registry
    from .stream import ChatStream
    from .transport import Response, StdlibTransport, Transport
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
    "LMStrixError",
    "LoadedInstance",
    "MissingVariableError",
    "ModelInfo",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelRecord",
    "ProbeRecord",
    "PromptLibrary",
    "Registry",
    "RegistryCorruptError",
    "RegistryError",
    "Request",
    "Response",
    "RetryPolicy",
    "Stats",
    "SearchProgress",
    "StreamError",
    "TemplateCycleError",
    "TemplateError",
    "Timeout",
    "Transport",
    "StdlibTransport",
    "Usage",
    "__version__",
    "find_context_limit",
    "render",
]

# Public name -> the module that defines it; imported on first attribute access.
_LAZY: Dict[str, str] = {
    "CallEvent": "_calls",
    "ChatClient": "_calls",
    "ChatStream": "stream",
    "Chunk": "types",
    "Client": "client",
    "Completion": "types",
    "ContextReport": "context",
    "LoadedInstance": "types",
    "ModelInfo": "types",
    "ModelRecord": "registry",
    "ProbeRecord": "registry",
    "PromptLibrary": "prompts",
    "Registry": "registry",
    "Request": "_request",
    "Response": "transport",
    "RetryPolicy": "middleware",
    "SearchProgress": "context",
    "Stats": "types",
    "Timeout": "config",
    "Transport": "transport",
    "StdlibTransport": "transport",
    "Usage": "types",
    "find_context_limit": "context",
    "render": "prompts",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'lmstrix' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> List[str]:
    return sorted(set(globals()) | set(__all__))
