"""Errors pickle whole (a batch on an executor raises them in another process)."""

from __future__ import annotations

import pickle

import pytest

from lmstrix import errors


@pytest.mark.parametrize(
    "error",
    [
        errors.ContextOverflowError(
            "too long", url="http://h/v1", status_code=400, body={"error": "x"}, model="m"
        ),
        errors.APITimeoutError("slow", url="http://h"),
        errors.MissingVariableError("missing variables: a", missing=("a",)),
        errors.FallbackError("all failed", failures=[("a", "skipped: too long")]),
        errors.ConfigError("bad"),
        errors.SchemaValidationError("bad json", errors=["$: x"], text="{", tries=2, model="m"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_survives_pickling(error: errors.LMStrixError) -> None:
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error)
    assert str(again) == str(error)
    assert again.__dict__ == error.__dict__
