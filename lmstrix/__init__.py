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
    from ._fingerprint import Fingerprint
    from ._recheck import RecheckResult, recheck_limits
    from ._speed import SpeedPoint
    from .client import Client
    from .config import Timeout
    from .context import ContextReport, SearchProgress, find_context_limit
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
    "ChatStream",
    "Chunk",
    "Client",
    "Completion",
    "ConfigError",
    "ContextOverflowError",
    "ContextReport",
    "ContextSearchError",
    "Fingerprint",
    "LMStrixError",
    "LoadedInstance",
    "MissingVariableError",
    "ModelInfo",
    "ModelLoadError",
    "ModelNotFoundError",
    "ModelRecord",
    "ProbeRecord",
    "PromptLibrary",
    "RecheckResult",
    "Registry",
    "RegistryCorruptError",
    "RegistryError",
    "Response",
    "Stats",
    "SearchProgress",
    "SpeedPoint",
    "StreamError",
    "TemplateCycleError",
    "TemplateError",
    "Timeout",
    "Transport",
    "StdlibTransport",
    "Usage",
    "__version__",
    "find_context_limit",
    "recheck_limits",
    "render",
]

# Public name -> the module that defines it; imported on first attribute access.
_LAZY: Dict[str, str] = {
    "ChatStream": "stream",
    "Chunk": "types",
    "Client": "client",
    "Completion": "types",
    "ContextReport": "context",
    "Fingerprint": "_fingerprint",
    "LoadedInstance": "types",
    "ModelInfo": "types",
    "ModelRecord": "registry",
    "ProbeRecord": "registry",
    "PromptLibrary": "prompts",
    "RecheckResult": "_recheck",
    "Registry": "registry",
    "Response": "transport",
    "SearchProgress": "context",
    "SpeedPoint": "_speed",
    "Stats": "types",
    "Timeout": "config",
    "Transport": "transport",
    "StdlibTransport": "transport",
    "Usage": "types",
    "find_context_limit": "context",
    "recheck_limits": "_recheck",
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
