"""What the examples share: the command line, and a simulated server when none is given.

Every example runs with no arguments against :class:`lmstrix.testing.FakeLMStudio` (a
simulated LM Studio on ``127.0.0.1``), and against a real server with
``--server URL`` (add ``--model KEY`` to pick the model). Only the public API is used.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from typing import Iterator, List, Optional, Sequence

# Run from a checkout without installing: put the folder holding `lmstrix/` first.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lmstrix
from lmstrix.testing import FakeLMStudio, SimModel


def parser(description: str, *, several_models: bool = False) -> argparse.ArgumentParser:
    """An argument parser with ``--server URL`` and ``--model KEY`` (repeatable if asked)."""
    result = argparse.ArgumentParser(description=description)
    result.add_argument(
        "--server",
        metavar="URL",
        help="a real LM Studio (or OpenAI-compatible) server, e.g. http://localhost:1234; "
        "without it the example starts the built-in simulator",
    )
    result.add_argument(
        "--token", metavar="T", help="API token (default $LM_API_TOKEN or $LMSTUDIO_API_TOKEN)"
    )
    if several_models:
        result.add_argument(
            "--model",
            metavar="KEY",
            action="append",
            dest="models",
            help="a model to use; give it several times (default: the loaded models)",
        )
    else:
        result.add_argument(
            "--model", metavar="KEY", help="the model (default: a loaded one, else the first)"
        )
    return result


@contextlib.contextmanager
def connect(
    args: argparse.Namespace,
    fleet: Optional[Sequence[SimModel]] = None,
    *,
    preload: Sequence[str] = (),
    time_scale: float = 0.0,
) -> Iterator[lmstrix.Client]:
    """Yield a client for ``--server``, or for a simulator serving ``fleet`` (closed after).

    On the simulator, ``preload`` names models loaded before the example starts (as if
    loaded in the LM Studio app) and ``time_scale`` makes simulated time real (0: instant).
    """
    if args.server:
        with lmstrix.Client(args.server, api_token=args.token) as client:
            yield client
        return
    with FakeLMStudio(fleet, time_scale=time_scale) as fake:
        for key in preload:
            fake.preload(key)
        print(f"(no --server given: using the simulator at {fake.base_url})", file=sys.stderr)
        with lmstrix.Client(fake.base_url) as client:
            yield client


def chat_models(client: lmstrix.Client) -> List[lmstrix.ModelInfo]:
    """The server's models that can chat (embedding models left out), loaded ones first."""
    models = [m for m in client.list_models() if m.type != "embedding"]
    return sorted(models, key=lambda m: not m.is_loaded)  # stable: server order otherwise


def pick_model(client: lmstrix.Client, wanted: Optional[str]) -> str:
    """``wanted`` if given, else a loaded chat model, else the first chat model listed.

    Raises:
        lmstrix.ModelNotFoundError: the server has no chat model.
    """
    if wanted:
        return wanted
    models = chat_models(client)
    if not models:
        raise lmstrix.ModelNotFoundError(
            f"the server at {client.base_url} lists no chat model; download or load one",
            url=client.base_url,
            status_code=404,
        )
    return models[0].key


def fail(exc: lmstrix.LMStrixError) -> int:
    """Print an lmstrix error the way a command-line tool should, and return exit code 1."""
    print(f"error: {exc}", file=sys.stderr)
    return 1


def figures(completion: lmstrix.Completion) -> str:
    """One line of what an answer cost: tokens, time, speed (``?`` where not reported)."""
    usage, stats = completion.usage, completion.stats

    def show(value: Optional[float], fmt: str) -> str:
        return "?" if value is None else format(value, fmt)

    return (
        f"tokens: prompt {show(usage.prompt_tokens, 'd')}, "
        f"answer {show(usage.completion_tokens, 'd')}; "
        f"{show(stats.total_time_s, '.3f')} s, "
        f"{show(stats.tokens_per_second, '.1f')} tokens/s, "
        f"finish_reason {completion.finish_reason}"
    )
