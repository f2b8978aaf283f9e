"""Module loggers made on first use (``lmstrix._log``): they behave as ``logging``'s own,
and lmstrix imports no ``logging`` when the application does not use it."""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

import pytest
from _isolated import run_vendored

from lmstrix._log import logger
from lmstrix.testing import FakeLMStudio


def test_records_reach_the_configured_logger(caplog: pytest.LogCaptureFixture) -> None:
    log = logger("lmstrix.tests.reach")
    caplog.set_level(logging.INFO, logger="lmstrix.tests.reach")  # set before first use
    log.debug("not shown at INFO")
    log.info("shown %d", 1)
    assert [(r.name, r.levelno, r.getMessage()) for r in caplog.records] == [
        ("lmstrix.tests.reach", logging.INFO, "shown 1")
    ]


def test_a_level_changed_after_first_use_is_honoured(caplog: pytest.LogCaptureFixture) -> None:
    log = logger("lmstrix.tests.later")
    caplog.set_level(logging.WARNING, logger="lmstrix.tests.later")
    log.info("dropped")  # makes the logger and keeps its bound `info`
    caplog.set_level(logging.INFO, logger="lmstrix.tests.later")
    log.info("kept")
    assert [r.getMessage() for r in caplog.records] == ["kept"]


def test_the_logger_is_logging_s_own_with_one_null_handler() -> None:
    name = "lmstrix.tests.handlers"
    first, second = logger(name), logger(name)
    assert first.name == name  # a plain attribute comes from the real logger
    second.warning("made")
    first.warning("made again")
    real = logging.getLogger(name)
    assert [type(h) for h in real.handlers] == [logging.NullHandler]
    assert first.handlers is real.handlers
    assert "made on first use" in repr(first)


def test_threads_logging_first_at_once_share_the_logger() -> None:
    log = logger("lmstrix.tests.threads")
    start = threading.Barrier(8)

    def first_use() -> None:
        start.wait()
        log.info("hello")

    threads = [threading.Thread(target=first_use) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert log.name == "lmstrix.tests.threads"
    assert logging.getLogger("lmstrix.tests.threads").handlers  # a NullHandler


def test_calls_before_logging_is_imported_make_no_logger(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    log = logger("lmstrix.tests.unimported")
    monkeypatch.delitem(sys.modules, "logging")  # as in a process that never imported it
    log.warning("nobody could see this")
    log.exception("nor this")
    assert "made on first use" in repr(log)
    assert log._logger is None  # type: ignore[attr-defined]
    monkeypatch.undo()
    log.warning("now a real logger")
    assert log._logger is logging.getLogger("lmstrix.tests.unimported")  # type: ignore[attr-defined]


def test_a_client_leaves_logging_unimported_until_the_application_uses_it(
    tmp_path: Path,
) -> None:
    with FakeLMStudio() as fake:
        code = f"""
            import sys
            import lmstrix
            with lmstrix.Client({fake.base_url!r}) as client:
                client.list_models()  # each request logs at DEBUG
                try:
                    client.chat("no/such-model", "hi")
                except lmstrix.ModelNotFoundError:
                    pass
                before = "logging" in sys.modules
                import logging
                seen = []

                class Keep(logging.Handler):
                    def emit(self, record):
                        seen.append((record.name, record.funcName, record.getMessage()))

                logging.getLogger("lmstrix").addHandler(Keep())
                logging.getLogger("lmstrix").setLevel(logging.DEBUG)
                client.list_models()
            print(before)
            print(seen)
        """
        result = run_vendored(code, tmp_path)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == "False"
    # Once the application imports logging, records are logging's own, caller and all.
    assert "('lmstrix.client._client', 'send_request', 'GET " in second, second
