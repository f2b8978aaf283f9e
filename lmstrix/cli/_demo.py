"""The simulator commands: ``lmstrix demo`` (the whole job, in seconds) and ``simulate``.

``demo`` starts a simulated LM Studio fleet on loopback, lists it, finds the loadable
and working context of every chat model with a progress display, prints a table of
declared / loadable / working context, and streams one answer. ``simulate`` serves the
same simulator in the foreground, for trying the other commands without LM Studio.
"""

from __future__ import annotations

import tempfile
import threading
from typing import Any, Dict, List, Optional

from ._options import SIMULATED_APIS, given
from ._output import EXIT_FAILURE, EXIT_OK, limits_table
from ._session import CliError, Session, UsageError

__all__ = ["cmd_simulate", "run_demo"]


def run_demo(session: Session, *, trials: Optional[int] = None) -> int:
    """Run the demo; return the exit code (``trials``: the search's default when ``None``)."""
    from ..client._client import Client
    from ..context._runner import SearchProgress, find_context_limit
    from ..registry._registry import Registry
    from ..testing import FakeLMStudio, demo_fleet

    if trials is not None and trials < 1:
        raise UsageError(f"--trials must be at least 1, not {trials}")
    reports: List[Dict[str, Any]] = []
    # The simulated fleet's results go to a throw-away registry, never the user's own.
    with tempfile.TemporaryDirectory(prefix="lmstrix-demo-") as home, FakeLMStudio(
        models=demo_fleet()
    ) as fake, Client(fake.base_url) as client:
        session.note(f"lmstrix demo: a simulated LM Studio is listening at {fake.base_url}")
        models = [m for m in client.list_models() if m.type != "embedding"]
        session.note(f"found {len(models)} chat models; measuring their real context limits...")
        registry = Registry(f"{home}/registry.json", server=fake.base_url)

        for index, info in enumerate(models, 1):

            def progress(step: SearchProgress, index: int = index) -> None:
                mark = "ok" if step.ok else f"fail: {step.failure}"
                what = "load " if step.kind == "load" else "probe"
                session.progress(
                    f"  [{index}/{len(models)}] {step.model}: {what} {step.size:>7,} -> {mark}"
                )

            report = find_context_limit(
                client,
                info.key,
                registry=registry,
                on_progress=progress,
                reset=True,
                seed=index,
                **given(trials=trials),
            )
            reports.append(report.to_dict())
        question = "What is 2+3?"
        chosen = models[0].key
        session.echo(limits_table(reports))
        session.echo(f"\n{chosen} > {question}")
        answer: List[str] = []
        with client.stream_chat(chosen, question, temperature=0) as stream:
            for chunk in stream:
                answer.append(chunk.text)
                session.write(chunk.text)
        session.write("\n")
    if session.as_json:
        for r in reports:
            r.pop("probes", None)
        session.emit({"models": reports, "answer": "".join(answer)})
    failed = [r for r in reports if r["status"] not in ("done", "failed")]
    return EXIT_FAILURE if failed else EXIT_OK


def cmd_simulate(
    session: Session,
    *,
    port: Optional[int] = None,
    api: Optional[str] = None,
    time_scale: Optional[float] = None,
    stop_event: Optional[threading.Event] = None,
) -> int:
    """Serve the simulated demo fleet on ``127.0.0.1:port`` until Ctrl-C (then exit 0).

    An option left ``None`` takes :func:`lmstrix.testing.serve`'s default.
    """
    from ..testing import FakeLMStudio, serve

    if api is not None and api not in SIMULATED_APIS:
        raise UsageError(f"--api must be one of {', '.join(SIMULATED_APIS)}, not {api!r}")
    if port is not None and not 0 <= port <= 65535:
        raise UsageError(f"--port must be 0-65535, not {port}")
    if time_scale is not None and time_scale < 0:
        raise UsageError(f"--time-scale must not be negative, not {time_scale}")

    def ready(fake: FakeLMStudio) -> None:
        models = [m.key for m in fake.models]
        if session.as_json:
            session.emit({"server": fake.base_url, "api": fake.api, "models": models})
        else:
            session.echo(fake.base_url)
        session.note(
            f"a simulated LM Studio ({fake.api} API, {len(models)} models) is listening at "
            f"{fake.base_url}; try `lmstrix --server {fake.base_url} list`. Ctrl-C stops it."
        )

    try:
        serve(
            "127.0.0.1",
            on_ready=ready,
            stop_event=stop_event,
            **given(port=port, api=api, time_scale=time_scale),
        )
    except OSError as exc:
        where = "127.0.0.1" if port is None else f"127.0.0.1:{port}"
        raise CliError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    session.note("the simulator stopped")
    return EXIT_OK
