"""Integration tests against a real OpenAI-compatible server (llama-cpp-python + SmolLM2).

These tests are opt-in. Every test in this folder gets the ``integration`` marker, and
unless the run asks for them they are *deselected* (counted as "deselected" in the
summary, never as skipped or passed). They run when either

* ``-m`` names the marker (``pytest -m integration tests``; any expression that
  mentions ``integration`` is left to pytest's own ``-m`` filter), or
* ``LMSTRIX_INTEGRATION=1`` is set (then they run with the rest of ``pytest tests``).

The session fixture :func:`real_server` starts the server through ``llama_server.py``
(installing llama-cpp-python and fetching the model on first use), or uses the one at
``$LMSTRIX_IT_URL`` (its context size in ``$LMSTRIX_IT_N_CTX``, default 2048). When the
server cannot be built or started the tests FAIL with the reason: a missing server must
never look like a green run.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Callable, ContextManager, Iterator, List, Optional, Tuple

import pytest

import lmstrix

HERE = Path(__file__).resolve().parent
ENABLE_ENV = "LMSTRIX_INTEGRATION"


def _load_server_module() -> ModuleType:
    # Loaded by path: tests/ is not a package and must work under any --import-mode.
    name = "_lmstrix_it_llama_server"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, HERE / "llama_server.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


llama_server = _load_server_module()


def _requested(config: pytest.Config) -> bool:
    if os.environ.get(ENABLE_ENV, "").strip().lower() in ("1", "true", "yes"):
        return True
    return "integration" in (config.getoption("markexpr", default="") or "")


def _is_ours(item: pytest.Item) -> bool:
    return HERE in Path(str(item.path)).resolve().parents


@pytest.hookimpl(tryfirst=True)  # mark before pytest's own -m filter looks at the items
def pytest_collection_modifyitems(config: pytest.Config, items: List[pytest.Item]) -> None:
    """Mark this folder's tests ``integration``; deselect them unless asked for."""
    ours = [item for item in items if _is_ours(item)]
    for item in ours:
        item.add_marker(pytest.mark.integration)
    if not ours or _requested(config):
        return
    config.hook.pytest_deselected(items=ours)
    items[:] = [item for item in items if not _is_ours(item)]
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"lmstrix: {len(ours)} integration test(s) deselected; run them with "
            f"`-m integration` or {ENABLE_ENV}=1"
        )


def _uncaptured(config: pytest.Config) -> ContextManager[None]:
    """Let the server script's progress and timings reach the terminal (a first
    build is minutes of silence otherwise)."""
    capture = config.pluginmanager.getplugin("capturemanager")
    if capture is None:
        return contextlib.nullcontext()
    return capture.global_and_fixture_disabled()


@contextlib.contextmanager
def _served(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory, n_ctx: int
) -> Iterator[Tuple[str, int]]:
    """Start a server at ``n_ctx`` (its own state file), yield ``(url, n_ctx)``, stop it."""
    state_file = tmp_path_factory.mktemp(f"llama-{n_ctx}") / "server.json"
    try:
        with _uncaptured(pytestconfig):
            state = llama_server.start(n_ctx=n_ctx, state_file=state_file)
    except llama_server.SetupError as exc:
        pytest.fail(f"the integration server could not be started: {exc}", pytrace=False)
    try:
        yield state.url, state.n_ctx
    finally:
        with _uncaptured(pytestconfig):
            llama_server.say(llama_server.stop(state))


@pytest.fixture(scope="session")
def real_server(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tuple[str, int]]:
    """``(base_url, n_ctx)`` of a running llama-cpp-python server, stopped at the end."""
    n_ctx = int(os.environ.get("LMSTRIX_IT_N_CTX") or llama_server.DEFAULT_N_CTX)
    given = os.environ.get("LMSTRIX_IT_URL")
    if given:
        yield given.rstrip("/"), n_ctx
        return
    with _served(pytestconfig, tmp_path_factory, n_ctx) as served:
        yield served


@pytest.fixture(scope="session")
def real_server_8k(
    pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Tuple[str, int]]:
    """A second server at ``n_ctx`` 8192, for the context search with its defaults."""
    with _served(pytestconfig, tmp_path_factory, 8192) as served:
        yield served


@pytest.fixture
def show(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Print a line to the terminal past pytest's capture (figures for the notes)."""

    def emit(line: str) -> None:
        with _uncaptured(pytestconfig):
            print(line, flush=True)

    return emit


@pytest.fixture(scope="session")
def own_model_key() -> Optional[str]:
    """The model key of the server the fixture starts; None for ``$LMSTRIX_IT_URL``."""
    return None if os.environ.get("LMSTRIX_IT_URL") else llama_server.MODEL_ALIAS


@pytest.fixture(scope="session")
def model(real_server: Tuple[str, int]) -> str:
    """The key of the model the server offers (the first one listed)."""
    with lmstrix.Client(real_server[0], timeout=120) as client:
        models = client.list_models()
    if not models:
        pytest.fail(f"the server at {real_server[0]} lists no model", pytrace=False)
    return models[0].key


@pytest.fixture
def client(real_server: Tuple[str, int]) -> Iterator[lmstrix.Client]:
    """A fresh client for the server (feature detection not yet done)."""
    with lmstrix.Client(real_server[0], timeout=120, max_retries=2) as fresh:
        yield fresh
