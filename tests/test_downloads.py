"""Model downloads and TTLs: the Client against the simulator over loopback sockets."""

from __future__ import annotations

from typing import Iterator, List

import pytest
from _sim_http import Http

import lmstrix
from lmstrix import Client
from lmstrix.client import DownloadJob
from lmstrix.testing import FakeLMStudio, SimModel

FRESH = "lmstrix-demo/fresh-chat-2b"
CODER = "lmstrix-demo/fresh-coder-3b"
TINY = "lmstrix-demo/tiny-chat-1b"


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(failing_downloads=[CODER]) as server:
        yield server


@pytest.fixture
def client(sim: FakeLMStudio) -> Iterator[Client]:
    with Client(sim.base_url, max_retries=0) as made:
        yield made


def test_download_followed_to_the_end(client: Client, sim: FakeLMStudio) -> None:
    assert FRESH not in [m.key for m in client.list_models()]
    job = client.download(FRESH)
    assert job.status == "downloading" and job.job_id and not job.done
    assert job.total_size_bytes == 1_000_000_000  # 2B parameters at 4 bits
    seen: List[DownloadJob] = []
    final = client.wait_for_download(job, on_progress=seen.append, poll_s=0)
    assert final.status == "completed" and final.ok and final.done
    assert final.downloaded_bytes == final.total_size_bytes and final.fraction == 1.0
    assert final.completed_at == "2026-01-01T00:00:04.000Z"  # 250 MB per simulated second
    running = [j for j in seen if j.status == "downloading" and j.downloaded_bytes]
    assert [j.fraction for j in running] == [0.25, 0.5, 0.75]
    assert [j.eta_s for j in running] == [3.0, 2.0, 1.0]
    assert running[0].bytes_per_second == 250e6
    assert running[0].estimated_completion == "2026-01-01T00:00:04.000Z"
    assert seen[0] is job and seen[-1] == final
    assert FRESH in [m.key for m in client.list_models()]  # the model is now listed
    assert client.chat(FRESH, "Say hi", max_tokens=4).text


def test_already_downloaded_has_no_job(client: Client) -> None:
    job = client.download(TINY)
    assert job.status == "already_downloaded" and job.job_id is None
    assert job.ok and job.done and job.fraction == 1.0 and job.eta_s is None
    calls: List[DownloadJob] = []
    assert client.wait_for_download(job, on_progress=calls.append) is job
    assert calls == [job]


def test_a_running_download_is_joined_not_restarted(client: Client) -> None:
    first = client.download(FRESH)
    again = client.download(FRESH)
    assert again.job_id == first.job_id


def test_quantization_is_sent(client: Client, sim: FakeLMStudio) -> None:
    client.download(FRESH, quantization="Q4_K_M")
    sent = [r.body for r in sim.received if r.path == "/api/v1/models/download"]
    assert sent == [{"model": FRESH, "quantization": "Q4_K_M"}]


def test_failed_download_raises(client: Client) -> None:
    job = client.download(CODER)
    states: List[str] = []
    with pytest.raises(lmstrix.APIError) as info:
        client.wait_for_download(job, on_progress=lambda j: states.append(j.status), poll_s=0)
    assert f"download of {CODER} (job {job.job_id}) failed" in str(info.value)
    assert states[-1] == "failed"
    status = client.download_status(str(job.job_id))
    assert status.status == "failed" and status.done and not status.ok
    assert status.fraction == 0.5 and status.eta_s is None
    assert CODER not in [m.key for m in client.list_models()]


def test_unknown_job_is_a_clear_error(client: Client) -> None:
    with pytest.raises(lmstrix.APIStatusError) as info:
        client.download_status("job_nonesuch")
    text = str(info.value)
    assert "no download job 'job_nonesuch' (job_not_found)" in text
    assert "start the download again" in text and info.value.status_code == 404


def test_unknown_catalog_model(client: Client) -> None:
    with pytest.raises(lmstrix.ModelNotFoundError) as info:
        client.download("nobody/nothing")
    text = str(info.value)
    assert "cannot download 'nobody/nothing'" in text
    assert "Hugging Face URL" in text and "lmstrix list" not in text


def test_wait_times_out_and_says_the_download_goes_on(client: Client) -> None:
    job = client.download(FRESH)
    with pytest.raises(lmstrix.APITimeoutError) as info:
        client.wait_for_download(job, poll_s=0, timeout=0)
    assert "goes on in LM Studio" in str(info.value)


@pytest.mark.parametrize("api", ["v0", "openai"])
def test_downloads_need_lm_studio_04(api: str) -> None:
    with FakeLMStudio(api=api) as old, Client(old.base_url, max_retries=0) as client:
        for call in (lambda: client.download(FRESH), lambda: client.download_status("job_1")):
            with pytest.raises(lmstrix.APIError) as info:
                call()
            assert "downloads need LM Studio 0.4 or newer" in str(info.value)
            assert f"speaks the {api!r} API" in str(info.value)


def test_download_job_from_odd_answers() -> None:
    job = DownloadJob.from_wire(
        {"status": "downloading", "total_size_bytes": True, "downloaded_bytes": 5}, "m"
    )
    assert job.total_size_bytes is None and job.fraction is None and job.eta_s is None
    failed = DownloadJob.from_wire({"status": "failed", "error": {"message": "disk full"}}, "m")
    assert failed.error == "disk full" and failed.to_dict()["error"] == "disk full"
    assert DownloadJob.from_wire({}, "m").status == "unknown"


def test_simulator_download_endpoints(sim: FakeLMStudio) -> None:
    web = Http(sim)
    try:
        status, _, body = web.call("POST", "/api/v1/models/download", {"model": FRESH, "x": 1})
        assert status == 400 and "Unrecognized key(s) in object: 'x'" in body["error"]["message"]
        status, _, body = web.call("POST", "/api/v1/models/download", {})
        assert status == 400 and '"model" is required' in body["error"]["message"]
        status, _, body = web.call("GET", "/api/v1/models/download/status/job_x")
        assert status == 404 and body["error"]["type"] == "job_not_found"
        status, _, body = web.call("POST", "/api/v1/models/download", {"model": FRESH + "@q4_k_m"})
        assert status == 200 and body["status"] == "downloading"
        assert set(body) == {"job_id", "status", "total_size_bytes", "started_at"}
    finally:
        web.close()


# -- TTL ----------------------------------------------------------------------------------


def test_load_ttl_unloads_after_idle_time() -> None:
    with FakeLMStudio(load_ttl=True) as sim, Client(sim.base_url) as client:
        client.load(TINY, ttl=60)
        assert next(r.body for r in sim.received if r.path.endswith("/load"))["ttl"] == 60
        assert [i.ttl_s for i in sim.loaded()] == [60.0]
        sim.advance(59)
        client.chat(TINY, "Say hi", max_tokens=2)  # a request restarts the idle time
        sim.advance(59)
        assert [i.id for i in client.loaded_instances()] == [TINY]
        sim.advance(1)
        assert client.loaded_instances() == []
        assert sim.counters.unloads == 1


def test_load_ttl_refused_by_a_strict_server(client: Client) -> None:
    with pytest.raises(lmstrix.ModelLoadError) as info:
        client.load(TINY, ttl=60)
    text = str(info.value)
    assert "Unrecognized key(s) in object: 'ttl'" in text
    assert "takes no ttl on a load" in text and "lms load --ttl" in text


def test_request_ttl_applies_to_the_load_it_causes(client: Client, sim: FakeLMStudio) -> None:
    client.chat(TINY, "Say hi", max_tokens=2, ttl=30)  # passed through as it is
    sent = [r.body for r in sim.received if r.path == "/v1/chat/completions"]
    assert sent[0]["ttl"] == 30
    assert [i.ttl_s for i in sim.loaded()] == [30.0]
    client.chat(TINY, "Say hi", max_tokens=2, ttl=5)  # the model is loaded: ttl stays 30
    assert [i.ttl_s for i in sim.loaded()] == [30.0]
    sim.advance(30)
    assert sim.loaded() != []  # nothing expires until the next request looks
    assert client.loaded_instances() == []


def test_streamed_request_ttl(client: Client, sim: FakeLMStudio) -> None:
    with client.stream_chat(TINY, "Say hi", max_tokens=2, ttl=10) as stream:
        assert stream.text()
    assert [i.ttl_s for i in sim.loaded()] == [10.0]


def test_no_ttl_never_expires(client: Client, sim: FakeLMStudio) -> None:
    client.chat(TINY, "Say hi", max_tokens=2)
    sim.advance(10**6)
    assert [i.id for i in client.loaded_instances()] == [TINY]
    assert sim.clock >= 10**6


def test_bad_request_ttl_is_refused(client: Client) -> None:
    with pytest.raises(lmstrix.APIStatusError) as info:
        client.chat(TINY, "Say hi", ttl=-1)
    assert "'ttl' must be a positive integer" in str(info.value)


def test_downloads_of_a_custom_catalog() -> None:
    model = SimModel("acme/new-1b", 8192, params_string="1B", size_bytes=300)
    with FakeLMStudio(models=[], catalog=[model], download_bytes_per_s=100) as sim:
        with Client(sim.base_url) as client:
            done = client.wait_for_download(client.download("acme/new-1b"), poll_s=0)
            assert done.ok and [m.key for m in client.list_models()] == ["acme/new-1b"]
    with pytest.raises(ValueError):
        FakeLMStudio(download_bytes_per_s=0)
