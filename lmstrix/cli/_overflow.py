"""The chat's overflow warning: would this prompt pass the model's tested working context?

The estimate is the pre-flight fit check of fallback chains
(:func:`lmstrix.registry._fit.fit_problem`): the characters of every message, with the
characters per token the context search calibrated for that model on that server (the
registry keeps both), plus room for the answer. A model without a tested record gets no
warning (``-v`` says so once).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Mapping, Optional, Sequence, Set

from ._session import Session

if TYPE_CHECKING:
    from ..registry._records import ModelRecord

__all__ = ["OverflowCheck"]


class OverflowCheck:
    """Warns on stderr before a prompt would overflow a model's tested working context."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._noted: Set[str] = set()

    def record(self, key: str) -> Optional[ModelRecord]:
        """The tested record of ``key`` on the run's first server that has one, or None."""
        from ..errors import RegistryError

        try:
            registry = self.session.registry()
            for server in self.session.servers:
                found = registry.get(key, server=server)
                if found is not None and found.working_context:
                    return found
        except RegistryError as exc:  # a damaged registry must not stop the chat
            self._note_once(key, f"no overflow check for {key}: {exc}")
            return None
        self._note_once(
            key,
            f"no tested working context for {key} in the registry: no overflow warning "
            f"(lmstrix test {key} measures it)",
        )
        return None

    def warn(
        self,
        key: str,
        messages: Sequence[Mapping[str, Any]],
        max_tokens: Optional[int],
        advice: str = "",
    ) -> Optional[str]:
        """Warn (and return the reason) when ``messages`` would not fit ``key``'s context."""
        from ..registry._fit import fit_problem

        record = self.record(key)
        problem = fit_problem(record, messages, max_tokens)
        if problem is None:
            return None
        tail = f"; {advice}" if advice else ""
        self.session.note(f"warning: {key}: {problem}; it may answer wrongly or fail{tail}")
        return problem

    def _note_once(self, key: str, message: str) -> None:
        if key not in self._noted and self.session.verbosity > 0:
            self._noted.add(key)
            self.session.note(message)
