"""Context searches over several servers at once: one search at a time per server.

Loads on one machine compete for its memory, so each server's models are searched one
after another; different servers are different machines, so they are searched at the
same time, each in its own thread. Records stay keyed by server in the registry.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Sequence

from .._threads import map_in_threads
from ._runner import ContextReport, find_context_limit

if TYPE_CHECKING:
    from ..client import Client
    from ..registry import Registry

__all__ = ["ServerSearch", "find_context_limits"]


class ServerSearch:
    """What one server's thread did: its reports, and the error that stopped it, if any."""

    def __init__(self, server: str) -> None:
        self.server = server
        self.reports: List[ContextReport] = []
        self.error: Optional[BaseException] = None


def find_context_limits(
    clients: Iterable[Client],
    models: Optional[Sequence[str]] = None,
    *,
    registry: Optional[Registry] = None,
    skip_tested: bool = False,
    on_report: Optional[Callable[[ContextReport], None]] = None,
    **options: Any,
) -> Dict[str, ServerSearch]:
    """Search ``models`` (default: every chat model each server offers) on every server.

    ``clients`` is a list of clients or a :class:`~lmstrix.Pool` (which iterates its
    servers' clients). Servers run in parallel, one search at a time on each. A model a
    server does not offer is left out there. With ``skip_tested``, models whose registry
    record on that server is ``done`` are skipped. ``options`` go to
    :func:`find_context_limit`; ``on_report`` is called (from the servers' threads, one
    at a time) after each search. Returns each server's :class:`ServerSearch`.
    """
    lock = threading.Lock()

    def one_server(client: Client) -> ServerSearch:
        result = ServerSearch(client.base_url)
        try:
            offered = [m for m in client.list_models() if m.type != "embedding"]
            keys = [m.key for m in offered]
            wanted = keys if models is None else [k for k in models if k in keys]
            for key in wanted:
                if skip_tested and registry is not None:
                    record = registry.get(key, server=client.base_url)
                    if record is not None and record.status == "done":
                        continue
                report = find_context_limit(client, key, registry=registry, **options)
                result.reports.append(report)
                if on_report is not None:
                    with lock:
                        on_report(report)
        except Exception as exc:  # the other servers go on; the caller sees it per server
            result.error = exc
        return result

    searches = map_in_threads(one_server, list(clients), name="lmstrix-search")
    return {search.server: search for search in searches}
