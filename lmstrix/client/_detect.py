"""Which API a server speaks (LM Studio v1, v0, or OpenAI-only), and the unknown-model error.

Detection asks ``/api/v1/models``, then ``/api/v0/models``, then ``/v1/models``. An
answer that is not a model list (LM Studio answers unknown paths with HTTP 200 and an
``error`` body; others with 404) moves on to the next family. A server *error* (5xx)
does not: it says nothing about the API, and deciding on it would stick for the client's
life (one HTML 500 made a v1 server look like v0, and a context search then measured
the wrong thing). It is raised instead, so the caller can try again.
"""

from __future__ import annotations

from typing import Any, Callable, List, Mapping, Sequence, Tuple

from ..errors import APIError, APIStatusError, ModelNotFoundError
from ._errormap import error_for

__all__ = ["detect_api", "model_not_found"]

FAMILIES = (("v1", "/api/v1/models", "models"), ("v0", "/api/v0/models", "data"))
"""The LM Studio families tried first: (name, path, key of the model list)."""


def detect_api(
    raw: Callable[[str], Tuple[int, Any]],
    openai_json: Callable[[], Any],
    url: Callable[[str], str],
) -> Tuple[str, List[Mapping[str, Any]]]:
    """``(api, model rows)``: ``raw(path)`` gives ``(status, parsed body)`` of a GET,
    ``openai_json()`` the checked JSON of ``GET /v1/models``, ``url(path)`` a full URL.

    Raises:
        AuthenticationError: the server wants a (different) token.
        APIStatusError: a server error during detection, or no model list anywhere.
    """
    for api, path, key in FAMILIES:
        status, body = raw(path)
        if status == 200 and isinstance(body, dict) and isinstance(body.get(key), list):
            return api, [row for row in body[key] if isinstance(row, Mapping)]
        if status in (401, 403) or status >= 500:
            raise error_for(status, body, url=url(path)) or APIError(
                f"{url(path)} answered HTTP {status}", url=url(path)
            )
    body = openai_json()
    rows = body.get("data") if isinstance(body, dict) else None
    if not isinstance(rows, list):
        raise APIStatusError(
            f"{url('/v1/models')} did not answer like LM Studio or an "
            "OpenAI-compatible server (no model list); check the server URL",
            url=url("/v1/models"),
            status_code=200,
            body=body,
        )
    return "openai", [row for row in rows if isinstance(row, Mapping)]


def model_not_found(base_url: str, key: str, known: Sequence[str]) -> ModelNotFoundError:
    """The error for an unknown model, suggesting close matches among ``known``."""
    import difflib  # here, not at the top: only this error needs it (and its import costs)

    close = difflib.get_close_matches(key, list(known), n=3, cutoff=0.4)
    lowered = key.lower()
    close += [k for k in known if lowered in k.lower() and k not in close][:3]
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return ModelNotFoundError(
        f"model {key!r} is not on the server at {base_url}{hint} (`lmstrix list` shows them all)",
        url=base_url,
        status_code=404,
        model=key,
    )
