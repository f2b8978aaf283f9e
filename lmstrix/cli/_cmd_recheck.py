"""``lmstrix test --recheck``: re-confirm recorded limits cheaply and flag drift."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence

from ._options import given
from ._output import EXIT_FAILURE, EXIT_OK, table
from ._session import Session

if TYPE_CHECKING:
    from ..types import ModelInfo

__all__ = ["cmd_recheck"]


def cmd_recheck(
    session: Session,
    keys: Sequence[str],
    infos: Sequence[ModelInfo],
    *,
    all_models: bool,
    trials: Optional[int],
) -> int:
    """Recheck ``keys`` (or, with ``all_models``, every ``done`` record of the server).

    One load at the recorded loadable limit and a few needles at the working limit per
    model: ``confirmed`` or ``drifted`` (the record is marked stale). Exit 0 when every
    model was confirmed, else 1. The library logs a warning (shown on stderr) when other
    models are loaded.
    """
    from ..context._recheck import recheck_limits
    from ..errors import ContextSearchError

    client = session.client()
    registry = session.registry()
    on_server = {info.key for info in infos}
    if all_models:
        keys = [r.key for r in registry.records() if r.status == "done" and r.key in on_server]
    rows: List[Dict[str, Any]] = []
    for index, key in enumerate(keys, 1):
        where = f"[{index}/{len(keys)}] {key}"
        session.progress(f"{where}: rechecking its recorded limits...")
        try:
            result = recheck_limits(client, key, registry=registry, **given(trials=trials))
            doc = result.to_dict()
        except ContextSearchError as exc:  # not tested (done) yet: nothing to recheck
            doc = {"key": key, "outcome": "untested", "reason": str(exc), "stale": False}
        session.note(f"{where}: {doc['outcome']}" + (f": {doc['reason']}" if doc["reason"] else ""))
        rows.append(doc)
    if session.as_json:
        session.emit({"server": client.base_url, "models": rows})
    elif not rows:
        session.echo(f"no tested model of {client.base_url} to recheck")
    else:
        session.echo(
            table(
                ["model", "loadable", "working", "recheck", "reason"],
                [
                    [
                        r["key"],
                        r.get("loadable_context"),
                        r.get("working_context"),
                        r["outcome"],
                        r["reason"] or "",
                    ]
                    for r in rows
                ],
            )
        )
    return EXIT_OK if all(r["outcome"] == "confirmed" for r in rows) else EXIT_FAILURE
