"""``lmstrix test``: find the loadable and working context of models, resumably."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ._options import given, library_default
from ._output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, limits_table
from ._session import CliError, Session, UsageError

if TYPE_CHECKING:
    from ..context._runner import SearchProgress
    from ..registry._records import ModelRecord

__all__ = ["cmd_test", "skipped_report"]


def skipped_report(record: ModelRecord) -> Dict[str, Any]:
    """The report of a model not searched again (already ``done``): registry values, no cost."""
    return {
        "key": record.key,
        "server": record.server,
        "declared_context": record.declared_context,
        "loadable_context": record.loadable_context,
        "working_context": record.working_context,
        "status": record.status,
        "reason": record.failure_reason,
        "loads": 0,
        "requests": 0,
        "prompt_tokens": 0,
        "seconds": 0.0,
        "chars_per_token": record.chars_per_token,
        "can_load": None,
        "resumed": False,
        "probes": [],
        "skipped": True,
    }


def _at_least(name: str, value: Optional[int], low: int = 1) -> None:
    if value is not None and value < low:
        raise UsageError(f"{name} must be at least {low}, not {value}")


def _check_bounds(search: Dict[str, Any]) -> None:
    """Usage errors for search options out of range, ``--min`` above ``--max`` included."""
    for dest, flag in (
        ("min_context", "--min"),
        ("max_context", "--max"),
        ("resolution", "--resolution"),
        ("trials", "--trials"),
    ):
        _at_least(flag, search.get(dest))
    high = search.get("max_context")
    if high is not None:
        low = search.get("min_context", library_default("test", "min_context"))
        if low > high:
            raise UsageError(
                f"--min ({low:,}) is above --max ({high:,}): the smallest load to try must "
                "not exceed the largest"
            )


def cmd_test(
    session: Session,
    models: Sequence[str] = (),
    *,
    all_models: bool = False,
    min_context: Optional[int] = None,
    max_context: Optional[int] = None,
    resolution: Optional[int] = None,
    trials: Optional[int] = None,
    reset: bool = False,
    recheck: bool = False,
    metrics_out: Optional[str] = None,
) -> int:
    """Search each model's limits; skip models already ``done`` unless ``reset``.

    Every step is in the registry as it happens, so an interrupted run (exit 130)
    resumes where it stopped when run again. Exit 1 when a model failed the test.
    An option left ``None`` takes :func:`~lmstrix.find_context_limit`'s default.
    ``recheck`` re-confirms recorded limits instead (see ``_cmd_recheck``). The run's
    :class:`~lmstrix.observe.Metrics` are summed up on stderr at the end, in the JSON
    document (``metrics``), and written to ``metrics_out``.
    """
    from ._cmd_observe import watched

    if bool(models) == all_models:
        raise UsageError("name the models to test, or give --all (not both)")
    search = given(
        min_context=min_context, max_context=max_context, resolution=resolution, trials=trials
    )
    _check_bounds(search)
    with watched(session, metrics_out):
        return _test(session, models, all_models, reset, recheck, search)


def _test(
    session: Session,
    models: Sequence[str],
    all_models: bool,
    reset: bool,
    recheck: bool,
    search: Dict[str, Any],
) -> int:
    from ..context._runner import find_context_limit

    trials = search.get("trials")
    if session.several:
        if recheck:
            raise UsageError("--recheck works on one server at a time: give one --server")
        from ._test_servers import test_servers

        return test_servers(session, models, all_models=all_models, reset=reset, search=search)
    client = session.client()
    registry = session.registry()
    infos = client.list_models()
    if all_models:
        keys = [info.key for info in infos if info.type != "embedding"]
    else:
        known = [info.key for info in infos]
        for key in models:
            if key not in known:
                raise client.model_not_found(key, known)
        keys = list(dict.fromkeys(models))
    if recheck:
        if reset or set(search) - {"trials"}:
            raise UsageError(
                "--recheck checks the recorded limits: it takes --trials, not --reset, "
                "--min, --max or --resolution"
            )
        from ._cmd_recheck import cmd_recheck

        return cmd_recheck(session, keys, infos, all_models=all_models, trials=trials)

    reports: List[Dict[str, Any]] = []
    for index, key in enumerate(keys, 1):
        where = f"[{index}/{len(keys)}] {key}"
        record = registry.get(key)
        if record is not None and record.status == "done" and not reset:
            session.note(
                f"{where}: tested already (working {_n(record.working_context)}); "
                "--reset tests it again"
            )
            reports.append(skipped_report(record))
            continue
        session.note(f"{where}: searching its loadable and working context...")

        def progress(step: SearchProgress, where: str = where) -> None:
            session.progress(f"{where}: {_step(step)}")

        try:
            report = find_context_limit(
                client, key, registry=registry, on_progress=progress, reset=reset, **search
            )
        except KeyboardInterrupt:
            raise CliError(
                f"interrupted while testing {key}; the registry keeps every step, so "
                "running the same command again resumes the search",
                EXIT_INTERRUPTED,
            ) from None
        doc = report.to_dict()
        doc["skipped"] = False
        reports.append(doc)
        session.note(
            f"{where}: {report.status}: loadable {_n(report.loadable_context)}, working "
            f"{_n(report.working_context)} ({report.loads} loads, {report.seconds:.1f} s)"
            + (f"; {report.reason}" if report.reason else "")
        )
    if session.as_json:
        session.emit({"server": client.base_url, "models": reports})
    else:
        session.echo(limits_table(reports))
    failed = [r["key"] for r in reports if r["status"] != "done"]
    return EXIT_FAILURE if failed else EXIT_OK


def _step(step: SearchProgress) -> str:
    what = "load " if step.kind == "load" else "probe"
    outcome = "ok" if step.ok else f"failed ({step.failure})"
    return (
        f"{what} {step.size:>7,} tokens -> {outcome}  "
        f"[{step.loads} loads, {step.requests} requests]"
    )


def _n(value: Optional[int]) -> str:
    return "-" if value is None else f"{value:,}"
