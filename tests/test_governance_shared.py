"""Four processes sharing one response cache and one quota file at once: no answer lost,
the quota never passed, a cache hit never charged."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import lmstrix
from lmstrix.cache import ResponseCache
from lmstrix.limits import Budget
from lmstrix.testing import FakeLMStudio

MODEL = "lmstrix-demo/tiny-chat-1b"
WORKER = str(Path(__file__).with_name("_governance_worker.py"))


def chats(server: FakeLMStudio) -> int:
    return server.counters.requests.get("/v1/chat/completions", 0)


def test_four_processes_sharing_one_cache_and_one_quota_file(
    fake: FakeLMStudio, tmp_path: Path
) -> None:
    cache_path, quota_path, count, limit = tmp_path / "c.sqlite", tmp_path / "q.sqlite", 15, 1500
    argv = [WORKER, "both", fake.base_url, str(cache_path), str(quota_path)]
    workers = [
        subprocess.Popen(
            [sys.executable, *argv, str(i), str(count), str(limit)], stdout=subprocess.PIPE
        )
        for i in range(4)
    ]
    results = [json.loads(w.communicate(timeout=180)[0]) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0, 0]

    # The quota: reached, never passed, and every server call charged exactly once.
    spent = sum(r["tokens"] for r in results)
    counters = fake.counters
    assert sum(r["sent"] for r in results) == chats(fake)
    assert sum(r["refused"] for r in results) > 0
    assert spent == counters.prompt_tokens + counters.generated_tokens <= limit
    assert Budget(quota_path, tokens_per_day=limit).used("team") == spent  # hits cost nothing

    # The cache: every answer any worker got is in the file, and served from it alone.
    answers = {}
    for result in results:
        for prompt, text in result["answers"].items():
            assert answers.setdefault(prompt, text) == text  # one answer per prompt
    cache = ResponseCache(cache_path)
    assert len(cache) == len(answers) > 0
    fake.reset_counters()
    with lmstrix.Client(fake.base_url, middleware=[cache]) as client:
        for prompt, text in answers.items():
            assert client.chat(MODEL, prompt, temperature=0, max_tokens=8).text == text
    assert chats(fake) == 0 and cache.stats.hits == len(answers)

    # With the quota spent, a hit is still answered, and charged nothing.
    budget = Budget(quota_path, tokens_per_day=limit)
    prompt, text = next(iter(answers.items()))
    with lmstrix.Client(fake.base_url, label="team", middleware=[cache, budget]) as client:
        assert client.chat(MODEL, prompt, temperature=0, max_tokens=8).text == text
        with pytest.raises(lmstrix.QuotaExceededError):
            client.chat(MODEL, "a new question", temperature=0, max_tokens=limit)
    assert budget.used("team") == spent and chats(fake) == 0
