"""A context search seen by the client's observers, and its bounds checked up front.

The search is one operation made of loads and chats: :func:`observed_search` reports it
as one :class:`~lmstrix.CallEvent` (operation ``context_search``, its settings as
parameters, its findings as ``result``) after telling observers with an
``operation_started`` method that it began (OpenTelemetry opens the span that the
spans of its loads and chats nest in).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional

from ..client._calls import run_operation
from ..errors import ContextSearchError

if TYPE_CHECKING:
    from ..client._client import Client
    from ._report import ContextReport

__all__ = ["check_bounds", "observed_search"]


def check_bounds(
    resolution: int, trials: int, min_context: int, max_context: Optional[int]
) -> None:
    """Refuse search settings that cannot work.

    Raises:
        ContextSearchError: a setting below 1, or ``min_context`` above ``max_context``.
    """
    if resolution < 1 or trials < 1 or min_context < 1:
        raise ContextSearchError("resolution, trials and min_context must be at least 1")
    if max_context is not None and max_context < 1:
        raise ContextSearchError("max_context must be at least 1")
    if max_context is not None and min_context > max_context:
        raise ContextSearchError(
            f"min_context ({min_context}) is above max_context ({max_context})"
        )


def observed_search(
    client: Client, model: str, settings: Mapping[str, Any], run: Callable[[], ContextReport]
) -> ContextReport:
    """Run a search (``run``) as one observed operation of ``client``."""
    observers = getattr(client, "observers", ())
    if not observers:
        return run()
    return run_operation(
        observers, (client.base_url, "context_search", model, settings), run, _findings
    )


def _findings(report: ContextReport) -> Dict[str, Any]:
    return {
        "status": report.status,
        "declared_context": report.declared_context,
        "loadable_context": report.loadable_context,
        "working_context": report.working_context,
        "loads": report.loads,
        "requests": report.requests,
        "prompt_tokens": report.prompt_tokens,
    }
