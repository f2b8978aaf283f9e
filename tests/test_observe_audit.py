"""``lmstrix.observe.AuditLog`` and ``verify_audit_log``: one hash-chained JSON line per
call, each kind of tampering detected, safe appends from several processes, no token."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Callable, Dict, List

import pytest

import lmstrix
from lmstrix.client._calls import CallEvent
from lmstrix.observe import AuditLog, verify_audit_log
from lmstrix.observe._audit import GENESIS
from lmstrix.testing import FakeLMStudio

CHAT = "lmstrix-demo/tiny-chat-1b"
TOKEN = "sk-lm-SECRET-token-0123456789"


def _lines(path: Path) -> List[Dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _write_lines(path: Path, raw: List[bytes]) -> None:
    path.write_bytes(b"".join(raw))


@pytest.fixture
def secured() -> Any:
    with FakeLMStudio(api_token=TOKEN) as server:
        yield server


def test_one_line_per_call_and_never_the_token(secured: FakeLMStudio, tmp_path: Path) -> None:
    path = tmp_path / "audit" / "calls.jsonl"
    audit = AuditLog(path, label="team-a")
    with lmstrix.Client(secured.base_url, api_token=TOKEN, observers=[audit]) as client:
        instance = client.load(CHAT, context_length=4096)
        client.chat(CHAT, "What is 2+3?", temperature=0, max_tokens=20, api_key=TOKEN)
        client.stream_chat(CHAT, "Tell me a story").text()
        with pytest.raises(lmstrix.ModelNotFoundError):
            client.chat("no/such-model", "hi")
        client.unload(instance.id)
    raw = path.read_bytes()
    assert TOKEN.encode() not in raw  # not from the header, not from a parameter named *key
    assert b"What is 2+3" not in raw and b"Tell me a story" not in raw  # no content
    lines = _lines(path)
    assert [(x["operation"], x["outcome"], x["stream"]) for x in lines] == [
        ("load", "ok", False),
        ("chat", "ok", False),
        ("chat", "ok", True),
        ("chat", "error", False),
        ("unload", "ok", False),
    ]
    chat = lines[1]
    assert chat["label"] == "team-a"
    assert chat["server"] == secured.base_url and chat["model"] == CHAT
    assert chat["served_model"] == CHAT
    assert chat["parameters"] == {"temperature": 0, "max_tokens": 20, "api_key": "[redacted]"}
    assert chat["usage"]["prompt_tokens"] > 0 and chat["usage"]["completion_tokens"] > 0
    assert chat["duration_s"] >= 0 and chat["time"].endswith("Z")
    assert lines[0]["parameters"] == {"context_length": 4096}
    assert lines[3]["error"] == {"type": "ModelNotFoundError", "status": 404}
    assert lines[0]["prev"] == GENESIS
    assert all(b["prev"] == a["hash"] for a, b in zip(lines, lines[1:]))
    assert "content" not in chat
    result = verify_audit_log(path)
    assert result.ok and bool(result) and result.lines == 5 and result.head == lines[-1]["hash"]
    assert verify_audit_log(path, expected_head=lines[2]["hash"]).ok


def _event(n: int) -> CallEvent:
    return CallEvent("http://127.0.0.1:1", "chat", f"model-{n}", {"temperature": 0})


@pytest.fixture
def chain(tmp_path: Path) -> Path:
    path = tmp_path / "audit.jsonl"
    audit = AuditLog(path, content=True)
    for n in range(5):
        audit(_event(n))
    assert _lines(path)[0]["content"] is None  # a CallEvent carries no content
    assert "AuditLog(" in repr(audit)
    return path


def _edit(raw: List[bytes]) -> None:
    raw[2] = raw[2].replace(b'"model-2"', b'"model-X"')


def _remove(raw: List[bytes]) -> None:
    del raw[1]


def _swap(raw: List[bytes]) -> None:
    raw[3], raw[4] = raw[4], raw[3]


@pytest.mark.parametrize(
    ("tamper", "bad_line", "reason"),
    [
        (_edit, 3, "was edited"),
        (_remove, 2, "chain is broken"),  # the line after the removed one
        (_swap, 4, "chain is broken"),
    ],
)
def test_each_kind_of_tampering_names_the_first_bad_line(
    chain: Path, tamper: Callable[[List[bytes]], None], bad_line: int, reason: str
) -> None:
    raw = chain.read_bytes().splitlines(keepends=True)
    tamper(raw)
    _write_lines(chain, raw)
    result = verify_audit_log(chain)
    assert not result.ok and not result
    assert result.bad_line == bad_line and reason in str(result.reason)


def test_lines_cut_off_the_end_need_the_kept_head(chain: Path) -> None:
    head = verify_audit_log(chain).head
    raw = chain.read_bytes().splitlines(keepends=True)
    _write_lines(chain, raw[:-1])
    assert verify_audit_log(chain).ok  # a shorter chain is still a chain...
    result = verify_audit_log(chain, expected_head=head)  # ...but not the one we knew
    assert not result.ok and result.bad_line == 5 and "cut off" in str(result.reason)


def test_a_torn_line_is_named_and_appends_go_on(chain: Path) -> None:
    with open(chain, "ab") as handle:
        handle.write(b'{"half": ')  # a crash in the middle of a write
    result = verify_audit_log(chain)
    assert not result.ok and result.bad_line == 6 and "cut short" in str(result.reason)
    AuditLog(chain)(_event(9))
    lines = chain.read_bytes().splitlines()
    assert lines[5] == b'{"half": ' and json.loads(lines[6])["prev"] == _lines_hash(lines[4])
    result = verify_audit_log(chain)
    assert result.bad_line == 6 and "not JSON" in str(result.reason)


def _lines_hash(line: bytes) -> str:
    return str(json.loads(line)["hash"])


def test_foreign_lines_are_named(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('["not an object"]\n', encoding="utf-8")
    assert "no hash" in str(verify_audit_log(path).reason)
    AuditLog(path)(_event(1))  # nothing to chain to: starts from GENESIS
    assert _lines(path)[1]["prev"] == GENESIS
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    assert verify_audit_log(empty).ok and verify_audit_log(empty).head == GENESIS


_WORKER = textwrap.dedent(
    """
    import sys
    from lmstrix.client._calls import CallEvent
    from lmstrix.observe import AuditLog
    path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    audit = AuditLog(path, label=worker)
    for n in range(count):
        audit(CallEvent("http://127.0.0.1:1", "chat", "m", {"n": n}))
    """
)


def test_four_processes_append_one_unbroken_chain(tmp_path: Path) -> None:
    path = tmp_path / "shared.jsonl"
    count = 60
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(path), f"w{i}", str(count)])
        for i in range(4)
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0, 0, 0]
    result = verify_audit_log(path)
    assert result.ok, result
    assert result.lines == 4 * count
    lines = _lines(path)
    for i in range(4):  # each worker's lines all there, in its own order
        mine = [x["parameters"]["n"] for x in lines if x["label"] == f"w{i}"]
        assert mine == list(range(count))


def test_secrets_are_redacted_at_any_depth(tmp_path: Path) -> None:
    parameters = {"opts": {"access_token": TOKEN, "list": [1, {"password": "pw"}, (2,)]}}
    event = CallEvent("http://h:1", "chat", "m", {**parameters, "max_tokens": 5, "when": object})
    record = AuditLog(tmp_path / "a.jsonl").record(event)
    assert record["parameters"]["opts"] == {
        "access_token": "[redacted]",
        "list": [1, {"password": "[redacted]"}, [2]],
    }
    assert record["parameters"]["max_tokens"] == 5
    assert record["parameters"]["when"] == repr(object)


def test_long_lines_and_a_last_line_without_hash_still_chain(tmp_path: Path) -> None:
    path = tmp_path / "long.jsonl"
    audit = AuditLog(path)
    long_event = CallEvent("http://h:1", "chat", "m", {"grammar": "x" * 10_000})
    audit(long_event)
    audit(long_event)  # the last line is longer than one read from the end
    assert verify_audit_log(path).ok
    head = _lines(path)[-1]["hash"]
    with open(path, "ab") as handle:
        handle.write(b'{"hash": 7}\n')  # a foreign line: the next append skips it
    audit(_event(1))
    audit.close()
    assert _lines(path)[-1]["prev"] == head
    assert verify_audit_log(path).bad_line == 3


def test_writers_sharing_a_file_take_turns(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first, second = AuditLog(path), AuditLog(path)
    for n in range(6):  # each sees the other's lines: the chain stays whole
        (first if n % 2 else second)(_event(n))
    assert verify_audit_log(path).ok and verify_audit_log(path).lines == 6
    first.close()
    second.close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_forked_child_opens_its_own_files_and_keeps_the_chain(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    audit = AuditLog(path)
    audit(_event(1))
    parent_files = audit._files
    pid = os.fork()
    if pid == 0:  # the child: new descriptors (its lock is not the parent's), same chain
        code = 1
        try:
            audit(_event(2))
            files = audit._files
            code = 0 if files is not None and files is not parent_files else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    audit(_event(3))  # chains to the child's line: the file's size told it
    assert [line["model"] for line in _lines(path)] == ["model-1", "model-2", "model-3"]
    assert verify_audit_log(path).ok
    audit.close()


def test_a_moved_file_starts_a_new_chain_and_fsync_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    audit = AuditLog(path, fsync=True)
    audit(_event(1))
    path.rename(tmp_path / "a.jsonl.1")  # log rotation
    audit(_event(2))
    assert _lines(path)[0]["prev"] == GENESIS and _lines(path)[0]["model"] == "model-2"
    assert len(_lines(tmp_path / "a.jsonl.1")) == 1
    with audit:
        audit(_event(3))
    assert verify_audit_log(path).lines == 2


def test_a_file_that_cannot_be_made_raises_to_the_observer_runner(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    with pytest.raises(OSError):
        AuditLog(blocker / "a.jsonl")(_event(1))  # its folder cannot be made


def test_content_true_records_messages_answers_and_a_search(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    plain = tmp_path / "plain.jsonl"
    observers = [AuditLog(path, content=True), AuditLog(plain)]
    with FakeLMStudio() as server, lmstrix.Client(server.base_url, observers=observers) as client:
        answer = client.chat(CHAT, "What is 2+3?", temperature=0)
        streamed = client.stream_chat(CHAT, "Tell me a story", max_tokens=10).text()
        client.embed("lmstrix-demo/nomic-embed-text", ["one"])
        report = lmstrix.find_context_limit(
            client, CHAT, min_context=2048, max_context=4096, resolution=2048, trials=1, seed=1
        )
    lines = _lines(path)
    assert lines[0]["content"] == {
        "input": [{"role": "user", "content": "What is 2+3?"}],
        "output": answer.text,
        "reasoning": None,
    }
    assert lines[1]["content"]["output"] == streamed
    assert lines[2]["content"] == {"input": ["one"], "output": None, "reasoning": None}
    search = lines[-1]
    assert search["operation"] == "context_search" and search["model"] == CHAT
    assert search["result"]["working_context"] == report.working_context
    assert search["parameters"]["max_context"] == 4096
    assert verify_audit_log(path).ok
    assert all("content" not in line for line in _lines(plain))
    assert b"What is 2+3" not in plain.read_bytes()
