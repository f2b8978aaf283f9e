"""The incremental Server-Sent-Events decoder; it lives in :mod:`lmstrix.client.sse`."""

from __future__ import annotations

from .client.sse import DEFAULT_MAX_LINE_BYTES, ServerSentEvent, SSEDecoder

__all__ = ["DEFAULT_MAX_LINE_BYTES", "SSEDecoder", "ServerSentEvent"]
