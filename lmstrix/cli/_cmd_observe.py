"""``lmstrix audit verify``, ``lmstrix stats``; the metrics and cache of other commands.

:func:`watched` gives a command's clients a :class:`~lmstrix.observe.Metrics` observer
and, at its end, prints a short summary on stderr, writes ``--metrics-out`` and adds
the snapshot to the ``--json`` document; :func:`cached` puts a
:class:`~lmstrix.cache.ResponseCache` on them. The library does the work; this module
only wires it to the command line.
"""

from __future__ import annotations

import contextlib
import json
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional

from ._output import EXIT_FAILURE, EXIT_OK, table
from ._session import Session, UsageError

if TYPE_CHECKING:
    from ..cache._cache import ResponseCache
    from ..observe._metrics import Metrics

__all__ = ["cached", "cmd_audit_verify", "cmd_stats", "metrics_summary", "watched"]


def cmd_audit_verify(session: Session, file: str, *, expected_head: Optional[str] = None) -> int:
    """Check ``file``'s hash chain: exit 0 when intact, 1 on tampering, 2 when unreadable."""
    from ..observe._audit import verify_audit_log

    try:
        found = verify_audit_log(file, expected_head=expected_head)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    if session.as_json:
        session.emit(
            {
                "file": file,
                "ok": found.ok,
                "lines": found.lines,
                "head": found.head,
                "bad_line": found.bad_line,
                "reason": found.reason,
            }
        )
    elif found.ok:
        lines = "1 line" if found.lines == 1 else f"{found.lines} lines"
        session.echo(f"OK: {file}: {lines}, head {found.head}")
    else:
        session.echo(f"TAMPERED: {file}: line {found.bad_line}: {found.reason}")
    return EXIT_OK if found.ok else EXIT_FAILURE


def _read_snapshot(file: str) -> Dict[str, Any]:
    try:
        with open(file, encoding="utf-8") as handle:
            doc = json.load(handle)
    except OSError as exc:
        raise UsageError(f"cannot read {file}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise UsageError(f"{file} is not JSON: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("series"), list):
        raise UsageError(f"{file} is not a metrics snapshot (no 'series'; see --metrics-out)")
    return doc


def cmd_stats(session: Session, file: str, *, prometheus: bool = False) -> int:
    """Show the metrics snapshot ``file``: a table, Prometheus text or (``--json``) JSON."""
    doc = _read_snapshot(file)
    if prometheus and session.as_json:
        raise UsageError("give --prometheus or --json, not both")
    if session.as_json:
        session.emit(doc)
    elif prometheus:
        session.write(snapshot_prometheus(doc))
    else:
        session.echo(_stats_table(doc))
    return EXIT_OK


def _seconds(summary: Optional[Mapping[str, Any]], key: str) -> str:
    value = (summary or {}).get(key)
    return "-" if value is None else f"{value:.3f} s"


def _stats_table(doc: Mapping[str, Any]) -> str:
    rows: List[List[str]] = []
    for row in doc["series"]:
        latency, first = row.get("latency_s"), row.get("time_to_first_token_s")
        rows.append(
            [
                str(row.get("model") or "-"),
                str(row.get("operation")),
                str(row.get("server")),
                str(row.get("calls", 0)),
                str(sum((row.get("errors") or {}).values())),
                _seconds(latency, "p50"),
                _seconds(latency, "p95"),
                _seconds(first, "p50"),
                _seconds(first, "p95"),
                str(row.get("input_tokens", 0)),
                str(row.get("output_tokens", 0)),
            ]
        )
    head = ["model", "operation", "server", "calls", "errors", "latency p50", "p95"]
    head += ["first token p50", "p95", "tokens in", "tokens out"]
    totals = doc.get("totals") or {}
    return (
        table(head, rows) + f"\ntotal: {totals.get('calls', 0)} calls, "
        f"{totals.get('errors', 0)} errors, {totals.get('input_tokens', 0)} tokens in, "
        f"{totals.get('output_tokens', 0)} tokens out"
    )


def snapshot_prometheus(doc: Mapping[str, Any]) -> str:
    """A snapshot in Prometheus' text format: the counters of ``Metrics.prometheus()``, and
    each histogram as a summary (a snapshot keeps percentiles, not bucket counts)."""
    from ..observe._metrics import _COUNTERS, _HISTOGRAMS, _header, _labels, _number

    series = list(doc["series"])
    keys = [(str(r["server"]), str(r.get("model") or ""), str(r["operation"])) for r in series]
    lines: List[str] = []
    for attr, name, help_text in _COUNTERS:
        _header(lines, name, help_text, "counter")
        lines += [f"{name}{_labels(k)} {r.get(attr, 0)}" for k, r in zip(keys, series)]
    _header(lines, "lmstrix_errors_total", "Failed model calls, by kind.", "counter")
    for key, row in zip(keys, series):
        for kind, n in sorted((row.get("errors") or {}).items()):
            lines.append(f"lmstrix_errors_total{_labels(key, ('kind', kind))} {n}")
    for attr, name, help_text, _ in _HISTOGRAMS:
        _header(lines, name, help_text, "summary")
        for key, row in zip(keys, series):
            summary = row.get(attr) or {}
            for q in (50, 90, 95, 99):
                value = summary.get(f"p{q}")
                if value is not None:
                    quantile = _labels(key, ("quantile", str(q / 100)))
                    lines.append(f"{name}{quantile} {_number(value)}")
            lines.append(f"{name}_sum{_labels(key)} {_number(summary.get('sum') or 0)}")
            lines.append(f"{name}_count{_labels(key)} {summary.get('count') or 0}")
    return "\n".join(lines) + "\n"


def metrics_summary(snapshot: Mapping[str, Any]) -> List[str]:
    """The end-of-run lines: the totals, then per model and operation the p50/p95 latency
    and time to first token."""
    totals = snapshot["totals"]
    lines = [
        f"metrics: {totals['calls']} calls, {totals['errors']} errors, "
        f"{totals['input_tokens']} tokens in, {totals['output_tokens']} tokens out"
    ]
    for row in snapshot["series"]:
        latency, first = row["latency_s"], row["time_to_first_token_s"]
        lines.append(
            f"metrics: {row['model'] or '-'} {row['operation']} on {row['server']}: "
            f"{row['calls']} calls; latency p50 {_seconds(latency, 'p50')}, "
            f"p95 {_seconds(latency, 'p95')}; time to first token p50 "
            f"{_seconds(first, 'p50')}, p95 {_seconds(first, 'p95')}"
        )
    return lines


@contextlib.contextmanager
def watched(session: Session, metrics_out: Optional[str]) -> Iterator[Metrics]:
    """A :class:`Metrics` on the command's clients; at the end, the summary on stderr,
    ``metrics_out`` written, and the snapshot under ``"metrics"`` in the JSON output.

    A command that failed before making any call ends with its error alone."""
    from ..observe._metrics import Metrics

    metrics = Metrics()
    session.observe(metrics)
    session.attach("metrics", metrics.snapshot)
    finished = False
    try:
        yield metrics
        finished = True
    finally:
        snapshot = metrics.snapshot()
        if finished or snapshot["totals"]["calls"]:  # not for a failure before any call
            for line in metrics_summary(snapshot):
                session.note(line)
            if metrics_out is not None:
                _write_snapshot(metrics_out, snapshot)


def _write_snapshot(path: str, snapshot: Mapping[str, Any]) -> None:
    try:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(snapshot, handle, indent=2, sort_keys=True)
            handle.write("\n")
    except OSError as exc:
        raise UsageError(f"--metrics-out: cannot write {path}: {exc.strerror or exc}") from None


@contextlib.contextmanager
def cached(session: Session, path: Optional[str]) -> Iterator[Optional[ResponseCache]]:
    """A :class:`ResponseCache` on ``path`` on the command's clients (none without a path);
    with ``-v``, its hits and misses on stderr at the end."""
    if path is None:
        yield None
        return
    from ..cache._cache import ResponseCache

    cache = ResponseCache(path)
    session.add_middleware(cache)
    try:
        yield cache
    finally:
        cache.flush()
        stats = cache.stats
        if session.verbosity > 0:
            session._err(
                f"cache: {stats.hits} hits, {stats.misses} misses, {stats.stores} stored, "
                f"{stats.skipped} passed through (not cacheable) in {path}"
            )
        cache.close()
