"""The standard suites of ``langchain-tests`` hold ``async def`` tests written for
pytest-asyncio's auto mode. The project keeps pytest-asyncio (a dependency of
langchain-tests) in its default strict mode, so the async tests collected here are
marked ``asyncio`` as they are made, before pytest-asyncio looks for the mark (the suites
refuse a subclass that re-declares their tests, so they cannot be marked there)."""

from __future__ import annotations

import inspect
from typing import Any, Generator

import pytest


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_pycollect_makeitem(collector: Any, name: str, obj: object) -> Generator[None, Any, None]:
    outcome = yield
    if not inspect.iscoroutinefunction(obj):
        return
    made = outcome.get_result()
    for item in made if isinstance(made, list) else [made]:
        if isinstance(item, pytest.Function):
            item.add_marker(pytest.mark.asyncio)
