"""Every error shape of the API reference (section 6) maps to the right exception."""

from __future__ import annotations

from typing import Any

import pytest

import lmstrix
from lmstrix.client._errormap import error_for, error_message, parse_json

URL = "http://localhost:1234/v1/chat/completions"
LOAD_URL = "http://localhost:1234/api/v1/models/load"

CASES = [
    # (status, body, url, expected class, fragments in the message)
    (
        200,
        {"error": "Unexpected endpoint or method. (GET /x)"},
        "http://localhost:1234/x",
        lmstrix.APIStatusError,
        ["not an endpoint", "newer LM Studio"],
    ),
    (
        404,
        {
            "error": {
                "message": 'Model "foo" not found. Please specify a valid model.',
                "type": "invalid_request_error",
                "param": "model",
                "code": "model_not_found",
            }
        },
        URL,
        lmstrix.ModelNotFoundError,
        ["foo", "lmstrix list"],
    ),
    (
        404,
        {
            "error": {
                "message": "No models loaded. Please load a model in the developer page.",
                "type": "invalid_request_error",
                "param": "model",
                "code": None,
            }
        },
        URL,
        lmstrix.ModelNotFoundError,
        ["No models loaded"],
    ),
    (
        404,
        {"error": {"type": "model_not_found", "message": "Model x not found in downloaded models"}},
        LOAD_URL,
        lmstrix.ModelNotFoundError,
        ["not found"],
    ),
    (
        400,
        {"error": {"type": "invalid_request", "message": "Unrecognized key(s) in object: 'ttl'"}},
        LOAD_URL,
        lmstrix.ModelLoadError,
        ["Unrecognized key", "loading"],
    ),
    (
        400,
        {
            "error": 'Failed to load model "big". Error: Model loading was stopped due to '
            "insufficient system resources."
        },
        LOAD_URL,
        lmstrix.ModelLoadError,
        ["insufficient system resources", "smaller context"],
    ),
    (
        500,
        {"error": {"type": "internal_error", "message": "model_load_failed: engine aborted"}},
        LOAD_URL,
        lmstrix.ModelLoadError,
        ["model_load_failed"],
    ),
    (
        400,
        {
            "error": "The number of tokens to keep from the initial prompt is greater than the "
            "context length (n_keep: 13055>= n_ctx: 4096)."
        },
        URL,
        lmstrix.ContextOverflowError,
        ["does not fit", "n_ctx: 4096"],
    ),
    (
        400,
        {
            "error": "Trying to keep the first 5000 tokens when context the overflows. However, "
            "the model is loaded with context length of only 4096 tokens"
        },
        URL,
        lmstrix.ContextOverflowError,
        ["4096"],
    ),
    (
        400,
        {"error": {"message": "Requested tokens (3000) exceed context window of 2048"}},
        URL,
        lmstrix.ContextOverflowError,
        ["2048"],
    ),
    (
        401,
        {
            "error": {
                "type": "invalid_request",
                "code": "invalid_api_key",
                "message": "An LM Studio API token is required",
            }
        },
        URL,
        lmstrix.AuthenticationError,
        ["API token", "LM_API_TOKEN"],
    ),
    (
        400,
        {
            "type": "invalid_request",
            "error": {
                "type": "invalid_request",
                "message": '"model" is required',
                "code": "missing_required_parameter",
                "param": "model",
            },
        },
        URL,
        lmstrix.APIStatusError,
        ['"model" is required', "missing_required_parameter"],
    ),
]


@pytest.mark.parametrize(("status", "body", "url", "cls", "fragments"), CASES)
def test_error_shapes(status: int, body: Any, url: str, cls: type, fragments: list) -> None:  # type: ignore[type-arg]
    err = error_for(status, body, url=url, model="foo")
    assert type(err) is cls
    assert err is not None
    assert err.status_code == status
    assert err.body == body
    assert url in str(err)
    for fragment in fragments:
        assert fragment in str(err)
    assert isinstance(err, lmstrix.LMStrixError)


def test_html_500_page() -> None:
    is_json, body = parse_json(b"<!DOCTYPE html><html><body>Internal Server Error</body></html>")
    assert not is_json
    err = error_for(500, body, url=URL, is_json=is_json)
    assert type(err) is lmstrix.APIStatusError
    assert "HTML error page" in str(err)
    assert "500" in str(err)


def test_plain_text_error() -> None:
    is_json, body = parse_json(b"bad gateway")
    err = error_for(502, body, url=URL, is_json=is_json)
    assert err is not None
    assert "bad gateway" in str(err)


def test_ok_answers_are_not_errors() -> None:
    assert error_for(200, {"choices": []}, url=URL) is None
    assert error_for(200, {"error": None}, url=URL) is None
    assert error_for(200, [1, 2], url=URL) is None


def test_error_message_shapes() -> None:
    assert error_message({"error": "x"}) == "x"
    assert error_message({"error": {"message": "m", "code": "c"}}) == "m [c]"
    assert error_message({"error": {}}) == "{}"
    assert error_message({"ok": 1}) is None
    assert error_message("text") is None


def test_builtin_bases() -> None:
    assert issubclass(lmstrix.ModelNotFoundError, LookupError)
    assert issubclass(lmstrix.ContextOverflowError, ValueError)
    assert issubclass(lmstrix.APIConnectionError, ConnectionError)
    assert issubclass(lmstrix.APITimeoutError, TimeoutError)
    assert issubclass(lmstrix.RegistryCorruptError, ValueError)
    assert issubclass(lmstrix.MissingVariableError, LookupError)
