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


# Each server's models, and those of them it has loaded.
LAYOUT = [(("alpha", "beta"), ("alpha",)), (("alpha", "gamma"), ("alpha", "gamma"))]
LAYOUT.append((("alpha", "beta"), ("beta",)))


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[List[FakeLMStudio]]:
    monkeypatch.delenv("LMSTRIX_SERVER", raising=False)
    fakes: List[FakeLMStudio] = []
    try:
        for keys, loaded in LAYOUT:
            fakes.append(FakeLMStudio(_fleet(*keys)).start())
            for key in loaded:
                fakes[-1].preload(key)
        yield fakes
    finally:
        for fake in fakes:
            fake.stop()


@pytest.fixture(params=[entry for _, entry in ENDS], ids=[name for name, _ in ENDS])
def entry(request: pytest.FixtureRequest) -> Entry:
    """Each front end in turn."""
    return request.param  # type: ignore[no-any-return]


class Run:
    """One front end, run in-process with its output captured; ``tmp`` is a scratch folder."""

    def __init__(self, capsys: pytest.CaptureFixture[str], entry: Entry, tmp: Path) -> None:
        self.capsys, self.entry, self.tmp = capsys, entry, tmp
        self.registry = tmp / "r.json"

    def __call__(self, *args: str) -> Tuple[int, str, str]:
        self.capsys.readouterr()
        code = self.entry(list(args))
        out, err = self.capsys.readouterr()
        return code, out, err


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], entry: Entry, tmp_path: Path) -> Run:
    return Run(capsys, entry, tmp_path)


def _flags(fakes: List[Any], registry: Path) -> List[str]:
    found = ["--registry", str(registry)]
    for fake in fakes:
        found += ["--server", fake if isinstance(fake, str) else fake.base_url]
    return found


def chats(fake: FakeLMStudio) -> int:
    return fake.counters.requests.get(CHAT, 0)


def test_ps_over_three_servers_names_each_server(cli: Run, servers: List[FakeLMStudio]) -> None:
    a, b, c = servers
    code, out, err = cli(*_flags(servers, cli.registry), "--json", "ps")
    assert code == 0, err
    doc = json.loads(out)
    assert [s["server"] for s in doc["servers"]] == [a.base_url, b.base_url, c.base_url]
    assert all(s["reached"] for s in doc["servers"])
    seen = sorted((row["server"], row["key"]) for row in doc["instances"])
    assert seen == sorted(
        [(a.base_url, "alpha"), (b.base_url, "alpha"), (b.base_url, "gamma"), (c.base_url, "beta")]
    )
    # Global options before and after the command name add up; the table has a server column.
    args = ["--registry", str(cli.registry), "--server", a.base_url]
    code, out, err = cli(*args, "ps", "--server", b.base_url)
    assert code == 0, err
    header = out.splitlines()[0].split()
    assert header[0] == "server"
    assert a.base_url in out and b.base_url in out and c.base_url not in out


def test_servers_from_the_environment_with_commas(
    cli: Run, servers: List[FakeLMStudio], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b, _ = servers
    monkeypatch.setenv("LMSTRIX_SERVER", f"{a.base_url}, {b.base_url}")
    code, out, err = cli("--registry", str(cli.registry), "--json", "ps")
    assert code == 0, err
    assert [s["server"] for s in json.loads(out)["servers"]] == [a.base_url, b.base_url]
    # A bad URL in the list is bad usage, named.
    monkeypatch.setenv("LMSTRIX_SERVER", f"{a.base_url},http://bad_host:1234")
    code, out, err = cli("--registry", str(cli.registry), "ps")
    assert code == 2
    assert "$LMSTRIX_SERVER" in err and "bad_host" in err and out == ""
    # So is one given with --server (the option's own check).
    code, _, err = cli("--server", a.base_url, "--server", "http://x y", "ps")
    assert code == 2 and "x y" in err


def test_ps_and_list_report_a_dead_server_on_its_own(cli: Run, servers: List[FakeLMStudio]) -> None:
    a = servers[0]
    dead = _dead_url()
    registry = lmstrix.Registry(cli.registry)
    registry.upsert(
        ModelRecord(key="delta", server=dead, declared_context=4096, working_context=3000)
    )
    flags = [*_flags([a, dead], cli.registry), "--timeout", "5"]
    code, out, err = cli(*flags, "--json", "ps")
    assert code == 1  # a server could not be reached
    doc = json.loads(out)
    reached = {s["server"]: s["reached"] for s in doc["servers"]}
    assert reached == {a.base_url: True, dead: False}
    assert [row["server"] for row in doc["instances"]] == [a.base_url]
    assert f"error: {dead}" in err
    # list works offline for the dead server, from its registry records, exit 0.
    code, out, err = cli(*flags, "--json", "list")
    assert code == 0, err
    doc = json.loads(out)
    state = {s["server"]: s["server_reached"] for s in doc["servers"]}
    assert state == {a.base_url: True, dead: False}
    rows = {(r["server"], r["key"]): r for r in doc["models"]}
    assert rows[(dead, "delta")]["working_context"] == 3000
    assert rows[(dead, "delta")]["loaded"] is None
    assert rows[(a.base_url, "alpha")]["loaded"] is True
    assert "not reached" in err
    code, out, _ = cli(*flags, "list")
    assert code == 0
    assert out.splitlines()[0].split()[0] == "server"
    assert any(line.startswith(dead) and "delta" in line for line in out.splitlines())


def test_doctor_checks_every_server(cli: Run, servers: List[FakeLMStudio]) -> None:
    code, out, err = cli(*_flags(servers, cli.registry), "--json", "doctor")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["ok"] is True and "server" not in doc
    assert [s["url"] for s in doc["servers"]] == [s.base_url for s in servers]
    assert [s["loaded"] for s in doc["servers"]] == [1, 2, 1]
    assert all(s["ok"] and s["api"] == "v1" and s["models"] == 2 for s in doc["servers"])
    assert all(s["version"].startswith("LM Studio") for s in doc["servers"])
    dead = _dead_url()
    flags = [*_flags([servers[0], dead], cli.registry), "--timeout", "5"]
    code, out, _ = cli(*flags, "doctor")
    assert code == 1
    lines = out.splitlines()
    assert any(line.startswith("ok") and servers[0].base_url in line for line in lines)
    assert any(line.startswith("FAIL  server " + dead) for line in lines)


# alpha as tested: its working context is 1,000 tokens.
TESTED = {"declared_context": 8192, "working_context": 1000, "chars_per_token": 4.0}


def _long_registry(path: Path, fakes: List[FakeLMStudio]) -> None:
    """alpha's tested working context is 1,000 tokens on every server."""
    registry = lmstrix.Registry(path)
    for fake in fakes:
        record = ModelRecord(key="alpha", server=fake.base_url, status="done", **TESTED)
        registry.upsert(record)


LONG = "A line of a long document. " * 400 + "What is 2+2?"  # ~2,700 tokens


def test_chat_with_a_fallback_chain_over_a_pool(cli: Run, servers: List[FakeLMStudio]) -> None:
    a, b, c = servers
    _long_registry(cli.registry, servers)
    flags = _flags(servers, cli.registry)
    code, out, err = cli(*flags, "--json", "chat", "-m", "alpha", "--model", "gamma", LONG)
    assert code == 0, err
    doc = json.loads(out)
    assert (doc["model"], doc["server"], doc["chain"]) == ("gamma", b.base_url, ["alpha", "gamma"])
    assert doc["text"]
    assert "answered by gamma on " + b.base_url in err
    assert (chats(a), chats(b), chats(c)) == (0, 1, 0)  # alpha was never asked
    # A short prompt fits alpha: it answers, and nothing is said about the chain.
    code, out, err = cli(*flags, "chat", "-m", "alpha", "-m", "gamma", "2+2?")
    assert code == 0, err
    assert out.strip() and "answered by" not in err
    assert chats(a) + chats(b) + chats(c) == 2 and chats(c) == 0
    # MODEL as an argument goes to the pool too; an unknown one lists close matches.
    code, out, err = cli(*flags, "chat", "beta", "What is 3+4?")
    assert code == 0 and out.strip(), err
    code, _, err = cli(*flags, "chat", "alphaa", "hi")
    assert code == 1 and "alpha" in err
    code, _, err = cli(*flags, "chat", "-m", "alpha", "beta", "hi")
    assert code == 2 and "at most one argument" in err


def test_chat_chain_on_one_server_and_a_chain_that_fails(
    cli: Run, servers: List[FakeLMStudio]
) -> None:
    b = servers[1]
    _long_registry(cli.registry, [b])
    flags = _flags([b], cli.registry)
    chain = ["-m", "alpha", "-m", "gamma"]
    code, out, err = cli(*flags, "chat", "--no-stream", *chain, LONG)
    assert code == 0, err
    assert "answered by gamma" in err and out.strip()
    assert chats(b) == 1
    code, _, err = cli(*flags, "chat", "-m", "alpha", "-m", "nowhere", LONG)
    assert code == 1
    assert "alpha" in err and "nowhere" in err and "fallback chain" in err


def _items(path: Path, count: int) -> Path:
    rows = [{"id": n, "prompt": f"What is {n}+1?"} for n in range(count)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_batch_over_a_pool_uses_every_server_with_alpha_loaded(
    cli: Run, servers: List[FakeLMStudio]
) -> None:
    a, b, c = servers
    items = _items(cli.tmp / "in.jsonl", 40)
    output = cli.tmp / "out.jsonl"
    flags = _flags(servers, cli.registry)
    code, out, err = cli(*flags, "--json", "batch", str(items), "-o", str(output), "-m", "alpha")
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


def test_batch_workers_come_from_the_pool_slots(cli: Run, servers: List[FakeLMStudio]) -> None:
    import lmstrix.batch

    seen: Dict[str, Any] = {}
    real = lmstrix.batch.run_batch

    @functools.wraps(real)
    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.update(kwargs, client=args[1], model=args[2])
        return real(*args, **kwargs)

    items = _items(cli.tmp / "in.jsonl", 6)
    flags = _flags(servers, cli.registry)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(lmstrix.batch, "run_batch", spy)
        code, _, err = cli(
            *flags,
            "batch",
            str(items),
            "-o",
            str(cli.tmp / "o"),
            "-m",
            "alpha",
        )
    assert code == 0, err
    assert isinstance(seen["client"], lmstrix.Pool)
    assert lmstrix.batch.default_workers(seen["client"], "alpha") == 4  # 2 slots on a and b


def test_batch_with_a_fallback_chain_says_who_answered(
    cli: Run, servers: List[FakeLMStudio]
) -> None:
    _a, b, c = servers
    _long_registry(cli.registry, servers)
    items = cli.tmp / "in.jsonl"
    rows = [{"id": 1, "prompt": LONG}, {"id": 2, "prompt": "What is 2+5?"}]
    items.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    output = cli.tmp / "out.jsonl"
    flags = _flags(servers, cli.registry)
    batch = ["batch", str(items), "-o", str(output), "-m", "alpha", "-m", "gamma"]
    code, out, err = cli(*flags, *batch)
    assert code == 0, err
    assert "1 done" not in out and "2 done" in out
    assert "answered 1 by gamma" in err
    assert chats(b) >= 1 and chats(c) == 0


def test_test_all_over_two_servers_keeps_limits_per_server(
    cli: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("LMSTRIX_SERVER", raising=False)
    big = [SimModel("m/one", 16384, 12000), SimModel("m/embed", 2048, type="embedding")]
    small = [SimModel("m/one", 16384, 6000), SimModel("m/two", 8192)]
    with FakeLMStudio(big) as a, FakeLMStudio(small) as b:
        flags = _flags([a, b], cli.registry)
        code, out, err = cli(*flags, "--json", "test", "--all", "--trials", "1")
        assert code == 0, err
        doc = json.loads(out)
        by_server = {s["server"]: [r["key"] for r in s["models"]] for s in doc["servers"]}
        assert by_server == {a.base_url: ["m/one"], b.base_url: ["m/one", "m/two"]}
        assert all(s["error"] is None for s in doc["servers"])
        assert a.counters.loads > 0 and b.counters.loads > 0
        registry = lmstrix.Registry(cli.registry)
        one_a = registry.get("m/one", server=a.base_url)
        one_b = registry.get("m/one", server=b.base_url)
        assert one_a is not None and one_b is not None
        assert 12000 - 1024 <= (one_a.loadable_context or 0) <= 12000
        assert 6000 - 1024 <= (one_b.loadable_context or 0) <= 6000
        assert registry.get("m/two", server=a.base_url) is None
        # Again: everything is done already, on each server; the table names the servers.
        loads = a.counters.loads + b.counters.loads
        code, out, err = cli(*flags, "test", "m/one")
        assert code == 0, err
        assert a.counters.loads + b.counters.loads == loads
        assert out.splitlines()[0].split()[0] == "server"
        assert out.count("(skipped)") == 2
        code, _, err = cli(*flags, "test", "m/nowhere")
        assert code == 1 and "not on the server" in err and "m/one" in err
        code, _, err = cli(*flags, "test", "--recheck", "m/one")
        assert code == 2 and "one server" in err


def test_test_over_servers_reports_a_dead_one(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LMSTRIX_SERVER", raising=False)
    dead = _dead_url()
    with FakeLMStudio([SimModel("m/two", 8192)]) as a:
        url = a.base_url
        flags = [*_flags([a, dead], cli.registry), "--timeout", "5"]
        code, out, err = cli(*flags, "--json", "test", "--all", "--trials", "1")
    assert code == 1
    doc = json.loads(out)
    errors = {s["server"]: s["error"] for s in doc["servers"]}
    assert errors[url] is None and errors[dead]
    assert [r["status"] for r in doc["models"]] == ["done"]
    assert f"error: {dead}" in err


def test_one_server_commands_refuse_several(cli: Run, servers: List[FakeLMStudio]) -> None:
    flags = _flags(servers[:2], cli.registry)
    code, out, err = cli(*flags, "load", "alpha")
    assert code == 2 and "one server" in err and out == ""
    assert servers[0].counters.loads == servers[1].counters.loads == 0


def test_scan_each_server_and_show_wants_one(cli: Run, servers: List[FakeLMStudio]) -> None:
    a, b, _ = servers
    flags = _flags([a, b], cli.registry)
    code, out, err = cli(*flags, "--json", "scan")
    assert code == 0, err
    added = {doc["server"]: doc["added"] for doc in json.loads(out)["servers"]}
    assert added == {a.base_url: ["alpha", "beta"], b.base_url: ["alpha", "gamma"]}
    code, out, _ = cli(*flags, "scan")
    assert code == 0 and out.count("nothing changed") == 2
    dead = _dead_url()
    code, out, err = cli(*_flags([a, dead], cli.registry), "scan")
    assert code == 1 and f"error: {dead}" in err and f"scanned {a.base_url}" in out
    code, out, err = cli(*flags, "show", "alpha")
    assert code == 2 and "one server" in err and out == ""
