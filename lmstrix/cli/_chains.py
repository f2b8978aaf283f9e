"""Fallback chains on the command line: ``--model A --model B``, and who answered.

The chain itself is the library's (``chat(["A", "B"], ...)`` on a Client or a Pool,
with the registry for the fit check); this module only collects the keys and reports,
through an observer of the calls, which model (and server) answered when it was not
the first.
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Tuple, Union

from ._session import Session, UsageError

if TYPE_CHECKING:
    from ..client._calls import CallEvent

__all__ = ["Answers", "chain_client", "model_keys"]


def model_keys(models: Union[str, Sequence[str], None]) -> List[str]:
    """The model keys given (``--model`` repeated: a fallback chain), each once, in order."""
    given = [models] if isinstance(models, str) else list(models or [])
    keys = list(dict.fromkeys(k for k in given if k))
    if not keys:
        raise UsageError("name a model (-m/--model; repeat it for a fallback chain)")
    return keys


class Answers:
    """An observer counting the calls that answered, by ``(model, server)``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[Tuple[str, str]] = Counter()

    def __call__(self, event: CallEvent) -> None:
        if event.ok and event.operation in ("chat", "completion") and event.model:
            with self._lock:
                self.counts[(event.model, event.server)] += 1

    def last(self) -> Optional[Tuple[str, str]]:
        """The ``(model, server)`` of an answer (the only one, for one call)."""
        with self._lock:
            return next(iter(self.counts), None)

    def by_model(self) -> Dict[str, int]:
        """Answers per model, all servers together."""
        totals: Dict[str, int] = {}
        with self._lock:
            for (model, _), count in self.counts.items():
                totals[model] = totals.get(model, 0) + count
        return totals


def chain_client(session: Session, keys: Sequence[str], answers: Answers) -> Any:
    """The Client or Pool for ``keys``: with the registry when they are a chain."""
    options: Dict[str, Any] = {"observers": [answers]}
    if len(keys) > 1:
        options["registry"] = session.registry()
    return session.chat_client(**options)


def choice(keys: Sequence[str]) -> Union[str, List[str]]:
    """What the library takes: one key, or the list of a chain."""
    return keys[0] if len(keys) == 1 else list(keys)
