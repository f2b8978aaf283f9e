"""The simulated LM Studio server: endpoints, shapes per API mode, loads, auth, life cycle.

Everything goes over real loopback sockets with ``http.client``.
"""

from __future__ import annotations

import socket
import threading
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from _sim_http import Http, chat_body

from lmstrix.testing import FakeLMStudio, SimModel, demo_fleet, serve, test_fleet

TOKEN = "sk-lm-Abcd1234:SecretSecretSecret00"


@pytest.fixture
def fake() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(test_fleet()) as server:
        yield server


def load(h: Http, key: str, ctx: Optional[int] = None, **extra: Any) -> Tuple[int, Any]:
    body: Dict[str, Any] = {"model": key, **extra}
    if ctx is not None:
        body["context_length"] = ctx
    status, _, data = h.call("POST", "/api/v1/models/load", body)
    return status, data


# -- routing and the unknown-endpoint quirk ------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v0"])
def test_greeting_and_unknown_paths_return_200(api: str) -> None:
    with FakeLMStudio(test_fleet(), api=api) as fake:
        h = Http(fake)
        assert h.call("GET", "/lmstudio-greeting")[::2] == (200, {"lmstudio": True})
        status, _, body = h.call("GET", "/nope?x=1")
        assert (status, body) == (200, {"error": "Unexpected endpoint or method. (GET /nope)"})
        status, _, body = h.call("GET", "/v1/chat/completions")
        assert body == {"error": "Unexpected endpoint or method. (GET /v1/chat/completions)"}
        assert h.call("OPTIONS", "/v1/models")[0] == 200
        status, _headers, body = h.call("HEAD", "/v1/models")
        assert status == 200
        assert body == ""
        assert h.call("POST", "/v1/models/unload", {})[2]["error"].startswith("Unexpected")
        _v1_status, _, v1_body = h.call("GET", "/api/v1/models")
        if api == "v0":
            assert v1_body == {"error": "Unexpected endpoint or method. (GET /api/v1/models)"}
            status, _, body = h.call("POST", "/api/v1/models/load", {"model": "sim/plain-8k"})
            assert body["error"].startswith("Unexpected endpoint")
        else:
            assert "models" in v1_body
        h.close()


def test_unknown_path_status_override() -> None:
    with FakeLMStudio(test_fleet(), unknown_path_status=404) as fake:
        status, _, body = Http(fake).call("DELETE", "/x")
        assert (status, body) == (404, {"error": "Unexpected endpoint or method. (DELETE /x)"})


def test_openai_mode_has_only_v1_paths() -> None:
    with FakeLMStudio(test_fleet(), api="openai") as fake:
        h = Http(fake)
        for path in ("/lmstudio-greeting", "/api/v0/models", "/api/v1/models", "/api/v0/models/x"):
            status, _, body = h.call("GET", path)
            assert status == 404
            assert body["error"]["type"] == "not_found_error"
        status, _, body = h.call("GET", "/v1/models")
        assert status == 200
        assert len(body["data"]) == len(test_fleet())
        # every model is loaded at its default context from the start
        assert len(fake.loaded()) == len(test_fleet())
        assert {i.key: i.context_length for i in fake.loaded()}["sim/plain-8k"] == 4096


# -- model lists ---------------------------------------------------------------------------


def test_v1_models_shape(web: Http, fake: FakeLMStudio) -> None:
    assert load(web, "sim/plain-8k", 6000)[0] == 200
    status, _, body = web.call("GET", "/api/v1/models")
    assert status == 200
    models = {m["key"]: m for m in body["models"]}
    assert list(models) == [m.key for m in test_fleet()]
    llm = models["sim/plain-8k"]
    assert set(llm) == {
        "type", "publisher", "key", "display_name", "architecture", "quantization",
        "size_bytes", "params_string", "loaded_instances", "max_context_length", "format",
        "capabilities", "description",
    }  # fmt: skip
    assert llm["type"] == "llm"
    assert llm["publisher"] == "sim"
    assert llm["display_name"] == "plain-8k"
    assert llm["quantization"] == {"name": "Q4_K_M", "bits_per_weight": 4.0}
    assert llm["max_context_length"] == 8192
    assert llm["capabilities"] == {"vision": False, "trained_for_tool_use": False}
    assert llm["loaded_instances"] == [
        {
            "id": "sim/plain-8k",
            "config": {
                "context_length": 6000,
                "eval_batch_size": 512,
                "parallel": 4,
                "flash_attention": True,
                "offload_kv_cache_to_gpu": True,
            },
        }
    ]
    emb = models["sim/embed-768"]
    assert emb["type"] == "embedding"
    assert "architecture" not in emb
    assert "capabilities" not in emb
    assert emb["loaded_instances"] == []


def test_v0_models_shape(web: Http) -> None:
    load(web, "sim/plain-8k", 5000)
    status, _, body = web.call("GET", "/api/v0/models")
    assert status == 200
    assert body["object"] == "list"
    rows = {row["id"]: row for row in body["data"]}
    row = rows["sim/plain-8k"]
    assert row == {
        "id": "sim/plain-8k", "object": "model", "type": "llm", "publisher": "sim",
        "arch": "llama", "compatibility_type": "gguf", "quantization": "Q4_K_M",
        "state": "loaded", "max_context_length": 8192, "loaded_context_length": 5000,
        "capabilities": [],
    }  # fmt: skip
    assert rows["sim/embed-768"]["type"] == "embeddings"
    assert rows["sim/embed-768"]["state"] == "not-loaded"
    assert "loaded_context_length" not in rows["sim/embed-768"]
    for path in ("/api/v0/models/sim%2Fplain-8k", "/api/v0/models/sim/plain-8k"):
        assert web.call("GET", path)[2] == row
    assert web.call("GET", "/api/v0/models/sim%2Fvariant%40q8_0")[2]["id"] == "sim/variant@q8_0"
    status, _, body = web.call("GET", "/api/v0/models/nope")
    assert status == 404
    assert body["error"]["code"] == "model_not_found"


def test_openai_models_shape(web: Http) -> None:
    status, _, body = web.call("GET", "/v1/models")
    assert status == 200
    assert body["object"] == "list"
    assert body["data"][0] == {
        "id": "sim/plain-8k",
        "object": "model",
        "owned_by": "organization_owner",
    }


# -- loads ---------------------------------------------------------------------------------


def test_load_success_echo_and_duplicates(web: Http, fake: FakeLMStudio) -> None:
    status, body = load(web, "sim/nonround-37k", 37_311, echo_load_config=True)
    assert status == 200
    assert body["type"] == "llm"
    assert body["instance_id"] == "sim/nonround-37k"
    assert body["status"] == "loaded"
    assert body["load_config"]["context_length"] == 37_311
    assert body["load_time_seconds"] == pytest.approx(2.0 + 0.25 * 37.311, abs=0.01)
    status, body = load(web, "sim/nonround-37k", 8192, flash_attention=False, num_experts=2)
    assert body["instance_id"] == "sim/nonround-37k:2"
    assert "load_config" not in body
    assert load(web, "sim/nonround-37k")[1]["instance_id"] == "sim/nonround-37k:3"
    infos = fake.loaded()
    assert [i.id for i in infos] == ["sim/nonround-37k", "sim/nonround-37k:2", "sim/nonround-37k:3"]
    assert infos[1].config["flash_attention"] is False
    assert infos[1].config["num_experts"] == 2
    assert infos[2].context_length == 4096  # default_context
    c = fake.counters
    assert (c.loads, c.load_failures, c.loads_by_model) == (3, 0, {"sim/nonround-37k": 3})
    # unloading the first frees its id for the next load
    assert web.call("POST", "/api/v1/models/unload", {"instance_id": "sim/nonround-37k"})[::2] == (
        200,
        {"instance_id": "sim/nonround-37k"},
    )
    assert load(web, "sim/nonround-37k", 2048)[1]["instance_id"] == "sim/nonround-37k"
    assert fake.counters.unloads == 1


def test_load_above_declared_but_loadable_is_applied() -> None:
    model = SimModel("m/over", 8192, 12_000, 9_000)
    with FakeLMStudio([model]) as fake:
        status, body = load(Http(fake), "m/over", 10_000, echo_load_config=True)
        assert status == 200
        assert body["load_config"]["context_length"] == 10_000


def test_embedding_load(web: Http, fake: FakeLMStudio) -> None:
    status, body = load(web, "sim/embed-768", echo_load_config=True)
    assert status == 200
    assert body["type"] == "embedding"
    assert body["load_config"] == {"context_length": 2048}
    assert fake.loaded()[0].config == {"context_length": 2048}


@pytest.mark.parametrize(
    ("body", "status", "fragment"),
    [
        ({"model": "sim/plain-8k", "stream": True}, 400, "Unrecognized key(s) in object: 'stream'"),
        ({"model": "sim/plain-8k", "ttl": 5, "parallel": 2}, 400, "'parallel', 'ttl'"),
        ({"context_length": 4096}, 400, '"model" is required'),
        ({"model": "sim/plain-8k", "context_length": "big"}, 400, "positive integer"),
        ({"model": "sim/plain-8k", "context_length": 0}, 400, "positive integer"),
        ({"model": "sim/plain-8k", "context_length": True}, 400, "positive integer"),
        ({"model": "nobody/none"}, 404, "Model nobody/none not found in downloaded models"),
        ([1, 2], 400, "JSON object"),
    ],
)
def test_load_rejections(web: Http, body: Any, status: int, fragment: str) -> None:
    got_status, _, got = web.call("POST", "/api/v1/models/load", body)
    assert got_status == status
    assert fragment in got["error"]["message"]
    assert isinstance(got["error"]["type"], str)
    if status == 404:
        assert got == {
            "error": {
                "type": "model_not_found",
                "message": "Model nobody/none not found in downloaded models",
            }
        }


def test_invalid_json_body(web: Http) -> None:
    status, _, body = web.call("POST", "/api/v1/models/load", raw=b"{not json")
    assert status == 400
    assert "invalid JSON" in body["error"]["message"]
    status, _, body = web.call("POST", "/v1/chat/completions", raw=b"[")
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error"


def test_guardrail_refusal_and_its_cost(web: Http, fake: FakeLMStudio) -> None:
    status, body = load(web, "sim/nonround-37k", 37_312)
    assert status == 400
    assert body["error"]["type"] == "invalid_request"
    assert body["error"]["message"].startswith(
        'Failed to load model "sim/nonround-37k". Error: Model loading was stopped due to '
        "insufficient system resources."
    )
    c = fake.counters
    assert (c.loads, c.load_failures) == (1, 1)
    assert c.simulated_seconds == pytest.approx(0.5)  # load_base_s * 0.25
    assert fake.loaded() == []


def test_crash_costs_a_full_load(web: Http, fake: FakeLMStudio) -> None:
    status, body = load(web, "sim/crash-24k", 100_000)
    assert status == 500
    assert body["error"]["code"] == "model_load_failed"
    assert "crashed without additional information" in body["error"]["message"]
    assert fake.counters.simulated_seconds == pytest.approx(2.0 + 0.25 * 100)
    assert fake.counters.load_failures == 1
    assert load(web, "sim/crash-24k", 24_321)[0] == 200


def test_auto_fit_applies_a_smaller_context(web: Http, fake: FakeLMStudio) -> None:
    status, body = load(web, "sim/autofit-32k", 131072, echo_load_config=True)
    assert status == 200
    assert body["load_config"]["context_length"] == 32768
    status, body = load(web, "sim/autofit-small", 20000, echo_load_config=True)
    assert body["load_config"]["context_length"] == 9984
    listed = {m["key"]: m for m in web.call("GET", "/api/v1/models")[2]["models"]}
    assert listed["sim/autofit-small"]["loaded_instances"][0]["config"]["context_length"] == 9984
    assert fake.counters.load_failures == 0
    # within the limit nothing changes
    assert (
        load(web, "sim/autofit-small", 9999, echo_load_config=True)[1]["load_config"][
            "context_length"
        ]
        == 9999
    )


def test_load_cost_grows_with_context(web: Http, fake: FakeLMStudio) -> None:
    costs: List[float] = []
    for ctx in (4096, 16384, 32768):
        fake.reset_counters()
        assert load(web, "sim/big-128k", ctx)[0] == 200
        costs.append(fake.counters.simulated_seconds)
    assert costs[0] < costs[1] < costs[2]
    assert costs[2] == pytest.approx(2.0 + 0.25 * 32.768)


def test_unload_errors(web: Http, fake: FakeLMStudio) -> None:
    status, _, body = web.call("POST", "/api/v1/models/unload", {"instance_id": "nope"})
    assert status == 404
    assert body["error"]["type"] == "model_not_found"
    status, _, body = web.call("POST", "/api/v1/models/unload", {"model": "sim/plain-8k"})
    assert status == 400
    assert "Unrecognized key(s) in object: 'model'" in body["error"]["message"]
    status, _, body = web.call("POST", "/api/v1/models/unload", {})
    assert status == 400
    assert body["error"]["code"] == "missing_required_parameter"
    load(web, "sim/plain-8k")
    fake.reset_counters()
    assert web.call("POST", "/api/v1/models/unload", {"instance_id": "sim/plain-8k"})[0] == 200
    assert fake.counters.simulated_seconds == pytest.approx(0.2)
    assert fake.loaded() == []


# -- JIT -----------------------------------------------------------------------------------


@pytest.mark.parametrize("api", ["v1", "v0"])
def test_jit_load_on_first_chat(api: str) -> None:
    with FakeLMStudio(test_fleet(), api=api) as fake:
        h = Http(fake)
        path = "/v1/chat/completions" if api == "v1" else "/api/v0/chat/completions"
        status, _, body = h.call("POST", path, chat_body("sim/plain-8k", "Hi"))
        assert status == 200
        assert body["model"] == "sim/plain-8k"
        assert [(i.id, i.context_length) for i in fake.loaded()] == [("sim/plain-8k", 4096)]
        assert fake.counters.loads == 1
        h.call("POST", path, chat_body("sim/plain-8k", "Again"))
        assert fake.counters.loads == 1  # reused
        status, _, body = h.call("POST", path, chat_body("sim/jit-refused", "Hi"))
        assert status == 400
        assert "insufficient system resources" in body["error"]["message"]
        assert body["error"]["type"] == "invalid_request_error"
        if api == "v0":
            assert (
                h.call("POST", path, chat_body("sim/plain-8k", "x"))[2]["model_info"][
                    "context_length"
                ]
                == 4096
            )


def test_jit_default_is_capped_at_declared(web: Http, fake: FakeLMStudio) -> None:
    web.call("POST", "/v1/chat/completions", chat_body("sim/tiny-declared-2000", "Hi"))
    assert fake.loaded()[0].context_length == 2000


# -- auth ----------------------------------------------------------------------------------


def test_auth_required_and_token_never_recorded() -> None:
    with FakeLMStudio(test_fleet(), api_token=TOKEN) as fake:
        anon = Http(fake)
        assert anon.call("GET", "/lmstudio-greeting")[0] == 200
        for method, path in (("GET", "/api/v1/models"), ("GET", "/v1/models"), ("GET", "/zzz")):
            status, _, body = anon.call(method, path)
            assert status == 401
            assert body["error"]["type"] == "invalid_request"
            assert body["error"]["code"] == "invalid_api_key"
            assert "'Authorization: Bearer $LM_API_TOKEN'" in body["error"]["message"]
        wrong = Http(fake, token="sk-lm-wrong:token")
        assert wrong.call("GET", "/v1/models")[0] == 401
        good = Http(fake, token=TOKEN)
        assert good.call("GET", "/api/v1/models")[0] == 200
        status, _, body = good.call("POST", "/v1/chat/completions", chat_body("sim/plain-8k", "Hi"))
        assert status == 200
        received = fake.received
        assert len(received) == 7
        method, path, headers, sent = received[-1]
        assert (method, path) == ("POST", "/v1/chat/completions")
        assert sent["messages"][0]["content"] == "Hi"
        assert headers["content-type"] == "application/json"
        dump = repr(received) + repr(fake) + repr(fake.counters)
        assert TOKEN not in dump
        assert "wrong:token" not in dump
        assert all("authorization" not in r.headers for r in received)


# -- life cycle ----------------------------------------------------------------------------


def test_life_cycle() -> None:
    fake = FakeLMStudio()
    assert [m.key for m in fake.models] == [m.key for m in demo_fleet()]
    assert not fake.running
    assert "stopped" in repr(fake)
    with pytest.raises(RuntimeError):
        _ = fake.base_url
    fake.start()
    try:
        assert fake.running
        assert fake.api == "v1"
        assert fake.base_url == f"http://127.0.0.1:{fake.port}"
        with pytest.raises(RuntimeError):
            fake.start()
        h = Http(fake)
        assert h.call("GET", "/v1/models")[0] == 200
    finally:
        fake.stop()
    fake.stop()
    with pytest.raises(OSError):  # the kept-alive connection is closed too
        h.call("GET", "/v1/models")
    h.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", h.conn.port), timeout=2).close()


def test_constructor_validation() -> None:
    with pytest.raises(ValueError, match="api"):
        FakeLMStudio(api="v2")
    with pytest.raises(ValueError, match="overflow_stream"):
        FakeLMStudio(overflow_stream="nope")
    with pytest.raises(ValueError, match="time_scale"):
        FakeLMStudio(time_scale=-1)
    with pytest.raises(ValueError, match="duplicate"):
        FakeLMStudio([SimModel("a/b", 4096), SimModel("a/b", 8192)])


def test_sim_model_validation_and_defaults() -> None:
    model = SimModel("pub/name", 8192)
    assert (model.loadable_context, model.working_context) == (8192, 8192)
    assert (model.publisher, model.display_name) == ("pub", "name")
    assert SimModel("flat", 4096).publisher == "lmstrix"
    assert SimModel("x/y", 4096, params_string="7B").size_bytes == 3_500_000_000
    assert SimModel("x/y", 4096, params_string="huge").size_bytes == 500_000_000
    assert SimModel("x/e", 512, type="embedding").size_bytes == 75_000_000
    for bad in (
        {"key": "", "declared_context": 10},
        {"key": "k", "declared_context": 0},
        {"key": "k", "declared_context": 10, "type": "vlm"},
        {"key": "k", "declared_context": 10, "parallel": 0},
    ):
        with pytest.raises(ValueError):
            SimModel(**bad)


def test_preload(fake: FakeLMStudio, web: Http) -> None:
    assert fake.preload("sim/plain-8k", 7000) == "sim/plain-8k"
    assert fake.preload("sim/plain-8k") == "sim/plain-8k:2"
    assert fake.counters.loads == 0
    with pytest.raises(LookupError):
        fake.preload("nope")


def test_received_is_bounded_and_clearable() -> None:
    with FakeLMStudio(test_fleet(), keep_received=3) as fake:
        h = Http(fake)
        for i in range(5):
            h.call("GET", f"/x{i}")
        assert [r.path for r in fake.received] == ["/x2", "/x3", "/x4"]
        assert fake.received[0].body is None
        fake.clear_received()
        assert fake.received == []
        assert fake.counters.total_requests == 5


def test_serve_until_stopped() -> None:
    stop = threading.Event()
    seen: List[FakeLMStudio] = []

    def ready(fake: FakeLMStudio) -> None:
        seen.append(fake)
        _status, _, body = Http(fake).call("GET", "/lmstudio-greeting")
        assert body == {"lmstudio": True}
        stop.set()

    serve(port=0, models=test_fleet(), on_ready=ready, stop_event=stop, api="v0")
    assert len(seen) == 1
    assert not seen[0].running
    with pytest.raises(ValueError, match=r"127\.0\.0\.1"):
        serve(host="0.0.0.0", port=0)
