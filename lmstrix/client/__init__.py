"""Talking to a server: ``Client``, ``ChatStream``, the SSE decoder and the error mapping."""

from __future__ import annotations

from ._client import Client, Messages
from ._download_job import DownloadJob
from ._stream import ChatStream

__all__ = ["ChatStream", "Client", "DownloadJob", "Messages"]
