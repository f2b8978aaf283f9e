"""``lmstrix get``, ``load --ttl``, ``chat --ttl`` and ``load --estimate``, in both front ends.

``--estimate`` runs a fake ``lms`` script put first on ``PATH`` (never the real one).
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
from _cli_helpers import Entry, front_ends, run_cli

from lmstrix.cli._cmd_manage import progress_line
from lmstrix.cli._lms import parse_estimate
from lmstrix.client import DownloadJob
from lmstrix.testing import FakeLMStudio

FRESH = "lmstrix-demo/fresh-chat-2b"
FLAKY = "lmstrix-demo/fresh-coder-3b"
TINY = "lmstrix-demo/tiny-chat-1b"
FRONT_ENDS = pytest.mark.parametrize(("name", "entry"), front_ends())

ESTIMATE_OUTPUT = """\x1b[32mModel: lmstrix-demo/tiny-chat-1b\x1b[39m
Context Length: 16,384
Estimated GPU Memory:   \x1b[32m3.21 GB\x1b[39m
Estimated Total Memory: \x1b[32m3.54 GB\x1b[39m
Confidence: LOW

Estimate: \x1b[32mThis model may be loaded based on your resource guardrails settings.\x1b[39m
"""


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(failing_downloads=[FLAKY]) as server:
        yield server


def _run(
    capsys: pytest.CaptureFixture[str], entry: Entry, sim: FakeLMStudio, *args: str
) -> Tuple[int, str, str]:
    return run_cli(capsys, entry, "--server", sim.base_url, *args)


@FRONT_ENDS
def test_get_follows_the_download(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, name: str, entry: Entry
) -> None:
    code, out, err = _run(capsys, entry, sim, "get", FRESH, "--poll", "0.001")
    assert code == 0, err
    assert out == f"downloaded {FRESH} (1.00 GB) on {sim.base_url}\n"
    assert f"{FRESH}: downloading   25.0%  250.00 MB of 1.00 GB  250.0 MB/s  ETA 3s" in err
    assert "75.0%" in err and "ETA 1s" in err
    assert f"{FRESH}: completed  100.0%  1.00 GB of 1.00 GB" in err
    code, out, err = _run(capsys, entry, sim, "get", FRESH)
    assert code == 0 and out == f"{FRESH} is already downloaded on {sim.base_url}\n"


@FRONT_ENDS
def test_get_json_prints_the_final_job(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, name: str, entry: Entry
) -> None:
    code, out, err = _run(capsys, entry, sim, "--json", "-q", "get", FRESH, "--poll", "0.001")
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["status"] == "completed" and doc["model"] == FRESH
    assert doc["downloaded_bytes"] == doc["total_size_bytes"] == 1_000_000_000
    assert doc["server"] == sim.base_url and doc["job_id"].startswith("job_")


@FRONT_ENDS
def test_get_failure_and_bad_model(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, name: str, entry: Entry
) -> None:
    code, out, err = _run(capsys, entry, sim, "get", FLAKY, "--poll", "0.001")
    assert code == 1 and out == ""
    assert f"error: download of {FLAKY} (job job_" in err and "failed on" in err
    code, out, err = _run(capsys, entry, sim, "get", "nobody/nothing")
    assert code == 1 and "cannot download 'nobody/nothing'" in err
    code, out, err = _run(capsys, entry, sim, "get", FRESH, "--poll", "0")
    assert code == 2 and "--poll" in err


@FRONT_ENDS
def test_get_ctrl_c_stops_following_only(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    sim: FakeLMStudio,
    name: str,
    entry: Entry,
) -> None:
    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("lmstrix.client._downloads.time.sleep", interrupted)
    code, out, err = _run(capsys, entry, sim, "get", FRESH)
    assert code == 130 and out == ""
    assert f"stopped following the download of {FRESH}; it continues in LM Studio" in err
    assert f"`lmstrix get {FRESH}` again" in err


def test_get_needs_lm_studio_04(capsys: pytest.CaptureFixture[str]) -> None:
    with FakeLMStudio(api="v0") as old:
        code, _, err = run_cli(capsys, front_ends()[0][1], "--server", old.base_url, "get", FRESH)
    assert code == 1 and "downloads need LM Studio 0.4 or newer" in err


def test_progress_line_without_sizes() -> None:
    job = DownloadJob.from_wire({"status": "paused", "job_id": "j"}, "m")
    assert progress_line(job) == "m: paused"
    slow = DownloadJob.from_wire(
        {
            "status": "downloading",
            "total_size_bytes": 5_000_000_000_000,
            "downloaded_bytes": 1200,
            "bytes_per_second": 1_000_000,
        },
        "m",
    )
    assert "1.20 kB of 5000.00 GB" in progress_line(slow)
    assert "ETA 1388h53m" in progress_line(slow)
    small = DownloadJob.from_wire({"status": "downloading", "total_size_bytes": 900}, "m")
    assert "0 B of 900 B" in progress_line(small)


# -- TTL ----------------------------------------------------------------------------------


@FRONT_ENDS
def test_load_and_chat_ttl(
    capsys: pytest.CaptureFixture[str], name: str, entry: Entry, tmp_path: Path
) -> None:
    with FakeLMStudio(load_ttl=True) as sim:
        code, out, err = _run(capsys, entry, sim, "--json", "load", TINY, "--ttl", "90")
        assert code == 0, err
        assert json.loads(out)["ttl"] == 90
        assert [i.ttl_s for i in sim.loaded()] == [90.0]
        sim.advance(90)
        code, out, _ = _run(capsys, entry, sim, "--json", "ps")
        assert json.loads(out)["instances"] == []
        code, out, err = _run(
            capsys, entry, sim, "chat", TINY, "Say hi", "--ttl", "20", "--no-stream"
        )
        assert code == 0, err
        assert [i.ttl_s for i in sim.loaded()] == [20.0]
        chat = [r.body for r in sim.received if r.path == "/v1/chat/completions"]
        assert chat[-1]["ttl"] == 20
        for args in (("load", TINY, "--ttl", "0"), ("chat", TINY, "hi", "--ttl", "-3")):
            code, _, err = _run(capsys, entry, sim, *args)
            assert code == 2 and "--ttl takes a number of seconds of at least 1" in err


@FRONT_ENDS
def test_load_ttl_refused_by_the_server(
    capsys: pytest.CaptureFixture[str], sim: FakeLMStudio, name: str, entry: Entry
) -> None:
    code, _, err = _run(capsys, entry, sim, "load", TINY, "--ttl", "60")
    assert code == 1 and "takes no ttl on a load" in err and sim.loaded() == []


# -- load --estimate -----------------------------------------------------------------------

needs_sh = pytest.mark.skipif(sys.platform == "win32", reason="the fake lms is a sh script")


def _fake_lms(folder: Path, monkeypatch: pytest.MonkeyPatch, output: str, code: int = 0) -> Path:
    """A fake ``lms`` first on PATH; it prints ``output`` and records its arguments."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "out.txt").write_text(output)
    args = folder / "args.txt"
    script = folder / "lms"
    script.write_text(
        f'#!/bin/sh\nprintf "%s\\n" "$@" > "{args}"\n'  # shell builtins only: PATH may be bare
        f'while IFS= read -r line; do printf "%s\\n" "$line"; done < "{folder / "out.txt"}"\n'
        f"exit {code}\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ.get('PATH', '')}")
    return args


def _args(path: Path) -> List[str]:
    return path.read_text().splitlines()


@needs_sh
@FRONT_ENDS
def test_estimate_with_a_fake_lms(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    args = _fake_lms(tmp_path / "bin", monkeypatch, ESTIMATE_OUTPUT)
    code, out, err = run_cli(capsys, entry, "load", TINY, "--estimate", "--context", "16384")
    assert code == 0, err
    assert out == (
        f"estimate for {TINY} at 16,384 tokens: GPU memory 3.21 GB, total memory 3.54 GB "
        "(confidence: low); LM Studio's guardrails would let it load\n"
    )
    assert _args(args) == ["load", TINY, "--estimate-only", "-y", "--context-length", "16384"]
    code, out, err = run_cli(capsys, entry, "--json", "load", TINY, "--estimate")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["gpu_memory_bytes"] == 3_210_000_000 and doc["total_memory_bytes"] == 3_540_000_000
    assert doc["passes_guardrails"] is True and doc["requested_context"] is None
    assert _args(args) == ["load", TINY, "--estimate-only", "-y"]


@needs_sh
def test_estimate_raw_output_and_failure(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    entry = front_ends()[0][1]
    _fake_lms(tmp_path / "a", monkeypatch, "Something new: 42 tokens/s\n")
    code, out, _ = run_cli(capsys, entry, "load", TINY, "--estimate")
    assert code == 0 and out == "Something new: 42 tokens/s\n"
    _fake_lms(tmp_path / "b", monkeypatch, "Error: Model not found\nlms ls lists them\n", code=1)
    code, out, err = run_cli(capsys, entry, "load", "nobody/none", "--estimate")
    assert code == 1 and out == ""
    assert "`lms load nobody/none --estimate-only` failed (exit 1)" in err
    assert "Model not found / lms ls lists them" in err


@FRONT_ENDS
def test_estimate_without_lms(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no lms there, none in $LMSTUDIO_HOME/bin
    code, out, err = run_cli(capsys, entry, "load", TINY, "--estimate")
    assert code == 1 and out == ""
    assert "`lms` command, which is not on PATH" in err
    assert "npx lmstudio install-cli" in err


@needs_sh
def test_lms_in_lm_studio_home_is_found(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    home = tmp_path / "lmstudio"
    _fake_lms(home / "bin", monkeypatch, ESTIMATE_OUTPUT)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setenv("LMSTUDIO_HOME", str(home))
    code, out, _ = run_cli(capsys, front_ends()[0][1], "load", TINY, "--estimate")
    assert code == 0 and "GPU memory 3.21 GB" in out


def test_parse_estimate_verdicts() -> None:
    refused = parse_estimate(
        "Model: m\nGPU Offload: 50%\nEstimated GPU Memory: 12.5 GB\n"
        "Estimated Total Memory: 20 GB\n\nEstimate: This model will fail to load based on "
        "your resource guardrails settings."
    )
    assert refused["passes_guardrails"] is False and refused["gpu_offload"] == "50%"
    assert refused["gpu_memory_bytes"] == 12_500_000_000 and refused["confidence"] is None
    assert refused["context_length"] is None and refused["parsed"] is True
    odd = parse_estimate("Estimated GPU Memory: lots\nEstimated Total Memory: 1,024.5 MB\n")
    assert odd["gpu_memory_bytes"] is None and odd["total_memory_bytes"] == 1_024_500_000
    assert odd["passes_guardrails"] is None
    assert parse_estimate("Estimated GPU Memory: 1.2.3 GB")["gpu_memory_bytes"] is None
