"""The CLI over several servers: ``--server`` repeated (or commas in ``$LMSTRIX_SERVER``),
``--model`` repeated as a fallback chain, and ``ps``, ``list``, ``doctor``, ``test`` and
``batch`` across servers. Three simulated servers with different fleets, on loopback;
their own counters say where each request went. Both front ends where it matters.
"""

from __future__ import annotations

import functools
import json
import socket
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple

import pytest
from _cli_helpers import Entry, front_ends

import lmstrix
from lmstrix.registry import ModelRecord
from lmstrix.testing import FakeLMStudio, SimModel

CHAT = "/v1/chat/completions"
ENDS = front_ends()


def _fleet(*keys: str) -> List[SimModel]:
    return [SimModel(k, declared_context=8192, parallel=2) for k in keys]


def _dead_url() -> str:
    """A loopback URL where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[FakeLMStudio]]:
    monkeypatch.delenv("LMSTRIX_SERVER", raising=False)
    a = FakeLMStudio(_fleet("alpha", "beta")).start()
    b = FakeLMStudio(_fleet("alpha", "gamma")).start()
    c = FakeLMStudio(_fleet("alpha", "beta")).start()
    a.preload("alpha")
    b.preload("alpha")
    b.preload("gamma")
    c.preload("beta")
    try:
        yield [a, b, c]
    finally:
        for fake in (a, b, c):
            fake.stop()


def _run(capsys: pytest.CaptureFixture[str], entry: Entry, *args: str) -> Tuple[int, str, str]:
    capsys.readouterr()
    code = entry(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def _flags(fakes: List[Any], registry: Path) -> List[str]:
    found = ["--registry", str(registry)]
    for fake in fakes:
        found += ["--server", fake if isinstance(fake, str) else fake.base_url]
    return found


def chats(fake: FakeLMStudio) -> int:
    return fake.counters.requests.get(CHAT, 0)


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_ps_over_three_servers_names_each_server(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    a, b, c = servers
    code, out, err = _run(capsys, entry, *_flags(servers, tmp_path / "r.json"), "--json", "ps")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["server"] for s in doc["servers"]] == [a.base_url, b.base_url, c.base_url]
    assert all(s["reached"] for s in doc["servers"])
    seen = sorted((row["server"], row["key"]) for row in doc["instances"])
    assert seen == sorted(
        [(a.base_url, "alpha"), (b.base_url, "alpha"), (b.base_url, "gamma"), (c.base_url, "beta")]
    )
    # Global options before and after the command name add up; the table has a server column.
    args = ["--registry", str(tmp_path / "r.json"), "--server", a.base_url]
    code, out, err = _run(capsys, entry, *args, "ps", "--server", b.base_url)
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header[0] == "server"
    assert a.base_url in out and b.base_url in out and c.base_url not in out


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_servers_from_the_environment_with_commas(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    entry: Entry,
) -> None:
    a, b, _ = servers
    monkeypatch.setenv("LMSTRIX_SERVER", f"{a.base_url}, {b.base_url}")
    code, out, err = _run(capsys, entry, "--registry", str(tmp_path / "r.json"), "--json", "ps")
    assert code == 0, err
    assert [s["server"] for s in json.loads(out)["servers"]] == [a.base_url, b.base_url]
    # A bad URL in the list is bad usage, named.
    monkeypatch.setenv("LMSTRIX_SERVER", f"{a.base_url},http://bad_host:1234")
    code, out, err = _run(capsys, entry, "--registry", str(tmp_path / "r.json"), "ps")
    assert code == 2
    assert "$LMSTRIX_SERVER" in err and "bad_host" in err and out == ""
    # So is one given with --server (the option's own check).
    code, _, err = _run(capsys, entry, "--server", a.base_url, "--server", "http://x y", "ps")
    assert code == 2 and "x y" in err


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_ps_and_list_report_a_dead_server_on_its_own(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    a = servers[0]
    dead = _dead_url()
    registry = lmstrix.Registry(tmp_path / "r.json")
    registry.upsert(
        ModelRecord(key="delta", server=dead, declared_context=4096, working_context=3000)
    )
    flags = [*_flags([a, dead], tmp_path / "r.json"), "--timeout", "5"]
    code, out, err = _run(capsys, entry, *flags, "--json", "ps")
    assert code == 1  # a server could not be reached
    doc = json.loads(out)
    reached = {s["server"]: s["reached"] for s in doc["servers"]}
    assert reached == {a.base_url: True, dead: False}
    assert [row["server"] for row in doc["instances"]] == [a.base_url]
    assert f"error: {dead}" in err
    # list works offline for the dead server, from its registry records, exit 0.
    code, out, err = _run(capsys, entry, *flags, "--json", "list")
    assert code == 0, err
    doc = json.loads(out)
    state = {s["server"]: s["server_reached"] for s in doc["servers"]}
    assert state == {a.base_url: True, dead: False}
    rows = {(r["server"], r["key"]): r for r in doc["models"]}
    assert rows[(dead, "delta")]["working_context"] == 3000
    assert rows[(dead, "delta")]["loaded"] is None
    assert rows[(a.base_url, "alpha")]["loaded"] is True
    assert "not reached" in err
    code, out, _ = _run(capsys, entry, *flags, "list")
    assert code == 0
    assert out.splitlines()[0].split()[0] == "server"
    assert any(line.startswith(dead) and "delta" in line for line in out.splitlines())


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_doctor_checks_every_server(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    code, out, err = _run(capsys, entry, *_flags(servers, tmp_path / "r.json"), "--json", "doctor")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and "server" not in doc
    assert [s["url"] for s in doc["servers"]] == [s.base_url for s in servers]
    assert [s["loaded"] for s in doc["servers"]] == [1, 2, 1]
    assert all(s["ok"] and s["api"] == "v1" and s["models"] == 2 for s in doc["servers"])
    assert all(s["version"].startswith("LM Studio") for s in doc["servers"])
    dead = _dead_url()
    flags = [*_flags([servers[0], dead], tmp_path / "r.json"), "--timeout", "5"]
    code, out, _ = _run(capsys, entry, *flags, "doctor")
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("ok") and servers[0].base_url in line for line in lines)
    assert any(line.startswith("FAIL  server " + dead) for line in lines)


def _long_registry(path: Path, fakes: List[FakeLMStudio]) -> None:
    """alpha's tested working context is 1,000 tokens on every server."""
    registry = lmstrix.Registry(path)
    for fake in fakes:
        registry.upsert(
            ModelRecord(
                key="alpha",
                server=fake.base_url,
                declared_context=8192,
                working_context=1000,
                chars_per_token=4.0,
                status="done",
            )
        )


LONG = "A line of a long document. " * 400 + "What is 2+2?"  # ~2,700 tokens


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_chat_with_a_fallback_chain_over_a_pool(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    a, b, c = servers
    _long_registry(tmp_path / "r.json", servers)
    flags = _flags(servers, tmp_path / "r.json")
    code, out, err = _run(
        capsys, entry, *flags, "--json", "chat", "-m", "alpha", "--model", "gamma", LONG
    )
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["model"], doc["server"], doc["chain"]) == ("gamma", b.base_url, ["alpha", "gamma"])
    assert doc["text"]
    assert "answered by gamma on " + b.base_url in err
    assert (chats(a), chats(b), chats(c)) == (0, 1, 0)  # alpha was never asked
    # A short prompt fits alpha: it answers, and nothing is said about the chain.
    code, out, err = _run(capsys, entry, *flags, "chat", "-m", "alpha", "-m", "gamma", "2+2?")
    assert code == 0, err
    assert out.strip() and "answered by" not in err
    assert chats(a) + chats(b) + chats(c) == 2 and chats(c) == 0
    # MODEL as an argument goes to the pool too; an unknown one lists close matches.
    code, out, err = _run(capsys, entry, *flags, "chat", "beta", "What is 3+4?")
    assert code == 0 and out.strip(), err
    code, _, err = _run(capsys, entry, *flags, "chat", "alphaa", "hi")
    assert code == 1 and "alpha" in err
    code, _, err = _run(capsys, entry, *flags, "chat", "-m", "alpha", "beta", "hi")
    assert code == 2 and "at most one argument" in err


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_chat_chain_on_one_server_and_a_chain_that_fails(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    b = servers[1]
    _long_registry(tmp_path / "r.json", [b])
    flags = _flags([b], tmp_path / "r.json")
    chain = ["-m", "alpha", "-m", "gamma"]
    code, out, err = _run(capsys, entry, *flags, "chat", "--no-stream", *chain, LONG)
    assert code == 0, err
    assert "answered by gamma" in err and out.strip()
    assert chats(b) == 1
    code, _, err = _run(capsys, entry, *flags, "chat", "-m", "alpha", "-m", "nowhere", LONG)
    assert code == 1
    assert "alpha" in err and "nowhere" in err and "fallback chain" in err


def _items(path: Path, count: int) -> Path:
    rows = [{"id": n, "prompt": f"What is {n}+1?"} for n in range(count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_batch_over_a_pool_uses_every_server_with_alpha_loaded(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    a, b, c = servers
    items = _items(tmp_path / "in.jsonl", 40)
    output = tmp_path / "out.jsonl"
    flags = _flags(servers, tmp_path / "r.json")
    code, out, err = _run(
        capsys, entry, *flags, "--json", "batch", str(items), "-o", str(output), "-m", "alpha"
    )
    assert code == 0, err
    summary = json.loads(out)
    assert (summary["total"], summary["done"], summary["failed"]) == (40, 40, 0)
    lines = [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]
    assert sorted(line["id"] for line in lines) == list(range(40))
    assert all(line["output"] == str(line["id"] + 1) for line in lines)
    assert chats(a) > 0 and chats(b) > 0 and chats(c) == 0  # alpha is loaded on a and b only
    assert a.counters.loads == b.counters.loads == c.counters.loads == 0  # no JIT load
    for fake in (a, b):  # never more at once than an instance's parallel slots
        assert max(fake.counters.max_in_flight.values()) <= 2


def test_batch_workers_come_from_the_pool_slots(
    capsys: pytest.CaptureFixture[str], servers: List[FakeLMStudio], tmp_path: Path
) -> None:
    import lmstrix.batch

    seen: Dict[str, Any] = {}
    real = lmstrix.batch.run_batch

    @functools.wraps(real)
    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs, client=args[1], model=args[2])
        return real(*args, **kwargs)

    items = _items(tmp_path / "in.jsonl", 6)
    flags = _flags(servers, tmp_path / "r.json")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lmstrix.batch, "run_batch", spy)
        code, _, err = _run(
            capsys,
            ENDS[0][1],
            *flags,
            "batch",
            str(items),
            "-o",
            str(tmp_path / "o"),
            "-m",
            "alpha",
        )
    assert code == 0, err
    assert isinstance(seen["client"], lmstrix.Pool)
    assert lmstrix.batch.default_workers(seen["client"], "alpha") == 4  # 2 slots on a and b


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_batch_with_a_fallback_chain_says_who_answered(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    _a, b, c = servers
    _long_registry(tmp_path / "r.json", servers)
    items = tmp_path / "in.jsonl"
    rows = [{"id": 1, "prompt": LONG}, {"id": 2, "prompt": "What is 2+5?"}]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    output = tmp_path / "out.jsonl"
    flags = _flags(servers, tmp_path / "r.json")
    batch = ["batch", str(items), "-o", str(output), "-m", "alpha", "-m", "gamma"]
    code, out, err = _run(capsys, entry, *flags, *batch)
    assert code == 0, err
    assert "1 done" not in out and "2 done" in out
    assert "answered 1 by gamma" in err
    assert chats(b) >= 1 and chats(c) == 0


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_test_all_over_two_servers_keeps_limits_per_server(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    entry: Entry,
) -> None:
    monkeypatch.delenv("LMSTRIX_SERVER", raising=False)
    big = [SimModel("m/one", 16384, 12000), SimModel("m/embed", 2048, type="embedding")]
    small = [SimModel("m/one", 16384, 6000), SimModel("m/two", 8192)]
    with FakeLMStudio(big) as a, FakeLMStudio(small) as b:
        flags = _flags([a, b], tmp_path / "r.json")
        code, out, err = _run(capsys, entry, *flags, "--json", "test", "--all", "--trials", "1")
        assert code == 0, err
        doc = json.loads(out)
        by_server = {s["server"]: [r["key"] for r in s["models"]] for s in doc["servers"]}
        assert by_server == {a.base_url: ["m/one"], b.base_url: ["m/one", "m/two"]}
        assert all(s["error"] is None for s in doc["servers"])
        assert a.counters.loads > 0 and b.counters.loads > 0
        registry = lmstrix.Registry(tmp_path / "r.json")
        one_a = registry.get("m/one", server=a.base_url)
        one_b = registry.get("m/one", server=b.base_url)
        assert one_a is not None and one_b is not None
        assert 12000 - 1024 <= (one_a.loadable_context or 0) <= 12000
        assert 6000 - 1024 <= (one_b.loadable_context or 0) <= 6000
        assert registry.get("m/two", server=a.base_url) is None
        # Again: everything is done already, on each server; the table names the servers.
        loads = a.counters.loads + b.counters.loads
        code, out, err = _run(capsys, entry, *flags, "test", "m/one")
        assert code == 0, err
        assert a.counters.loads + b.counters.loads == loads
        assert out.splitlines()[0].split()[0] == "server"
        assert out.count("(skipped)") == 2
        code, _, err = _run(capsys, entry, *flags, "test", "m/nowhere")
        assert code == 1 and "not on the server" in err and "m/one" in err
        code, _, err = _run(capsys, entry, *flags, "test", "--recheck", "m/one")
        assert code == 2 and "one server" in err


def test_test_over_servers_reports_a_dead_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LMSTRIX_SERVER", raising=False)
    dead = _dead_url()
    with FakeLMStudio([SimModel("m/two", 8192)]) as a:
        url = a.base_url
        flags = [*_flags([a, dead], tmp_path / "r.json"), "--timeout", "5"]
        code, out, err = _run(
            capsys, ENDS[0][1], *flags, "--json", "test", "--all", "--trials", "1"
        )
    assert code == 1
    doc = json.loads(out)
    errors = {s["server"]: s["error"] for s in doc["servers"]}
    assert errors[url] is None and errors[dead]
    assert [r["status"] for r in doc["models"]] == ["done"]
    assert f"error: {dead}" in err


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_one_server_commands_refuse_several(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    flags = _flags(servers[:2], tmp_path / "r.json")
    code, out, err = _run(capsys, entry, *flags, "load", "alpha")
    assert code == 2 and "one server" in err and out == ""
    assert servers[0].counters.loads == servers[1].counters.loads == 0


@pytest.mark.parametrize(("name", "entry"), ENDS)
def test_scan_each_server_and_show_wants_one(
    capsys: pytest.CaptureFixture[str],
    servers: List[FakeLMStudio],
    tmp_path: Path,
    name: str,
    entry: Entry,
) -> None:
    a, b, _ = servers
    flags = _flags([a, b], tmp_path / "r.json")
    code, out, err = _run(capsys, entry, *flags, "--json", "scan")
    assert code == 0, err
    added = {doc["server"]: doc["added"] for doc in json.loads(out)["servers"]}
    assert added == {a.base_url: ["alpha", "beta"], b.base_url: ["alpha", "gamma"]}
    code, out, _ = _run(capsys, entry, *flags, "scan")
    assert code == 0 and out.count("nothing changed") == 2
    dead = _dead_url()
    code, out, err = _run(capsys, entry, *_flags([a, dead], tmp_path / "r.json"), "scan")
    assert code == 1 and f"error: {dead}" in err and f"scanned {a.base_url}" in out
    code, out, err = _run(capsys, entry, *flags, "show", "alpha")
    assert code == 2 and "one server" in err and out == ""
