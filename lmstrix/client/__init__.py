"""Talking to a server: ``Client``, ``ChatStream``, the SSE decoder and the error mapping."""

from __future__ import annotations

from ._client import Client, Messages
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
from ._stream import ChatStream
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
