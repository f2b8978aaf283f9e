"""A tiny keep-alive JSON client for the simulator tests, over one ``http.client`` connection.

The simulator tests talk to :class:`~lmstrix.testing.FakeLMStudio` with the standard
library only, so that what they check is the server, not lmstrix's own client.
"""

from __future__ import annotations

import http.client
import json
from typing import Any, Dict, List, Optional, Tuple

from lmstrix.testing import FakeLMStudio


class Http:
    """One connection to ``fake``; ``token`` is sent as a Bearer token when given."""

    def __init__(self, fake: FakeLMStudio, token: Optional[str] = None) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
        self.token = token

    def _send(self, method: str, path: str, data: Optional[bytes]) -> http.client.HTTPResponse:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        self.conn.request(method, path, body=data, headers=headers)
        return self.conn.getresponse()

    def call(
        self, method: str, path: str, body: Any = None, raw: Optional[bytes] = None
    ) -> Tuple[int, Dict[str, str], Any]:
        """Send ``body`` as JSON (or ``raw`` bytes); return status, headers and the
        parsed reply (its text when it is not JSON)."""
        data = raw if raw is not None else (None if body is None else json.dumps(body).encode())
        resp = self._send(method, path, data)
        payload = resp.read()
        try:
            parsed: Any = json.loads(payload)
        except ValueError:
            parsed = payload.decode()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed

    def post(self, path: str, body: Any) -> Tuple[int, Any]:
        """POST ``body`` as JSON; return status and the parsed reply."""
        status, _, parsed = self.call("POST", path, body)
        return status, parsed

    def stream(self, path: str, body: Any) -> Tuple[int, str, List[Any]]:
        """POST with stream=true; return status, content type and the decoded ``data:`` items."""
        resp = self._send("POST", path, json.dumps(dict(body, stream=True)).encode())
        text = resp.read().decode()
        return resp.status, resp.getheader("Content-Type") or "", sse_data(text)

    def close(self) -> None:
        self.conn.close()


def sse_data(text: str) -> List[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded (``[DONE]`` kept as text)."""
    items: List[Any] = []
    for line in text.split("\n"):
        if line.startswith("data: "):
            payload = line[len("data: ") :]
            items.append(payload if payload == "[DONE]" else json.loads(payload))
    return items


def chat_body(model: str, text: str, **extra: Any) -> Dict[str, Any]:
    """A chat-completions body with one user message."""
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}
