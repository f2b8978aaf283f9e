"""``lmstrix test`` over several servers: every server at once, one search at a time on each.

The searching is :func:`lmstrix.context.find_context_limits`; this module picks the
models per server (skipping those ``done`` on that server unless ``--reset``), shows
progress and results per server, and keeps the records per server in the registry.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ._cmd_test import _n, _step, skipped_report
from ._output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, limits_table
from ._session import CliError, Session

if TYPE_CHECKING:
    from ..context._report import ContextReport, SearchProgress

__all__ = ["test_servers"]


def test_servers(
    session: Session,
    models: Sequence[str],
    *,
    all_models: bool,
    reset: bool,
    search: Dict[str, Any],
) -> int:
    """Search ``models`` (or, with ``all_models``, every chat model) on every server.

    A server that cannot be reached, or whose search stopped on an error, is reported
    on its own (exit 1); the others are searched all the same.
    """
    from ..client._detect import model_not_found
    from ..context._servers import find_context_limits
    from ..errors import APIError

    registry = session.registry()
    reports: Dict[str, List[Dict[str, Any]]] = {}
    errors: Dict[str, Optional[str]] = {}
    offered: Dict[str, List[str]] = {}
    reached = []
    for client in session.clients():
        url = client.base_url
        reports[url], errors[url] = [], None
        try:
            offered[url] = [m.key for m in client.list_models() if m.type != "embedding"]
        except APIError as exc:
            errors[url] = str(exc)
            session.error(f"{url}: {exc}")
            continue
        reached.append(client)
    if not all_models:
        known = sorted({key for keys in offered.values() for key in keys})
        for key in models:
            if reached and key not in known:
                raise model_not_found(" or ".join(offered), key, known)
    wanted = list(dict.fromkeys(models)) if not all_models else None
    for url, keys in offered.items():
        for key in keys if wanted is None else [k for k in wanted if k in keys]:
            record = registry.get(key, server=url)
            if record is not None and record.status == "done" and not reset:
                session.note(f"{url} {key}: tested already; --reset tests it again")
                reports[url].append(skipped_report(record))
    lock = threading.Lock()

    def progress(step: SearchProgress) -> None:
        with lock:
            session.progress(f"{step.server} {step.model}: {_step(step)}")

    def finished(report: ContextReport) -> None:
        session.note(
            f"{report.server} {report.model}: {report.status}: loadable "
            f"{_n(report.loadable_context)}, working {_n(report.working_context)} "
            f"({report.loads} loads, {report.seconds:.1f} s)"
            + (f"; {report.reason}" if report.reason else "")
        )

    session.note(f"searching {len(reached)} servers at once, one model at a time on each...")
    try:
        results = find_context_limits(
            reached,
            wanted,
            registry=registry,
            skip_tested=not reset,
            on_report=finished,
            on_progress=progress,
            reset=reset,
            **search,
        )
    except KeyboardInterrupt:
        raise CliError(
            "interrupted; the registry keeps every step, so running the same command "
            "again resumes the searches",
            EXIT_INTERRUPTED,
        ) from None
    for url, result in results.items():
        for report in result.reports:
            doc = report.to_dict()
            doc["skipped"] = False
            reports[url].append(doc)
        if result.error is not None:
            errors[url] = str(result.error)
            session.error(f"{url}: the search stopped: {result.error}")
    every = [doc for docs in reports.values() for doc in docs]
    if session.as_json:
        session.emit(
            {
                "servers": [
                    {"server": url, "error": errors[url], "models": reports[url]} for url in reports
                ],
                "models": every,
            }
        )
    else:
        session.echo(limits_table(every, server=True))
    failed = any(errors.values()) or any(doc["status"] != "done" for doc in every)
    return EXIT_FAILURE if failed else EXIT_OK
