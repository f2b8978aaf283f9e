"""Map-reduce summarize and ask over long documents, against the simulator.

The reader model has a tested working context of 8,192 tokens and answers like a
lossless "summarizer": it echoes the ``[[markers]]`` it is shown (``echo_pattern``), so
the final text shows which parts of the document reached it. Every request's real prompt
tokens (the simulator's tokenizer) plus its ``max_tokens`` are checked against the
working context, and the simulator's prompt-token counter against the answered requests'
usage (an overflowing prompt is counted there but never answered).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from _text_helpers import clean_embedder_key

import lmstrix
from lmstrix.errors import ConfigError, LMStrixError
from lmstrix.registry import ModelRecord
from lmstrix.testing import MARKER_PATTERN, FakeLMStudio, Fault, SimModel, long_document
from lmstrix.text import MapReduceProgress, ask, summarize

WORKING = 8192
READER = SimModel(
    "sim/reader-8k",
    32768,
    16384,
    WORKING,
    echo_pattern=MARKER_PATTERN,
    parallel=4,
    tokenizer="words",
)
EMBEDDER = SimModel(clean_embedder_key(), 2048, type="embedding")
NEEDLES = {"amber": "4711", "birch": "2290", "cedar": "0815"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio([READER, EMBEDDER], keep_received=5000) as server:
        yield server


@pytest.fixture
def client(fake: FakeLMStudio, tmp_path: Path) -> Iterator[lmstrix.Client]:
    registry = lmstrix.Registry(str(tmp_path / "registry.json"), server=fake.base_url)
    registry.upsert(
        ModelRecord(
            READER.key,
            declared_context=32768,
            loadable_context=16384,
            working_context=WORKING,
            chars_per_token=4.0,
            status="done",
        )
    )
    with lmstrix.Client(fake.base_url, registry=registry) as chat:
        for inst in fake.loaded():
            chat.unload(inst.id)
        fake.reset_counters()
        fake.clear_received()
        yield chat


def markers(text: str) -> List[str]:
    return re.findall(MARKER_PATTERN, text)


def chat_requests(fake: FakeLMStudio) -> List[Dict[str, Any]]:
    return [r.body for r in fake.received if r.path.endswith("/chat/completions")]


def prompt_of(body: Dict[str, Any]) -> str:
    return "".join(m["content"] for m in body["messages"])


def real_tokens(body: Dict[str, Any]) -> int:
    """The prompt tokens the simulator counts for a chat request (template included)."""
    content = sum(READER.tokens(m["content"]) for m in body["messages"])
    return content + READER.template_overhead_tokens


def state_records(path: Path) -> List[Dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def assert_within_working_context(fake: FakeLMStudio, state: Path) -> Tuple[int, int]:
    """Every request fits, and none overflowed; returns (requests, largest prompt)."""
    bodies = chat_requests(fake)
    assert bodies
    largest = max(real_tokens(b) for b in bodies)
    for body in bodies:
        assert real_tokens(body) + body["max_tokens"] <= WORKING
    answered = [r for r in state_records(state) if r["error"] is None]
    # The simulator counts the prompt tokens of every request, overflowing ones too.
    embedded = sum(
        sum(EMBEDDER.tokens(t) for t in r.body["input"])
        for r in fake.received
        if r.path.endswith("/embeddings")
    )
    counted = fake.counters.prompt_tokens - embedded
    assert counted == sum(r["usage"]["prompt_tokens"] for r in answered)
    readers = [inst for inst in fake.loaded() if inst.key == READER.key]
    assert readers and all(inst.context_length >= WORKING for inst in readers)
    return len(bodies), largest


def test_a_200k_token_document_is_summarized_within_the_working_context(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path
) -> None:
    document = long_document(1900, marker_every=5)
    assert READER.tokens(document) >= 200_000
    state = tmp_path / "state.jsonl"
    seen: List[MapReduceProgress] = []
    result = summarize(client, READER.key, document, state=state, on_progress=seen.append)

    requests, largest = assert_within_working_context(fake, state)
    assert largest > WORKING // 2  # the chunks do use the room they have
    assert result.working_context == WORKING
    assert requests == result.requests == 1 + len(result.chunks) + sum(map(len, result.levels[1:]))
    # Every chunk holds a marker, and every marker of the document is in the summary.
    assert len(result.chunks) > 25
    for chunk in result.chunks:
        assert markers(chunk.text), chunk.index
    assert sorted(set(markers(result.text))) == sorted(set(markers(document)))
    # Each partial summary went into a reduce prompt, and the last level is the result.
    reduce_prompts = [
        prompt_of(b) for b in chat_requests(fake) if "These are summaries" in prompt_of(b)
    ]
    for partial in result.levels[0]:
        assert any(partial in p for p in reduce_prompts)
    assert result.levels[-1] == [result.text]
    assert {p.stage for p in seen} == {"calibrate", "map", "reduce"}
    assert result.to_dict()["levels"][0] == len(result.chunks)


def test_a_killed_run_resumes_without_redoing_finished_chunks(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path
) -> None:
    document = long_document(1000, marker_every=4)
    state = tmp_path / "state.jsonl"

    class Killed(Exception):
        pass

    def kill_after_five(step: MapReduceProgress) -> None:
        if step.stage == "map" and step.done >= 5:
            raise Killed

    with pytest.raises(Killed):
        summarize(client, READER.key, document, state=state, workers=1, on_progress=kill_after_five)
    finished = [r["id"] for r in state_records(state) if "-map0-" in r["id"]]
    assert len(finished) >= 5
    first_run = len(chat_requests(fake))
    assert first_run >= 1 + len(finished)  # the calibration, the finished chunks
    lines_before = len(state_records(state))
    fake.clear_received()  # (a request abandoned by the kill may still land after this)

    result = summarize(client, READER.key, document, state=state, workers=1)
    resumed = chat_requests(fake)
    assert len(finished) < len(result.chunks)
    # Only the chunks not answered before were asked (then the reduce), nothing twice.
    done_before = {int(i.rsplit("-", 1)[1]) for i in finished}
    asked = {c.index for c in result.chunks for b in resumed if prompt_of(b).endswith(c.text)}
    assert asked == set(range(len(result.chunks))) - done_before
    assert result.requests == len(state_records(state)) - lines_before
    assert result.requests == len(asked) + sum(map(len, result.levels[1:]))
    assert not [b for b in resumed if b["max_tokens"] == 1]  # calibrated once, in run 1
    ids = [r["id"] for r in state_records(state)]
    assert len(ids) == len(set(ids))
    assert sorted(set(markers(result.text))) == sorted(set(markers(document)))

    # A third run finds every answer in the state: no request at all.
    fake.clear_received()
    again = summarize(client, READER.key, document, state=state, workers=1)
    assert again.requests == 0 and not chat_requests(fake)
    assert again.text == result.text


@pytest.mark.parametrize("name", ["birch", "cedar"])
def test_ask_in_map_mode_finds_the_needle_asked_for(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path, name: str
) -> None:
    document = long_document(700, marker_every=0, needles=NEEDLES)
    state = tmp_path / "ask.jsonl"
    result = ask(client, READER.key, document, f"What is the {name} vault code?", state=state)
    assert result.text == f"[[{name.upper()}-{NEEDLES[name]}]]"
    assert result.mode == "map" and len(result.chunks) > 5
    # Each needle is in one chunk; only the chunk with the one asked for answers it.
    assert [a for a in result.levels[0] if a != "NOTHING"] == [result.text]
    assert_within_working_context(fake, state)


def test_ask_extractive_sends_only_the_closest_chunks_and_finds_the_needle(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path
) -> None:
    document = long_document(700, marker_every=0, needles=NEEDLES)
    state = tmp_path / "ask.jsonl"
    result = ask(
        client,
        READER.key,
        document,
        "What is the birch vault code?",
        mode="extractive",
        embedding_model=EMBEDDER.key,
        state=state,
    )
    assert result.text == "[[BIRCH-2290]]"
    assert any("[[BIRCH-2290]]" in c.text for c in result.selected)
    assert len(result.selected) < len(result.chunks)
    assert [c.index for c in result.selected] == sorted(c.index for c in result.selected)
    # The needle chunks share words with the question ("the birch vault code is"), the
    # filler none: the one asked for ranks first, the two other needles next.
    ranked = sorted(range(len(result.chunks)), key=lambda i: -result.scores[i])
    assert "[[BIRCH-2290]]" in result.chunks[ranked[0]].text
    assert all("vault code is" in result.chunks[i].text for i in ranked[:3])
    requests, _ = assert_within_working_context(fake, state)
    assert requests == result.requests == 2  # the calibration, then one question


def test_a_failed_request_stops_the_run_and_is_retried_on_the_next(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path
) -> None:
    document = long_document(300, marker_every=3)
    state = tmp_path / "state.jsonl"
    fake.inject(Fault(kind="status", status=400, skip=2, message="bad luck"))
    with pytest.raises(LMStrixError, match="run again with the same state file"):
        summarize(client, READER.key, document, state=state, workers=1)
    failed = [r for r in state_records(state) if r["error"] is not None]
    assert len(failed) == 1
    result = summarize(client, READER.key, document, state=state, workers=1)
    assert any(r["id"] == failed[0]["id"] + "~1" for r in state_records(state))
    assert sorted(set(markers(result.text))) == sorted(set(markers(document)))


def test_bad_input_is_refused_before_any_request(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError, match=f"lmstrix test {EMBEDDER.key}"):
        summarize(client, EMBEDDER.key, "text")
    with pytest.raises(ConfigError, match="max_tokens"):
        summarize(client, READER.key, "text", max_tokens=4000)
    with pytest.raises(ConfigError, match="at least 1"):
        summarize(client, READER.key, "text", max_tokens=0)
    with pytest.raises(ConfigError, match="mode must be one of"):
        ask(client, READER.key, "text", "why?", mode="guess")
    with pytest.raises(ConfigError, match="embedding model"):
        ask(client, READER.key, "text", "why?", mode="extractive")
    with pytest.raises(ConfigError, match="question is empty"):
        ask(client, READER.key, "text", "  ")
    assert not chat_requests(fake)


def test_an_untested_model_runs_with_a_given_working_context(
    fake: FakeLMStudio, tmp_path: Path
) -> None:
    other = SimModel("sim/other", 8192, echo_pattern=MARKER_PATTERN)
    with FakeLMStudio([other]) as server, lmstrix.Client(server.base_url) as plain:
        document = long_document(60, marker_every=2)
        result = summarize(plain, other.key, document, working_context=4096, max_tokens=300)
        assert sorted(set(markers(result.text))) == sorted(set(markers(document)))
        assert result.working_context == 4096 and len(result.chunks) > 1
        short = summarize(plain, other.key, "One [[only]] marker.", working_context=4096)
        assert short.text == "[[only]]" and short.levels == [["[[only]]"]]


def test_the_reduce_step_runs_several_rounds_when_the_answers_do_not_fit_one(
    fake: FakeLMStudio, client: lmstrix.Client, tmp_path: Path
) -> None:
    document = long_document(700, marker_every=8)
    state = tmp_path / "state.jsonl"
    result = summarize(
        client, READER.key, document, working_context=1024, max_tokens=120, state=state
    )
    assert len(result.levels) >= 3  # map, then at least two reduce rounds
    assert [len(level) for level in result.levels][-1] == 1
    assert all(len(a) > len(b) for a, b in zip(result.levels, result.levels[1:]))
    assert sorted(set(markers(result.text))) == sorted(set(markers(document)))
    for body in chat_requests(fake):
        assert real_tokens(body) + body["max_tokens"] <= 1024


def test_groups_keep_every_part_in_order_and_cut_one_too_long() -> None:
    from lmstrix.text._mapreduce import group

    def count(text: str) -> int:
        return len(text.split())

    parts = ["a b", "c d e", "f " * 12, "g", "h i"]
    groups = group(parts, 6, count)
    assert " ".join(" ".join(groups).split()) == " ".join(" ".join(parts).split())
    assert all(count(g) <= 6 for g in groups)
    assert groups[0] == "a b\n\nc d e"
    assert group([], 6, count) == []


def test_a_pool_loads_the_model_at_the_working_context_on_each_server(
    fake: FakeLMStudio, tmp_path: Path
) -> None:
    with FakeLMStudio([READER]) as first, FakeLMStudio([READER]) as second:
        registry = lmstrix.Registry(str(tmp_path / "registry.json"))
        for server in (first, second):
            record = ModelRecord(READER.key, working_context=WORKING, status="done")
            registry.upsert(record, server=server.base_url)
        document = long_document(800, marker_every=5)
        with lmstrix.Pool([first.base_url, second.base_url], registry=registry) as pool:
            result = summarize(pool, READER.key, document)
        assert sorted(set(markers(result.text))) == sorted(set(markers(document)))
        for server in (first, second):
            assert [i.context_length for i in server.loaded()] == [WORKING]
            assert server.counters.requests.get("/v1/chat/completions", 0) > 0
