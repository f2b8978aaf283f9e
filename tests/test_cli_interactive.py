"""The interactive chat, in-process: commands, history, Ctrl-C, and the overflow warning.

Lines are fed to :class:`~lmstrix.cli._interactive.ChatRepl` by a reader function (an
item that is an exception is raised instead, as ``input()`` raises ``KeyboardInterrupt``
and ``EOFError``); the answers come from a FakeLMStudio on loopback. The same chat on a
real pseudo-terminal is in ``test_cli_interactive_pty.py``.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Union

import pytest

from lmstrix.cli import main
from lmstrix.cli._interactive import ChatRepl
from lmstrix.cli._output import EXIT_INTERRUPTED, EXIT_OK
from lmstrix.cli._session import Session
from lmstrix.registry import ModelRecord, Registry
from lmstrix.testing import FakeLMStudio, Fault, SimModel

FLEET = [SimModel("acme/a", 8192), SimModel("acme/b", 8192)]

Line = Union[str, BaseException]


@pytest.fixture
def sim() -> Iterator[FakeLMStudio]:
    with FakeLMStudio(models=FLEET) as server:
        yield server


class Screen(io.StringIO):
    """stdout; raises ``KeyboardInterrupt`` once ``stop_at`` is shown (Ctrl-C on seeing it)."""

    def __init__(self, stop_at: Optional[str] = None) -> None:
        super().__init__()
        self.stop_at = stop_at

    def write(self, text: str) -> int:
        written = super().write(text)
        if self.stop_at is not None and self.stop_at in text:
            self.stop_at = None
            raise KeyboardInterrupt
        return written


class Chat:
    """A ChatRepl on ``sim`` with a scripted reader, its screen and its stderr."""

    def __init__(
        self, sim: FakeLMStudio, tmp_path: Path, *, stop_at: Optional[str] = None, **kw: Any
    ) -> None:
        self.sim = sim
        self.out = Screen(stop_at)
        self.err = io.StringIO()
        self.registry = tmp_path / "registry.json"
        self.session = Session(
            server=sim.base_url,
            registry_path=str(self.registry),
            stdout=self.out,
            stderr=self.err,
            stdin=io.StringIO(""),
            verbosity=kw.pop("verbosity", 0),
        )
        for middleware in kw.pop("middleware", ()):
            self.session.add_middleware(middleware)
        self.kw = kw
        self.prompts: List[str] = []

    def run(self, *lines: Line, keys: Optional[List[str]] = None) -> int:
        queue = list(lines)

        def read(prompt: str) -> str:
            self.prompts.append(prompt)
            if not queue:
                raise EOFError
            item = queue.pop(0)
            if isinstance(item, BaseException):
                raise item
            return item

        self.repl = ChatRepl(self.session, keys or ["acme/a"], read=read, **self.kw)
        try:
            return self.repl.run()
        finally:
            self.session.close()

    def bodies(self) -> List[Dict[str, Any]]:
        found = [r.body for r in self.sim.received if r.path.endswith("/chat/completions")]
        return [b for b in found if isinstance(b, dict)]


def test_the_whole_conversation_is_sent_each_turn(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path, system="Be brief.", params={"temperature": 0})
    assert chat.run("What is 2+2?", "", "What is 3+3?") == EXIT_OK
    assert chat.out.getvalue().splitlines()[:2] == ["4", "6"]
    last = chat.bodies()[-1]
    assert last["stream"] is True and last["temperature"] == 0
    assert last["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is 2+2?"},
        {"role": "assistant", "content": "4"},
        {"role": "user", "content": "What is 3+3?"},
    ]
    assert len(chat.bodies()) == 2  # the empty line sent nothing
    assert "chat with acme/a on" in chat.err.getvalue()


def test_a_multi_line_message(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    assert chat.run('"""', "first line", "", "second line", '"""') == EXIT_OK
    assert chat.bodies()[-1]["messages"][-1]["content"] == "first line\n\nsecond line"
    assert chat.prompts[:5] == ["> ", "... ", "... ", "... ", "... "]
    chat = Chat(sim, tmp_path)  # an empty block sends nothing
    assert chat.run('"""', "  ", '"""', '"""', "dropped", KeyboardInterrupt()) == EXIT_OK
    assert chat.bodies() == [] or all(len(b["messages"]) == 1 for b in chat.bodies())
    assert "(message dropped)" in chat.err.getvalue()


def test_save_reset_system_and_help(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    saved, notes = tmp_path / "chat.json", tmp_path / "chat.md"
    code = chat.run(
        "/system Answer in French.",
        "What is 1+1?",
        f"/save {saved}",
        f"/save {notes}",
        "/help",
        "/reset",
        "/system",
        "What is 2+5?",
        "/exit",
        "never read",
    )
    assert code == EXIT_OK
    doc = json.loads(saved.read_text(encoding="utf-8"))
    assert doc["model"] == "acme/a" and doc["server"] == sim.base_url
    assert doc["system"] == "Answer in French."
    assert doc["messages"] == [
        {"role": "user", "content": "What is 1+1?"},
        {"role": "assistant", "content": "2", "model": "acme/a"},
    ]
    text = notes.read_text(encoding="utf-8")
    assert "# Chat with acme/a" in text and "**system:** Answer in French." in text
    assert "## user\n\nWhat is 1+1?" in text and "## assistant (acme/a)\n\n2" in text
    assert "/save FILE" in chat.out.getvalue()  # the help
    assert chat.bodies()[-1]["messages"] == [{"role": "user", "content": "What is 2+5?"}]
    err = chat.err.getvalue()
    assert "saved 2 messages to" in err and "history forgotten (2 messages)" in err
    assert "system message set" in err and "system message removed" in err
    assert "never read" not in chat.prompts


def test_save_mistakes_are_reported_and_the_chat_goes_on(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    assert chat.run("/save", f"/save {tmp_path}", "/nonsense", "What is 1+2?") == EXIT_OK
    err = chat.err.getvalue()
    assert "/save needs a file name" in err and f"cannot write {tmp_path}" in err
    assert "unknown command /nonsense" in err
    assert chat.out.getvalue().strip().endswith("3")


def test_model_switch(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    code = chat.run("What is 2+2?", "/model", "/model acme/nope", "/model acme/b", "/model", "hi")
    assert code == EXIT_OK
    assert [b["model"] for b in chat.bodies()] == ["acme/a", "acme/b"]
    assert len(chat.bodies()[-1]["messages"]) == 3  # the history went along
    out = chat.out.getvalue().splitlines()
    assert "acme/a" in out and "acme/b" in out
    err = chat.err.getvalue()
    assert "acme/nope" in err and "error:" in err and "now chatting with acme/b" in err


def test_model_switch_when_the_server_is_gone(tmp_path: Path) -> None:
    with FakeLMStudio(models=FLEET) as gone:
        chat = Chat(gone, tmp_path)
    assert chat.run("/model acme/b") == EXIT_OK
    assert "cannot list the server's models" in chat.err.getvalue()
    assert chat.repl.keys == ["acme/a"]


def test_stats_on_request_and_after_each_answer(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    assert chat.run("/stats", "What is 2+2?", "/stats") == EXIT_OK
    assert "no finished answer yet" in chat.err.getvalue()
    assert "stats: time to first token" in chat.out.getvalue()
    assert "usage: " in chat.out.getvalue()
    chat = Chat(sim, tmp_path, show_stats=True)
    assert chat.run("What is 2+2?") == EXIT_OK
    assert "stats: time to first token" in chat.err.getvalue()


def test_ctrl_c_mid_answer_keeps_the_part_shown(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path, stop_at="from")
    saved = tmp_path / "cut.json"
    assert chat.run("tell me a story", "/stats", f"/save {saved}", "and then?") == EXIT_OK
    err = chat.err.getvalue()
    assert "answer stopped" in err and "no finished answer" in err
    doc = json.loads(saved.read_text(encoding="utf-8"))
    cut = doc["messages"][1]
    assert cut["cut"] is True and cut["role"] == "assistant"
    assert cut["content"] == "Simulated answer from"  # what was shown, not the rest
    assert chat.out.getvalue().startswith("Simulated answer from\n")
    sent = chat.bodies()[-1]["messages"]
    assert sent[1] == {"role": "assistant", "content": cut["content"]}  # no "cut" key sent
    assert sent[-1] == {"role": "user", "content": "and then?"}
    assert "*(answer cut off)*" in chat.repl._markdown()


def test_ctrl_c_before_the_answer_began_drops_the_question(
    sim: FakeLMStudio, tmp_path: Path
) -> None:
    def interrupt(request: Any, call_next: Any) -> Any:
        if request.url.endswith("/chat/completions"):
            raise KeyboardInterrupt
        return call_next(request)

    chat = Chat(sim, tmp_path, middleware=[interrupt])
    assert chat.run("What is 2+2?") == EXIT_OK
    assert chat.repl.history == []
    assert "stopped before the answer began" in chat.err.getvalue()


def test_ctrl_c_and_ctrl_d_at_the_prompt(sim: FakeLMStudio, tmp_path: Path) -> None:
    assert Chat(sim, tmp_path).run(KeyboardInterrupt(), "never") == EXIT_INTERRUPTED
    assert Chat(sim, tmp_path).run(EOFError(), "never") == EXIT_OK
    assert Chat(sim, tmp_path).run('"""', "half a message", EOFError()) == EXIT_OK


def test_a_failed_turn_is_reported_and_the_chat_goes_on(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    sim.inject(Fault(kind="status", status=400))
    sim.inject(Fault(kind="error_event", after_chunks=2))
    assert chat.run("What is 2+2?", "What is 3+3?", "tell me") == EXIT_OK
    errors = [line for line in chat.err.getvalue().splitlines() if line.startswith("error:")]
    assert len(errors) == 2, errors
    assert chat.repl.history[0] == {"role": "user", "content": "What is 3+3?"}
    assert chat.repl.history[1]["cut"] is True  # the part before the error is kept
    assert chat.repl.history[3]["content"] == "Simulated answer from acme/a to: tell me"
    chat = Chat(sim, tmp_path)
    assert chat.run("hello", keys=["acme/missing"]) == EXIT_OK
    assert "acme/missing" in chat.err.getvalue() and chat.repl.history == []


def test_a_slash_message_and_a_chain(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path)
    assert chat.run("//etc is a folder", keys=["acme/a", "acme/b"]) == EXIT_OK
    assert chat.bodies()[-1]["messages"][-1]["content"] == "/etc is a folder"
    assert "acme/a -> acme/b" in chat.err.getvalue()


def _tested(chat: Chat, key: str, working: int) -> None:
    record = ModelRecord(
        key=key, status="done", declared_context=8192, working_context=working, chars_per_token=4
    )
    Registry(chat.registry, server=chat.sim.base_url).upsert(record)


def test_overflow_warning_before_a_turn(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path, params={"max_tokens": 50})
    _tested(chat, "acme/a", 300)
    long = "word " * 200  # 1000 characters: about 275 tokens with the margin
    assert chat.run("What is 2+2?", long, long) == EXIT_OK
    warnings = [line for line in chat.err.getvalue().splitlines() if "warning" in line]
    assert len(warnings) == 2  # the second and third turns, not the first
    assert "tested working context of 300" in warnings[0] and "/reset" in warnings[0]


def test_no_record_no_warning_and_a_note_with_v(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path, verbosity=1)
    assert chat.run("word " * 1000, "again") == EXIT_OK
    err = chat.err.getvalue()
    assert "warning:" not in err
    assert err.count("no tested working context for acme/a") == 1  # said once


def test_a_damaged_registry_does_not_stop_the_chat(sim: FakeLMStudio, tmp_path: Path) -> None:
    chat = Chat(sim, tmp_path, verbosity=1)
    chat.registry.write_text("{damaged", encoding="utf-8")
    assert chat.run("What is 2+2?") == EXIT_OK
    assert "no overflow check for acme/a" in chat.err.getvalue()
    assert chat.out.getvalue().strip() == "4"


# -- through main(): the hook in `lmstrix chat` ----------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_chat_with_no_prompt_on_a_terminal_is_interactive(
    sim: FakeLMStudio,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("sys.stdin", _Terminal("What is 2+2?\n/exit\n"))
    reg = str(tmp_path / "registry.json")
    code = main(["--server", sim.base_url, "--registry", reg, "chat", "acme/a", "--stats"])
    out, err = capsys.readouterr()
    assert code == EXIT_OK
    assert out.startswith("> 4\n") and "stats: time to first token" in err
    monkeypatch.setattr("sys.stdin", _Terminal(""))
    code = main(["--server", sim.base_url, "--json", "chat", "acme/a"])
    assert code == 2 and "no prompt" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", _Terminal(""))
    code = main(["--server", sim.base_url, "chat", "acme/a", "--var", "a=1"])
    assert code == 2 and "need --template" in capsys.readouterr().err


def test_one_shot_chat_warns_before_an_overflow(
    sim: FakeLMStudio, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    reg = tmp_path / "registry.json"
    Registry(reg, server=sim.base_url).upsert(
        ModelRecord(key="acme/a", status="done", working_context=100, chars_per_token=4)
    )
    args = ["--server", sim.base_url, "--registry", str(reg), "chat", "--max-tokens", "9"]
    assert main([*args, "acme/a", "word " * 200]) == EXIT_OK
    err = capsys.readouterr().err
    assert "warning: acme/a: about" in err and "working context of 100" in err
    assert "/reset" not in err
    assert main([*args, "acme/a", "What is 2+2?"]) == EXIT_OK
    assert "warning" not in capsys.readouterr().err


def test_lines_from_a_given_stdin_when_not_the_process_terminal(
    sim: FakeLMStudio, tmp_path: Path
) -> None:
    out, err = io.StringIO(), io.StringIO()
    session = Session(
        server=sim.base_url, stdout=out, stderr=err, stdin=io.StringIO("What is 2+2?\r\n/reset\n")
    )
    try:
        assert ChatRepl(session, ["acme/a"]).run() == EXIT_OK
    finally:
        session.close()
    assert out.getvalue() == "> 4\n> > \n"
    assert "history forgotten (2 messages)" in err.getvalue()


def test_an_unknown_model_while_the_server_stops_answering(
    sim: FakeLMStudio, tmp_path: Path
) -> None:
    chat = Chat(sim, tmp_path)
    sim.inject(Fault(path="*", kind="status", status=400, skip=1, times=10))
    assert chat.run("/model acme/nope", "/model acme/b") == EXIT_OK  # listing, then failures
    err = chat.err.getvalue()
    assert err.count("error:") == 2 and chat.repl.keys == ["acme/a"]
