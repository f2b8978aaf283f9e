"""Subprocess helper for the cache and quota concurrency tests (not a test module).

Usage::

    python _governance_worker.py cache URL CACHE_FILE WORKER_ID COUNT
    python _governance_worker.py budget URL QUOTA_FILE WORKER_ID COUNT LIMIT
    python _governance_worker.py both URL CACHE_FILE QUOTA_FILE WORKER_ID COUNT LIMIT

``cache`` sends COUNT temperature-0 chats through a ``ResponseCache``: prompts
``shared {n}`` (the same in every worker) and ``w{WORKER_ID} {n}`` (its own).
``budget`` sends up to COUNT chats with ``max_tokens=8`` under a shared ``Budget`` of
LIMIT tokens for the label ``team``, and prints, as JSON, how many were sent and refused
and the tokens the server reported for them.
``both`` sends the ``cache`` prompts (with ``max_tokens=8``) through a ``ResponseCache``
and then that ``Budget`` and a ``RateLimit`` on the same quota file, and prints how many
went to the server, were answered by the cache or refused, the server's tokens, and
every answer by prompt.
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import lmstrix

MODEL = "lmstrix-demo/tiny-chat-1b"


def cache(url: str, path: str, worker: str, count: int) -> None:
    from lmstrix.cache import ResponseCache

    with lmstrix.Client(url, middleware=[ResponseCache(path)]) as client:
        for n in range(count):
            client.chat(MODEL, f"shared {n}", temperature=0)
            client.chat(MODEL, f"w{worker} {n}", temperature=0)


def budget(url: str, path: str, worker: str, count: int, limit: int) -> None:
    from lmstrix.limits import Budget

    sent = refused = tokens = 0
    middleware = [Budget(path, tokens_per_day=limit)]
    with lmstrix.Client(url, label="team", middleware=middleware) as client:
        for n in range(count):
            try:
                done = client.chat(MODEL, f"worker {worker} asks question {n}", max_tokens=8)
            except lmstrix.QuotaExceededError:
                refused += 1
                continue
            sent += 1
            tokens += done.usage.total_tokens or 0
    print(json.dumps({"sent": sent, "refused": refused, "tokens": tokens}))


def both(url: str, paths: list[str], worker: str, count: int, limit: int) -> None:
    from lmstrix.cache import ResponseCache
    from lmstrix.limits import Budget, RateLimit

    cache = ResponseCache(paths[0])
    quota = [Budget(paths[1], tokens_per_day=limit), RateLimit(10**6, path=paths[1])]
    sent = refused = tokens = 0
    answers = {}
    with lmstrix.Client(url, label="team", middleware=[cache, *quota]) as client:
        for n in range(count):
            for prompt in (f"shared {n}", f"w{worker} {n}"):
                hits = cache.stats.hits
                try:
                    done = client.chat(MODEL, prompt, temperature=0, max_tokens=8)
                except lmstrix.QuotaExceededError:
                    refused += 1
                    continue
                answers[prompt] = done.text
                if cache.stats.hits == hits:
                    sent += 1
                    tokens += done.usage.total_tokens or 0
        cache.flush()
    hits = cache.stats.hits
    print(
        json.dumps(
            {"sent": sent, "hits": hits, "refused": refused, "tokens": tokens, "answers": answers}
        )
    )


if __name__ == "__main__":
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "cache":
        cache(args[0], args[1], args[2], int(args[3]))
    elif mode == "both":
        both(args[0], args[1:3], args[3], int(args[4]), int(args[5]))
    else:
        budget(args[0], args[1], args[2], int(args[3]), int(args[4]))
