"""Talking to a server: ``Client``, ``ChatStream``, the SSE decoder and the error mapping."""

from __future__ import annotations

from ._client import Client, Messages
from ._stream import ChatStream
from ._tools import ToolRun, run_tools

__all__ = ["ChatStream", "Client", "Messages", "ToolRun", "run_tools"]
