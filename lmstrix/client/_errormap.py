"""The one place where a server's answer becomes an lmstrix exception.

LM Studio reports errors in four shapes (a string ``error``, an OpenAI-style object,
a v1 object, or a non-JSON page) and sometimes with HTTP 200, so the body decides as
much as the status code does.
"""

from __future__ import annotations

import json
from typing import Any, Optional, Tuple

from ..errors import (
    APIStatusError,
    AuthenticationError,
    ContextOverflowError,
    ModelLoadError,
    ModelNotFoundError,
    StreamError,
)

__all__ = ["checked_json", "empty_answer_error", "error_for", "error_message", "parse_json"]

_OVERFLOW_MARKERS = (
    "greater than the context length",
    "context the overflows",
    "n_keep",
    "exceed context window",
    "exceeds the context",
    "context length exceeded",
    "maximum context length",
    "context_length_exceeded",
)
_LOAD_MARKERS = (
    "insufficient system resources",
    "model_load_failed",
    "failed to load model",
    "has crashed",
    "exited before becoming healthy",
    "out of memory",
)
_NOT_FOUND_MARKERS = ("model_not_found", "not found", "no models loaded")
_SNIPPET = 300


def parse_json(raw: bytes) -> Tuple[bool, Any]:
    """Return ``(True, value)`` for a JSON body, else ``(False, text)``."""
    try:
        return True, json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return False, raw.decode("utf-8", errors="replace")


def checked_json(status: int, raw: bytes, *, url: str, model: Optional[str]) -> Any:
    """The parsed body of an answer (its text when not JSON), raised when it is an error."""
    is_json, parsed = parse_json(raw)
    err = error_for(status, parsed, url=url, model=model, is_json=is_json)
    if err is not None:
        raise err
    return parsed


def error_message(body: Any) -> Optional[str]:
    """The server's error text from any of its error shapes, or ``None`` if no error."""
    if not isinstance(body, dict) or "error" not in body:
        return None
    err = body["error"]
    if err is None:
        return None
    if isinstance(err, dict):
        parts = [str(err.get("message") or "").strip()]
        for field in ("type", "code"):
            value = err.get(field)
            if value and str(value) not in parts[0]:
                parts.append(f"[{value}]")
        return " ".join(p for p in parts if p) or json.dumps(err)
    return str(err)


def error_for(
    status: int,
    body: Any,
    *,
    url: str,
    model: Optional[str] = None,
    is_json: bool = True,
) -> Optional[APIStatusError]:
    """Map a status and parsed body to an exception; ``None`` when the answer is fine."""
    message = error_message(body) if is_json else None
    if status < 400 and message is None:
        return None
    if message is None:
        text = str(body).strip() if body is not None else ""
        if not is_json and text.lstrip().lower().startswith("<"):
            text = "an HTML error page"
        message = text[:_SNIPPET] or "no details"
    lowered = message.lower()
    where = f"{url}" + (f" (model {model!r})" if model else "")
    kwargs = {"url": url, "status_code": status, "body": body, "model": model}
    if status in (401, 403) or "invalid_api_key" in lowered:
        return AuthenticationError(
            f"{where} refused the request (HTTP {status}): {message}. The server wants a "
            "valid API token: pass api_token=, --token, or set LM_API_TOKEN",
            **kwargs,
        )
    if "unexpected endpoint" in lowered:
        return APIStatusError(
            f"{url} is not an endpoint this server offers ({message}); it may need a newer "
            "LM Studio, or the URL has a wrong path",
            **kwargs,
        )
    if any(m in lowered for m in _OVERFLOW_MARKERS):
        return ContextOverflowError(
            f"the prompt does not fit the context of {model or 'the model'} at {url}: "
            f"{message}. Shorten the prompt or load the model with a larger context "
            "(see `lmstrix test` for what works)",
            **kwargs,
        )
    if "/models/load" in url or any(m in lowered for m in _LOAD_MARKERS):
        if status == 404 or "model_not_found" in lowered:
            return ModelNotFoundError(
                f"{where}: {message}. Run `lmstrix list` to see the models the server has",
                **kwargs,
            )
        return ModelLoadError(
            f"loading {model or 'the model'} failed at {url} (HTTP {status}): {message}. "
            + _load_advice(status, lowered),
            **kwargs,
        )
    if status == 404 and any(m in lowered for m in _NOT_FOUND_MARKERS):
        return ModelNotFoundError(
            f"{where}: {message}. Run `lmstrix list` to see the models the server has",
            **kwargs,
        )
    return APIStatusError(f"{where} answered HTTP {status}: {message}", **kwargs)


def empty_answer_error(url: str, model: str, body: Any) -> StreamError:
    """The error for a whole (non-streamed) answer with no text at all; an empty stream
    raises the same kind (``empty``)."""
    return StreamError(
        f"{url} (model {model!r}) answered with no text at all; servers answer this way "
        "to a prompt that does not fit the loaded context, or to a request they cancelled",
        url=url,
        kind="empty",
        body=body,
    )


# Words of a server refusing a load for lack of memory, or crashing at the size asked
# (LM Studio's guardrail says "insufficient system resources"; a crash is an overload).
_MEMORY_WORDS = (
    "memory",
    "insufficient system resources",
    "guardrail",
    "vram",
    "has crashed",
    "exited before becoming healthy",
)


def _load_advice(status: int, lowered: str) -> str:
    """What to do after a failed load: memory advice only for a memory refusal or crash.

    Anything else (a 502/503 from a proxy or a busy server, an HTML error page, a request
    the server rejects) gets no "smaller context or free memory" advice, which would send
    the user the wrong way.
    """
    if any(word in lowered for word in _MEMORY_WORDS):
        return "Try a smaller context length or free memory"
    if "unrecognized key" in lowered and "'ttl'" in lowered:
        return (
            "This server takes no ttl on a load: load without it and give ttl per request "
            "(chat(..., ttl=N), which applies when the request loads the model), or use "
            "`lms load --ttl`"
        )
    if status >= 500:
        return (
            f"HTTP {status} is an error of the server itself, not a refusal of this "
            "size: try again, or look at the server's log"
        )
    return "Check the load options the request gave"
