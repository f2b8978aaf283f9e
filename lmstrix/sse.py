"""The incremental Server-Sent-Events decoder; it lives in :mod:`lmstrix.client.sse`."""

from __future__ import annotations

from .client.sse import ServerSentEvent, SSEDecoder

__all__ = ["SSEDecoder", "ServerSentEvent"]
