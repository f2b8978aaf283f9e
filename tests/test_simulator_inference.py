"""The simulator's inference side: chat, streaming, overflow, probe, noise, costs, keep-alive."""

from __future__ import annotations

import http.client
import json
import random
from typing import Any, Dict, Iterator

import pytest
from _sim_http import Http, chat_body

from lmstrix.context._probe import QUESTION, build_probe, make_secret
from lmstrix.testing import FakeLMStudio, SimModel, test_fleet


def probe_for_tokens(model: SimModel, tokens: int, secret: str = "482913", seed: int = 0) -> str:
    """The longest probe whose chat prompt is at most ``tokens`` simulated tokens."""
    lo, hi = 0, int(tokens * model.chars_per_token * 2)
    while lo < hi:  # the model's count grows with the probe's length
        mid = (lo + hi + 1) // 2
        used = model.tokens(build_probe(secret, mid, seed=seed)) + model.template_overhead_tokens
        lo, hi = (mid, hi) if used <= tokens else (lo, mid - 1)
    return build_probe(secret, lo, seed=seed)


FLEET = {m.key: m for m in test_fleet()}
OVERFLOW_TEXT = build_probe("482913", 20_000)  # about 5,000 tokens: over a 4,096 load
OVERFLOW_TOKENS = FLEET["sim/plain-8k"].tokens(OVERFLOW_TEXT) + 12


@pytest.fixture
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(test_fleet()) as server:
        yield server


def content(reply: Dict[str, Any]) -> str:
    return str(reply["choices"][0]["message"]["content"])


# -- answers -------------------------------------------------------------------------------


def test_chat_shape_and_arithmetic(web: Http, fake: FakeLMStudio) -> None:
    fake.preload("sim/plain-8k")
    status, body = web.post("/v1/chat/completions", chat_body("sim/plain-8k", "What is 2+3?"))
    assert status == 200
    assert body["object"] == "chat.completion"
    assert body["model"] == "sim/plain-8k" == body["system_fingerprint"]
    assert body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"]["role"] == "assistant"
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["stats"] == {}
    assert content(body) == "5"
    # "What" (+1 for its costly "W"), " is", "2", "+", "3", "?" and the chat template's 12
    assert body["usage"] == {"prompt_tokens": 7 + 12, "completion_tokens": 1, "total_tokens": 20}
    for question, answer in (
        ("6 * 7 =", "42"),
        ("What is 10 - 12?", "-2"),
        ("7/2", "3.5"),
        ("3 x 3", "9"),
        ("1/0", "undefined"),
        ("0.1 + 0.2", "0.3"),
    ):
        assert (
            content(web.post("/v1/chat/completions", chat_body("sim/plain-8k", question))[1])
            == answer
        )
    text = content(
        web.post("/v1/chat/completions", chat_body("sim/plain-8k", "Tell me a story"))[1]
    )
    assert text == "Simulated answer from sim/plain-8k to: Tell me a story"


def test_message_content_parts_and_system_messages(web: Http) -> None:
    body = {
        "model": "sim/plain-8k",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "What is 4+4?"}, "!"]},
        ],
    }
    _status, reply = web.post("/v1/chat/completions", body)
    assert content(reply) == "8"
    # "Be", " brief", "." + "What" (and its "W"), " is", "4", "+", "4", "?", "!" + 12
    assert reply["usage"]["prompt_tokens"] == 3 + 8 + 12


@pytest.mark.parametrize("messages", [None, [], "hi", [{"content": "no role"}], [["role", "user"]]])
def test_bad_messages(web: Http, messages: Any) -> None:
    status, body = web.post("/v1/chat/completions", {"model": "sim/plain-8k", "messages": messages})
    assert status == 400
    assert body["error"]["param"] == "messages"


def test_max_tokens(web: Http) -> None:
    body = chat_body("sim/plain-8k", "Tell me a long story please", max_tokens=3)
    _, reply = web.post("/v1/chat/completions", body)
    assert content(reply) == "Simulated answer from"
    assert reply["choices"][0]["finish_reason"] == "length"
    assert reply["usage"]["completion_tokens"] == 3
    body["max_tokens"] = -1
    assert web.post("/v1/chat/completions", body)[1]["choices"][0]["finish_reason"] == "stop"
    (
        _status,
        items,
    ) = web.stream("/v1/chat/completions", dict(body, max_tokens=2))[::2]
    deltas = [i["choices"][0]["delta"].get("content", "") for i in items[:-1] if i["choices"]]
    assert "".join(deltas) == "Simulated answer"
    assert items[-2]["choices"][0]["finish_reason"] == "length"


def test_probe_right_below_working_wrong_above(web: Http, fake: FakeLMStudio) -> None:
    model = FLEET["sim/nonround-37k"]
    fake.preload(model.key, 37_311)
    for tokens, right in ((2000, True), (20_005, True), (20_006, False), (37_000, False)):
        text = probe_for_tokens(model, tokens)
        status, reply = web.post("/v1/chat/completions", chat_body(model.key, text, max_tokens=16))
        assert status == 200
        used = reply["usage"]["prompt_tokens"]
        assert tokens - 5 <= used <= tokens
        answer = content(reply)
        assert len(answer) == 6
        assert answer.isdigit()
        assert (answer == "482913") is right or (tokens == 20_006 and used <= 20_005)


def test_broken_model_is_always_wrong(web: Http) -> None:
    text = build_probe("482913", 400)
    reply = web.post("/v1/chat/completions", chat_body("sim/broken-16k", text))[1]
    assert content(reply) != "482913"
    assert content(reply).isdigit()


def test_truncating_model(web: Http, fake: FakeLMStudio) -> None:
    model = FLEET["sim/truncating-20k"]
    fake.preload(model.key, 16_000)
    ok = web.post("/v1/chat/completions", chat_body(model.key, probe_for_tokens(model, 15_000)))[1]
    assert content(ok) == "482913"
    status, cut = web.post(
        "/v1/chat/completions", chat_body(model.key, probe_for_tokens(model, 18_000))
    )
    assert status == 200
    assert cut["usage"]["prompt_tokens"] == 16_000
    assert content(cut) != "482913"


def test_noise_is_deterministic_per_prompt_and_varies_per_needle() -> None:
    model = FLEET["sim/noisy-half"]  # working 16_000, band 15%: noisy above 13_600
    with FakeLMStudio(test_fleet(), seed=3) as fake:
        web = Http(fake)
        fake.preload(model.key, 32768)
        rng = random.Random(1)
        outcomes = []
        for trial in range(12):
            secret = make_secret(rng)
            text = probe_for_tokens(model, 15_000, secret, seed=trial)
            first = content(web.post("/v1/chat/completions", chat_body(model.key, text))[1])
            again = content(web.post("/v1/chat/completions", chat_body(model.key, text))[1])
            assert first == again
            outcomes.append(first == secret)
        assert any(outcomes)
        assert not all(outcomes)
        # below the band the model is reliable
        for trial in range(5):
            secret = make_secret(rng)
            text = probe_for_tokens(model, 12_000, secret, seed=trial)
            assert (
                content(web.post("/v1/chat/completions", chat_body(model.key, text))[1]) == secret
            )
    # the seed of the server changes which needles fail
    with FakeLMStudio(test_fleet(), seed=4) as other:
        web = Http(other)
        other.preload(model.key, 32768)
        rng = random.Random(1)
        other_outcomes = []
        for trial in range(12):
            secret = make_secret(rng)
            text = probe_for_tokens(model, 15_000, secret, seed=trial)
            other_outcomes.append(
                content(web.post("/v1/chat/completions", chat_body(model.key, text))[1]) == secret
            )
        assert other_outcomes != outcomes


# -- overflow ------------------------------------------------------------------------------


def test_overflow_non_stream(web: Http, fake: FakeLMStudio) -> None:
    fake.preload("sim/plain-8k", 4096)
    status, body = web.post("/v1/chat/completions", chat_body("sim/plain-8k", OVERFLOW_TEXT))
    assert status == 400
    assert 4_500 < OVERFLOW_TOKENS < 5_500
    assert body == {
        "error": "The number of tokens to keep from the initial prompt is greater than the "
        f"context length (n_keep: {OVERFLOW_TOKENS}>= n_ctx: 4096). Try to load the model with "
        "a larger context length, or provide a shorter input."
    }
    assert fake.counters.prompt_tokens == OVERFLOW_TOKENS
    assert fake.counters.processed_tokens == 0


def test_overflow_stream_error_event(web: Http, fake: FakeLMStudio) -> None:
    fake.preload("sim/plain-8k", 4096)
    status, ctype, items = web.stream(
        "/v1/chat/completions", chat_body("sim/plain-8k", OVERFLOW_TEXT)
    )
    assert status == 200
    assert ctype == "text/event-stream"
    assert len(items) == 1
    assert items[0]["error"]["type"] == "invalid_request_error"
    assert f"n_keep: {OVERFLOW_TOKENS}>= n_ctx: 4096" in items[0]["error"]["message"]
    # the connection is still usable afterwards
    assert web.post("/v1/chat/completions", chat_body("sim/plain-8k", "1+1"))[0] == 200


def test_overflow_stream_empty() -> None:
    with FakeLMStudio(test_fleet(), overflow_stream="empty") as fake:
        fake.preload("sim/plain-8k", 4096)
        status, _, items = Http(fake).stream(
            "/v1/chat/completions",
            chat_body("sim/plain-8k", OVERFLOW_TEXT, stream_options={"include_usage": True}),
        )
        assert status == 200
        assert items[-1] == "[DONE]"
        assert all(not i["choices"][0]["delta"].get("content") for i in items[:-1])
        assert items[0]["choices"][0]["finish_reason"] == "stop"


# -- streaming -----------------------------------------------------------------------------


def test_stream_shape_and_usage_only_when_asked(web: Http, fake: FakeLMStudio) -> None:
    body = chat_body("sim/plain-8k", "Tell me a story")
    status, ctype, items = web.stream("/v1/chat/completions", body)
    assert status == 200
    assert ctype == "text/event-stream"
    assert items[-1] == "[DONE]"
    chunks = items[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert all("usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Simulated answer from sim/plain-8k to: Tell me a story"
    assert len(chunks) >= 5
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(c["choices"][0]["finish_reason"] is None for c in chunks[:-1])
    status, _, items = web.stream(
        "/v1/chat/completions", dict(body, stream_options={"include_usage": True})
    )
    usage_chunk = items[-2]
    assert usage_chunk["choices"] == []
    # "Tell", " me", " a", " story" (and its costly "y") and the template's 12
    assert usage_chunk["usage"] == {
        "prompt_tokens": 5 + 12,
        "completion_tokens": 9,
        "total_tokens": 26,
    }
    assert items[-3]["choices"][0]["finish_reason"] == "stop"
    assert fake.counters.streams == 2


def test_completions_and_v0_extras(web: Http, fake: FakeLMStudio) -> None:
    status, body = web.post("/v1/completions", {"model": "sim/plain-8k", "prompt": "2+2="})
    assert status == 200
    assert body["object"] == "text_completion"
    assert body["choices"][0]["text"] == "4"
    assert body["usage"]["prompt_tokens"] == 4  # "2", "+", "2", "=": no chat template
    status, _, items = web.stream(
        "/v1/completions", {"model": "sim/plain-8k", "prompt": ["a", "b"]}
    )
    assert "".join(i["choices"][0]["text"] for i in items[:-1]).startswith("Simulated answer")
    assert items[-2]["choices"][0]["finish_reason"] == "stop"
    status, body = web.post("/v1/completions", {"model": "sim/plain-8k", "prompt": 5})
    assert status == 400
    assert body["error"]["param"] == "prompt"
    status, body = web.post("/api/v0/completions", {"model": "sim/plain-8k", "prompt": "hi"})
    assert body["model_info"] == {
        "arch": "llama",
        "quant": "Q4_K_M",
        "format": "gguf",
        "context_length": 4096,
    }
    assert body["runtime"]["supported_formats"] == ["gguf"]
    body = web.post("/api/v0/chat/completions", chat_body("sim/plain-8k", "hi", max_tokens=1))[1]
    assert body["stats"]["stop_reason"] == "maxPredictedTokensReached"
    assert body["stats"]["tokens_per_second"] == 50.0


def test_embeddings(web: Http) -> None:
    status, body = web.post("/v1/embeddings", {"model": "sim/embed-768", "input": "hello"})
    assert status == 200
    assert body["object"] == "list"
    assert body["model"] == "sim/embed-768"
    vec = body["data"][0]["embedding"]
    assert len(vec) == 256  # a hashed bag of words (testing/_embedding.py)
    assert sum(v * v for v in vec) == pytest.approx(1.0, abs=1e-4)
    again = web.post("/api/v0/embeddings", {"model": "sim/embed-768", "input": ["hello", "bye"]})[1]
    assert again["data"][0]["embedding"] == vec
    assert again["data"][1]["embedding"] != vec
    assert again["data"][1]["index"] == 1
    status, body = web.post("/v1/embeddings", {"model": "sim/plain-8k", "input": "x"})
    assert status == 400
    assert "not an embedding model" in body["error"]["message"]
    status, body = web.post("/v1/embeddings", {"model": "sim/embed-768", "input": [1]})
    assert status == 400
    status, body = web.post("/v1/chat/completions", chat_body("sim/embed-768", "hi"))
    assert status == 400
    assert "embedding model" in body["error"]["message"]


# -- model names ---------------------------------------------------------------------------


def test_unknown_model_and_lenient_names(fake: FakeLMStudio, web: Http) -> None:
    status, body = web.post("/v1/chat/completions", chat_body("no/such", "hi"))
    assert status == 404
    err = body["error"]
    assert err["code"] == "model_not_found"
    assert err["param"] == "model"
    assert err["type"] == "invalid_request_error"
    assert err["message"].startswith('Model "no/such" not found. Please specify a valid model.')
    status, body = web.post(
        "/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}]}
    )
    assert status == 400
    assert body["error"]["code"] == "missing_required_parameter"
    with FakeLMStudio(test_fleet(), lenient_model_names=True) as lenient:
        h = Http(lenient)
        lenient.preload("sim/plain-8k")
        status, body = h.post("/v1/chat/completions", chat_body("no/such", "hi"))
        assert status == 200
        assert body["model"] == "sim/plain-8k"
        lenient.preload("sim/big-128k")
        assert h.post("/v1/chat/completions", chat_body("no/such", "hi"))[0] == 404


def test_instance_ids_and_variants(web: Http, fake: FakeLMStudio) -> None:
    fake.preload("sim/plain-8k", 2048)
    second = fake.preload("sim/plain-8k", 8192)
    assert web.post("/v1/chat/completions", chat_body(second, "hi"))[1]["model"] == "sim/plain-8k:2"
    assert (
        web.post("/v1/chat/completions", chat_body("sim/plain-8k", "hi"))[1]["model"]
        == "sim/plain-8k"
    )
    body = web.post("/v1/chat/completions", chat_body("sim/plain-8k@q4_k_m", "hi"))[1]
    assert body["model"] == "sim/plain-8k"
    assert web.post("/v1/chat/completions", chat_body("sim/variant@q8_0", "hi"))[0] == 200


def test_openai_mode_never_jit_loads() -> None:
    with FakeLMStudio(test_fleet(), api="openai") as fake:
        h = Http(fake)
        status, _body = h.post("/v1/chat/completions", chat_body("sim/plain-8k", "hi"))
        assert status == 200
        assert fake.counters.loads == 0
        assert h.post("/v1/chat/completions", chat_body("nope", "hi"))[0] == 404


# -- cost model ----------------------------------------------------------------------------


def test_prompt_cache_reuses_the_shared_prefix(web: Http, fake: FakeLMStudio) -> None:
    model = FLEET["sim/big-128k"]
    fake.preload(model.key, 131072)
    first = probe_for_tokens(model, 10_000, seed=7)
    longer = probe_for_tokens(model, 30_000, seed=7)
    shorter = probe_for_tokens(model, 5_000, seed=7)
    web.post("/v1/chat/completions", chat_body(model.key, first))
    c1 = fake.counters
    assert c1.prompt_tokens == c1.processed_tokens  # nothing cached yet
    assert c1.simulated_seconds == pytest.approx(0.4 * c1.prompt_tokens / 1000 + 0.02)
    fake.reset_counters()
    reply = web.post("/v1/chat/completions", chat_body(model.key, longer))[1]
    c2 = fake.counters
    sent = reply["usage"]["prompt_tokens"]
    assert c2.prompt_tokens == sent
    # only what follows the first probe's filler is new (plus the question and template)
    assert sent - 10_000 <= c2.processed_tokens <= sent - 10_000 + 40
    fake.reset_counters()
    web.post("/v1/chat/completions", chat_body(model.key, shorter))
    c3 = fake.counters
    assert c3.processed_tokens <= len(QUESTION) // 4 + 12 + 3  # a cut of a cached prefix
    assert c3.prompt_tokens > 4_900
    # a different needle shares almost nothing
    fake.reset_counters()
    web.post(
        "/v1/chat/completions", chat_body(model.key, probe_for_tokens(model, 5_000, "111111", 7))
    )
    assert fake.counters.processed_tokens > 4_000


def test_generation_cost_and_counters(web: Http, fake: FakeLMStudio) -> None:
    fake.preload("sim/plain-8k")
    web.post("/v1/chat/completions", chat_body("sim/plain-8k", "Tell me a story", max_tokens=4))
    c = fake.counters
    assert c.generated_tokens == 4
    assert c.requests == {"/v1/chat/completions": 1}
    assert c.simulated_seconds == pytest.approx(0.4 * 17 / 1000 + 4 * 0.02)


# -- keep-alive ----------------------------------------------------------------------------


def test_keep_alive_across_plain_and_streamed_replies(web: Http) -> None:
    assert web.post("/v1/chat/completions", chat_body("sim/plain-8k", "hi"))[0] == 200
    sock = web.conn.sock
    assert sock is not None
    _status, _, items = web.stream("/v1/chat/completions", chat_body("sim/plain-8k", "hello"))
    assert items[-1] == "[DONE]"
    assert web.conn.sock is sock
    assert web.post("/v1/chat/completions", chat_body("sim/plain-8k", "again"))[0] == 200
    assert web.conn.sock is sock


def test_chunked_request_body(fake: FakeLMStudio) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=10)
    payload = json.dumps(chat_body("sim/plain-8k", "What is 3+4?")).encode()
    conn.request(
        "POST",
        "/v1/chat/completions",
        body=iter([payload[:10], payload[10:]]),
        headers={"Content-Type": "application/json"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert json.loads(resp.read())["choices"][0]["message"]["content"] == "7"
    conn.close()
