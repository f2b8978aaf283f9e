"""Talking to a server: ``Client``, ``ChatStream``, the SSE decoder and the error mapping.

``Client``, ``ChatStream`` and ``Messages`` are imported with the package; the types of
native chat, downloads and tool loops on first use (``import lmstrix.client`` stays
as light as the client itself).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Dict

from .._lazy import lazy_names
from ._client import Client, Messages
from ._stream import ChatStream

if TYPE_CHECKING:
    from ._conversation import Conversation
    from ._download_job import DownloadJob
    from ._native_stream import NativeChatStream
    from ._native_types import (
        InvalidToolCallItem,
        MessageItem,
        NativeChatResult,
        NativeEvent,
        NativeStats,
        ReasoningItem,
        ToolCallItem,
        UnknownItem,
    )
    from ._tools import ToolRun, run_tools

__all__ = [
    "ChatStream",
    "Client",
    "Conversation",
    "DownloadJob",
    "InvalidToolCallItem",
    "MessageItem",
    "Messages",
    "NativeChatResult",
    "NativeChatStream",
    "NativeEvent",
    "NativeStats",
    "ReasoningItem",
    "ToolCallItem",
    "ToolRun",
    "UnknownItem",
    "run_tools",
]

# Public name -> the module that defines it; imported on first attribute access.
_LAZY: Dict[str, str] = {
    "Conversation": "_conversation",
    "DownloadJob": "_download_job",
    "NativeChatStream": "_native_stream",
    "ToolRun": "_tools",
    "run_tools": "_tools",
    **dict.fromkeys(
        (
            "InvalidToolCallItem",
            "MessageItem",
            "NativeChatResult",
            "NativeEvent",
            "NativeStats",
            "ReasoningItem",
            "ToolCallItem",
            "UnknownItem",
        ),
        "_native_types",
    ),
}


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
del lazy_names
