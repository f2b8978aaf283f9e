"""The commands about loaded instances: ``load``, ``unload``, ``ps``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional

from ._output import EXIT_FAILURE, EXIT_OK, table
from ._session import CliError, Session, UsageError

if TYPE_CHECKING:
    from ..types import ModelInfo

__all__ = ["cmd_load", "cmd_ps", "cmd_unload"]


def _context_size(session: Session, model: str, context: Optional[str]) -> Optional[int]:
    """``--context``: a number of tokens, ``tested``, or none.

    ``tested`` is the registry's loadable context: the instance then holds a prompt of
    the working size (what a prompt may use) and still has room for its answer.
    """
    if context is None:
        return None
    if context.strip().lower() == "tested":
        record = session.registry().get(model)
        if record is None or not record.loadable_context:
            session.client().get_model(model)  # an unknown model says so, with close matches
            raise CliError(
                f"{model} has no tested loadable context yet on {session.base_url}; "
                f"run `lmstrix test {model}` first"
            )
        if record.stale:
            session.note(f"warning: {model}'s tested limits may be stale: {record.stale_reason}")
        return record.loadable_context
    try:
        size = int(context.replace(",", "").replace("_", ""))
    except ValueError:
        raise UsageError(
            f"--context takes a number of tokens or 'tested', not {context!r}"
        ) from None
    if size < 1:
        raise UsageError(f"--context must be at least 1, not {size}")
    return size


def cmd_load(
    session: Session,
    model: str,
    *,
    context: Optional[str] = None,
    ttl: Optional[int] = None,
    estimate: bool = False,
) -> int:
    """Load ``model`` (LM Studio 0.4+) and show the context asked for and the one applied.

    ``ttl``: idle seconds before the server unloads it. ``estimate``: load nothing, show
    LM Studio's memory estimate (through the ``lms`` command) instead.
    """
    from ..errors import ModelNotFoundError

    size = _context_size(session, model, context)
    if estimate:
        from ._cmd_manage import show_estimate

        return show_estimate(session, model, size)
    if ttl is not None and ttl < 1:
        raise UsageError(f"--ttl takes a number of seconds of at least 1, not {ttl}")
    client = session.client()
    try:
        instance = client.load(model, context_length=size, **({} if ttl is None else {"ttl": ttl}))
    except ModelNotFoundError as exc:
        raise session.unknown_model(model, exc) from exc
    doc = {
        "key": model,
        "id": instance.id,
        "requested_context": size,
        "applied_context": instance.context_length,
        "auto_fitted": instance.auto_fitted,
        "parallel": instance.parallel,
        "load_time_s": None if instance.load_time_s is None else round(instance.load_time_s, 3),
        "ttl": ttl,
    }
    if session.as_json:
        session.emit(doc)
        return EXIT_OK
    asked = "the default context" if size is None else f"{size:,} tokens"
    applied = "unknown" if instance.context_length is None else f"{instance.context_length:,}"
    fit = " (auto-fitted by the server)" if instance.auto_fitted else ""
    session.echo(
        f"loaded {model} as {instance.id}: requested {asked}, applied {applied} tokens{fit}"
    )
    return EXIT_OK


def cmd_unload(
    session: Session, model: Optional[str] = None, *, all_instances: bool = False
) -> int:
    """Unload every instance of ``model`` (a model key or an instance id), or all of them."""
    if bool(model) == all_instances:
        raise UsageError("name a model or instance to unload, or give --all (not both)")
    client = session.client()
    instances = client.loaded_instances()
    if all_instances:
        targets = instances
    else:
        targets = [i for i in instances if model in (i.id, i.model_key)]
        if not targets:
            known = [m.key for m in client.list_models()]
            if model not in known:
                raise client.model_not_found(str(model), known + [i.id for i in instances])
            raise CliError(
                f"{model} is not loaded on {client.base_url} (`lmstrix ps` lists what is)"
            )
    for instance in targets:
        client.unload(instance.id)
        session.note(f"unloaded {instance.id}")
    if session.as_json:
        session.emit({"server": client.base_url, "unloaded": [i.id for i in targets]})
    elif not targets:
        session.echo("nothing was loaded")
    else:
        session.echo(f"unloaded {len(targets)} instance{'s' if len(targets) != 1 else ''}")
    return EXIT_OK


def cmd_ps(session: Session) -> int:
    """The loaded instances: context, parallel slots, and what the registry knows.

    Over several servers each row names its server, and a server that cannot be
    reached is reported on its own (exit 1) while the others are listed.
    """
    from ..errors import APIError

    several = session.several
    rows: List[Dict[str, Any]] = []
    servers: List[Dict[str, Any]] = []
    for client in session.clients():
        try:
            infos = client.list_models()
        except APIError as exc:
            if not several:
                raise
            servers.append({"server": client.base_url, "reached": False, "error": str(exc)})
            session.error(f"{client.base_url}: {exc}")
            continue
        servers.append({"server": client.base_url, "reached": True, "error": None})
        rows += _instance_rows(session, client.base_url, infos, several)
    failed = any(not s["reached"] for s in servers)
    code = EXIT_FAILURE if failed else EXIT_OK
    if session.as_json:
        doc: Dict[str, Any] = {"server": servers[0]["server"], "instances": rows}
        if several:
            doc = {"servers": servers, "instances": rows}
        session.emit(doc)
        return code
    if not rows:
        where = ", ".join(s["server"] for s in servers if s["reached"]) or "any server"
        session.echo(f"no model is loaded on {where}")
        return code
    headers = ["instance", "model", "context", "parallel", "working (tested)"]
    cells = [
        [r["id"], r["key"], r["context_length"], r["parallel"], r["working_context"]] for r in rows
    ]
    if several:
        headers.insert(0, "server")
        cells = [[r["server"], *row] for r, row in zip(rows, cells)]
    session.echo(table(headers, cells))
    return code


def _instance_rows(
    session: Session, server: str, infos: List[ModelInfo], several: bool
) -> List[Dict[str, Any]]:
    """One server's loaded instances joined with its registry records."""
    records = {r.key: r for r in session.registry().records(server=server)}
    rows: List[Dict[str, Any]] = []
    for info in infos:
        record = records.get(info.key)
        for inst in info.loaded_instances:
            row: Dict[str, Any] = {"server": server} if several else {}
            row.update(
                id=inst.id,
                key=info.key,
                context_length=inst.context_length,
                parallel=inst.parallel,
                declared_context=info.max_context_length,
                loadable_context=record.loadable_context if record else None,
                working_context=record.working_context if record else None,
                status=record.status if record else "untested",
            )
            rows.append(row)
    return rows
