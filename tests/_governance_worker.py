"""Subprocess helper for the cache and quota concurrency tests (not a test module).

Usage::

    python _governance_worker.py cache URL CACHE_FILE WORKER_ID COUNT
    python _governance_worker.py budget URL QUOTA_FILE WORKER_ID COUNT LIMIT
    python _governance_worker.py both URL CACHE_FILE QUOTA_FILE WORKER_ID COUNT LIMIT

``cache`` sends COUNT pairs of temperature-0 chats through a ``ResponseCache``: prompts
``shared {n}`` (the same in every worker) and ``w{WORKER_ID} {n}`` (its own).
``budget`` sends up to COUNT chats with ``max_tokens=8`` under a shared ``Budget`` of
LIMIT tokens for the label ``team``.
``both`` sends the ``cache`` prompts (with ``max_tokens=8``) through a ``ResponseCache``
and then that ``Budget`` and a ``RateLimit`` on the same quota file.

Each prints, as JSON, how many chats went to the server, were answered by the cache or
refused, the tokens the server reported for those it answered, and every answer by
prompt.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lmstrix
from lmstrix.cache import ResponseCache
from lmstrix.limits import Budget, RateLimit

MODEL = "lmstrix-demo/tiny-chat-1b"


def ask(
    url: str,
    prompts: List[str],
    middleware: List[Any],
    cache: Optional[ResponseCache] = None,
    **params: Any,
) -> None:
    """Send each prompt; print what became of them (see the module's docstring)."""
    sent = refused = tokens = 0
    answers: Dict[str, str] = {}
    with lmstrix.Client(url, label="team", middleware=middleware) as client:
        for prompt in prompts:
            hits = 0 if cache is None else cache.stats.hits
            try:
                done = client.chat(MODEL, prompt, **params)
            except lmstrix.QuotaExceededError:
                refused += 1
                continue
            answers[prompt] = done.text
            if cache is None or cache.stats.hits == hits:  # the server answered it
                sent += 1
                tokens += done.usage.total_tokens or 0
    hits = 0 if cache is None else cache.stats.hits
    counts = {"sent": sent, "hits": hits, "refused": refused, "tokens": tokens}
    print(json.dumps({**counts, "answers": answers}))


def pairs(worker: str, count: int) -> List[str]:
    """The ``cache`` prompts: ``shared {n}`` and ``w{worker} {n}``, in turn."""
    return [p for n in range(count) for p in (f"shared {n}", f"w{worker} {n}")]


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "cache":
        cache = ResponseCache(args[1])
        ask(args[0], pairs(args[2], int(args[3])), [cache], cache, temperature=0)
    elif mode == "budget":
        worker, count, limit = args[2], int(args[3]), int(args[4])
        prompts = [f"worker {worker} asks question {n}" for n in range(count)]
        ask(args[0], prompts, [Budget(args[1], tokens_per_day=limit)], max_tokens=8)
    else:
        cache, quota = ResponseCache(args[1]), args[2]
        limit = int(args[5])
        middleware = [cache, Budget(quota, tokens_per_day=limit), RateLimit(10**6, path=quota)]
        prompts = pairs(args[3], int(args[4]))
        ask(args[0], prompts, middleware, cache, temperature=0, max_tokens=8)
