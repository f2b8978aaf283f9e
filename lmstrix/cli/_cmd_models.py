"""The commands about what is known of the models: ``doctor``, ``scan``, ``list``, ``show``."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from ._output import EXIT_FAILURE, EXIT_OK, table
from ._session import CliError, Session, UsageError

if TYPE_CHECKING:
    from ..registry._records import ModelRecord
    from ..types import ModelInfo

__all__ = ["cmd_doctor", "cmd_list", "cmd_scan", "cmd_show", "record_row"]

_API_NAMES = {
    "v1": "LM Studio 0.4+ (/api/v1)",
    "v0": "LM Studio 0.3 (/api/v0)",
    "openai": "OpenAI-compatible (/v1 only)",
}


def record_row(
    key: str, info: Optional[ModelInfo], record: Optional[ModelRecord]
) -> Dict[str, Any]:
    """One model as ``list``/``ps`` show it: the server's view joined with the registry's."""
    declared = info.max_context_length if info is not None else None
    if declared is None and record is not None:
        declared = record.declared_context
    mtype = info.type if info is not None else None
    return {
        "key": key,
        "type": mtype if mtype is not None else (record.type if record else None),
        "declared_context": declared,
        "loadable_context": record.loadable_context if record else None,
        "working_context": record.working_context if record else None,
        "status": record.status if record else "untested",
        "stale": bool(record and record.stale),
        "stale_reason": (record.stale_reason or None) if record else None,
        "tested_at": record.tested_at if record else None,
        "on_server": info is not None,
        "loaded": bool(info is not None and info.is_loaded),
    }


def _check_server(client: Any, token_set: bool) -> Dict[str, Any]:
    """One server's part of ``doctor``: reachable, API (its version), auth, models, loaded."""
    from ..errors import APIError, AuthenticationError

    server: Dict[str, Any] = {
        "url": client.base_url,
        "reachable": False,
        "api": None,
        "version": None,
        "auth": "unknown",
        "token_set": token_set,
        "models": None,
        "loaded": None,
        "error": None,
    }
    try:
        models = client.list_models()
        server.update(
            reachable=True,
            api=client.server_api,
            version=_API_NAMES.get(client.server_api, client.server_api),
            auth="ok" if token_set else "not required",
            models=len(models),
            loaded=sum(len(m.loaded_instances) for m in models),
        )
    except AuthenticationError as exc:
        server.update(reachable=True, auth="failed", error=str(exc))
    except APIError as exc:
        server["error"] = str(exc)
    server["ok"] = bool(server["reachable"] and server["auth"] != "failed")
    return server


def cmd_doctor(session: Session) -> int:
    """Check the Python, every server (reachable, API, auth, models) and the registry.

    Exit 1 when any server or the registry fails; over several servers, one report
    per server.
    """
    import platform
    import sys

    from .. import __version__
    from ..config import resolve_token
    from ..errors import LMStrixError

    token_set = resolve_token(session.token) is not None
    servers = [_check_server(client, token_set) for client in session.clients()]
    registry = session.registry()
    reg: Dict[str, Any] = {
        "path": str(registry.path),
        "exists": registry.path.exists(),
        "ok": False,
        "records": None,
        "error": None,
    }
    try:
        counts = [len(registry.records(server=s["url"])) for s in servers]
        reg["records"] = sum(counts)
        reg["ok"] = True
        for server, count in zip(servers, counts):
            server["records"] = count
    except LMStrixError as exc:
        reg["error"] = str(exc)

    ok = bool(all(s["ok"] for s in servers) and reg["ok"])
    report: Dict[str, Any] = {
        "ok": ok,
        "lmstrix": __version__,
        "python": platform.python_version(),
        "executable": sys.executable,
        "registry": reg,
    }
    several = session.several
    for server in servers:
        if not several:
            del server["ok"]
            server.pop("records", None)
    if several:
        report["servers"] = servers
    else:
        report["server"] = servers[0]
    if session.as_json:
        session.emit(report)
        return EXIT_OK if ok else EXIT_FAILURE

    def mark(good: bool) -> str:
        return "ok  " if good else "FAIL"

    session.echo(f"ok    lmstrix {__version__}, Python {report['python']} ({sys.executable})")
    how = "token set" if token_set else "no token set"
    for server in servers:
        url = server["url"]
        if server["reachable"] and server["auth"] != "failed":
            session.echo(
                f"ok    server {url}: {server['version']}, {server['models']} models, "
                f"{server['loaded']} loaded"
            )
        else:
            session.echo(f"FAIL  server {url}: {server['error']}")
        auth = server["auth"]
        where = f" {url}" if several else ""
        session.echo(f"{mark(auth != 'failed')}  auth{where}: {auth} ({how})")
    where = "" if reg["exists"] else " (not created yet)"
    if reg["ok"]:
        urls = ", ".join(s["url"] for s in servers)
        session.echo(f"ok    registry {reg['path']}{where}: {reg['records']} records for {urls}")
    else:
        session.echo(f"FAIL  registry {reg['path']}: {reg['error']}")
    return EXIT_OK if ok else EXIT_FAILURE


def cmd_scan(session: Session) -> int:
    """Bring the registry in line with each server's models; test results are kept.

    Over several servers each one is scanned on its own (its records are its own); one
    that cannot be reached is reported (exit 1) and the others are scanned.
    """
    from ..errors import APIError

    docs: List[Dict[str, Any]] = []
    failed = False
    for client in session.clients():
        try:
            result = session.registry().sync(client)
        except APIError as exc:
            if not session.several:
                raise
            session.error(f"{client.base_url}: {exc}")
            docs.append({"server": client.base_url, "error": str(exc)})
            failed = True
            continue
        docs.append(
            {
                "server": result.server,
                "models": len(session.registry().records(server=result.server)),
                "added": result.added,
                "updated": result.updated,
                "vanished": result.vanished,
                "returned": result.returned,
            }
        )
    code = EXIT_FAILURE if failed else EXIT_OK
    if session.as_json:
        session.emit({"servers": docs} if session.several else docs[0])
        return code
    for doc in docs:
        if "error" in doc:
            continue
        session.echo(f"scanned {doc['server']}: {doc['models']} models in the registry")
        for name in ("added", "updated", "vanished", "returned"):
            if doc[name]:
                session.echo(f"  {name} ({len(doc[name])}): {', '.join(doc[name])}")
        if not (doc["added"] or doc["updated"] or doc["vanished"]):
            session.echo("  nothing changed")
    return code


def cmd_list(session: Session) -> int:
    """The server's models joined with the registry: declared, loadable, working, status.

    When the server cannot be reached, the registry's records of it are listed alone
    (``server_reached: false`` in JSON, a warning on stderr), exit 0. Records whose
    fingerprint no longer matches the server are marked stale (and stay so). Over
    several servers, each row names its server (a model's limits belong to a machine)
    and each server is listed, or listed from the registry, on its own.
    """
    several = session.several
    rows: List[Dict[str, Any]] = []
    servers: List[Dict[str, Any]] = []
    for client in session.clients():
        found, reached = _server_rows(session, client)
        servers.append(reached)
        if several:
            found = [{"server": client.base_url, **row} for row in found]
        rows += found
    if session.as_json:
        doc: Dict[str, Any] = {"servers": servers, "models": rows}
        if not several:
            doc = {**servers[0], "models": rows}
        session.emit(doc)
        return EXIT_OK
    if not rows:
        for reached in servers:
            where = (
                "lists no models"
                if reached["server_reached"]
                else ("has no records in the registry")
            )
            session.echo(f"the server at {reached['server']} {where}")
        return EXIT_OK
    headers = ["model", "declared", "loadable", "working", "status", "loaded"]
    cells = [
        [
            r["key"],
            r["declared_context"],
            r["loadable_context"],
            r["working_context"],
            _status(r),
            "?" if r["loaded"] is None else "yes" if r["loaded"] else "",
        ]
        for r in rows
    ]
    if several:
        headers.insert(0, "server")
        cells = [[r["server"], *row] for r, row in zip(rows, cells)]
    session.echo(table(headers, cells))
    if any(r["stale"] for r in rows):
        session.note("stale: the model changed since its test; `lmstrix test --recheck` checks it")
    return EXIT_OK


def _server_rows(session: Session, client: Any) -> Tuple[List[Dict[str, Any]], Dict[str, Any]]:
    """One server's rows, and whether it was reached (``server``, ``server_reached``...)."""
    from ..context._fingerprints import mark_stale
    from ..errors import APIConnectionError

    url = client.base_url
    registry = session.registry()
    reached: Dict[str, Any] = {"server": url, "server_reached": True}
    try:
        infos: Optional[List[ModelInfo]] = client.list_models()
        mark_stale(client, registry)
    except APIConnectionError as exc:
        infos = None
        reached.update(server_reached=False, server_error=str(exc))
        where = f"{url} was" if session.several else "the server was"
        session.note(f"warning: {where} not reached; listing the registry only: {exc}")
    records = {r.key: r for r in registry.records(server=url)}
    if infos is None:
        rows = [record_row(key, None, rec) for key, rec in sorted(records.items())]
        for row in rows:
            row["on_server"] = row["loaded"] = None  # unknown: the server was not reached
        return rows, reached
    rows = [record_row(info.key, info, records.pop(info.key, None)) for info in infos]
    rows += [record_row(key, None, rec) for key, rec in sorted(records.items())]
    return rows, reached


def _status(row: Dict[str, Any]) -> str:
    status = str(row["status"])
    if row["stale"]:
        status += " (stale)"
    if row["on_server"] is False:
        status += " (gone)"
    return status


def cmd_show(session: Session, model: str, plot: Optional[str] = None) -> int:
    """One model's record with its probe history (from the registry; else the server's view);
    ``plot``: also draw its probes and speed profile to that file."""
    from ..errors import ModelNotFoundError
    from ..registry._records import ModelRecord
    from ..registry._speed import speed_summary

    session.one_server()
    record = session.registry().get(model)
    if record is None:
        try:
            info = session.client().get_model(model)
        except ModelNotFoundError as exc:
            raise session.unknown_model(model) from exc
        record = ModelRecord.from_model_info(info, session.base_url)
    doc = record.to_dict()
    doc["loads"] = sum(1 for p in record.probes if p.kind == "load")
    doc["speed_profile"] = speed_summary(record.speed)
    if plot is not None:
        _plot(session, doc, plot)
    if session.as_json:
        session.emit(doc)
        return EXIT_OK
    fields = [
        ("model", record.key),
        ("server", record.server),
        ("type", record.type),
        ("architecture", record.architecture),
        ("quantization", record.quantization),
        ("declared context", record.declared_context),
        ("loadable context", record.loadable_context),
        ("working context", record.working_context),
        ("status", record.status + (" (no longer on the server)" if record.vanished else "")),
        ("tested", _when(record.tested_at)),
        ("chars per token", record.chars_per_token),
    ]
    if record.failure_reason:
        fields.append(("reason", record.failure_reason))
    if record.stale:
        fields.append(("stale", record.stale_reason or "yes"))
    if record.recheck:
        fields.append(("rechecked", f"{record.recheck} {_when(record.rechecked_at) or ''}"))
    if record.fingerprint is not None:
        fields.append(("measured with", _fingerprint(record.fingerprint)))
    for name, value in fields:
        shown = "-" if value is None else f"{value:,}" if isinstance(value, int) else value
        session.echo(f"{name + ':':<18}{shown}")
    speed = doc["speed_profile"]
    if speed:
        session.echo("\nspeed by prompt size (tokens/s):")
        session.echo(table(["prompt", "prefill", "decode", "source"], _speed_rows(speed)))
    if record.probes:
        session.echo(f"\nprobe history ({len(record.probes)} steps, {doc['loads']} loads):")
        session.echo(
            table(["#", "kind", "size", "result", "applied", "tokens", "s"], _probes(record))
        )
    else:
        session.echo("\nnot tested yet: run `lmstrix test " + record.key + "`")
    return EXIT_OK


def _fingerprint(fingerprint: Any) -> str:
    """What a record's limits were measured with, in one line."""
    size = fingerprint.size_bytes
    shown = [
        ("api", fingerprint.api),
        ("server", fingerprint.server_version),
        ("format", fingerprint.format),
        ("quantization", fingerprint.quantization),
        ("size", None if size is None else f"{size / 1e9:.2f} GB"),
        ("parallel", fingerprint.parallel),
        ("also loaded", ", ".join(fingerprint.neighbours) or None),
    ]
    return "; ".join(f"{name} {value}" for name, value in shown if value is not None) or "-"


def _speed_rows(summary: List[Dict[str, Any]]) -> List[List[Any]]:
    def rate(value: Optional[float], ratio: Optional[float]) -> str:
        if value is None:
            return "-"
        return f"{value:,.0f}" + ("" if ratio is None else f" ({ratio:.2f}x)")

    return [
        [
            row["prompt_tokens"],
            rate(row["prefill_tps"], row.get("prefill_ratio")),
            rate(row["decode_tps"], row.get("decode_ratio")),
            row["source"],
        ]
        for row in summary
    ]


def _probes(record: ModelRecord) -> List[List[Any]]:
    rows: List[List[Any]] = []
    for n, p in enumerate(record.probes, 1):
        result = "pending" if p.ok is None else "ok" if p.ok else str(p.failure)
        seconds = None if p.seconds is None else f"{p.seconds:.2f}"
        rows.append([n, p.kind, p.size, result, p.applied_context, p.prompt_tokens, seconds])
    return rows


def _when(stamp: Optional[float]) -> Optional[str]:
    if stamp is None:
        return None
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp))


def _plot(session: Session, doc: Dict[str, Any], path: str) -> None:
    """Draw ``doc``'s probes and speed profile to ``path`` (``lmstrix.integrations.plot``,
    imported by name: the [plot] extra is needed only here)."""
    import importlib

    try:
        plotting = importlib.import_module("lmstrix.integrations.plot")
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install 'lmstrix[plot]'") from None
    try:
        plotting.plot_limits(doc, path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    except OSError as exc:
        raise CliError(f"cannot write the plot {path}: {exc.strerror or exc}") from None
    session.note(f"plot: {path}")
