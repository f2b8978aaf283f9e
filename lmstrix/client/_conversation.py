"""`Conversation`: a chat kept on the server by LM Studio's native chat (0.4+).

Each turn is stored (``store``) and the next one names it (``previous_response_id``),
so only the new text goes over the wire; the server holds the history.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Optional

from ..errors import APIError, ConfigError

if TYPE_CHECKING:
    from ._native_types import NativeChatResult

__all__ = ["Conversation"]

Respond = Callable[..., "NativeChatResult"]


class Conversation:
    """A conversation with one model, continued on the server turn by turn.

    Made by :meth:`lmstrix.Client.conversation`. ``options`` (``system_prompt``,
    ``temperature``, ...) go with every turn. :meth:`fork` branches: both conversations
    go on from the same answer. Thread-safe; turns of one conversation run one at a time.
    """

    def __init__(
        self,
        respond: Respond,
        model: str,
        *,
        response_id: Optional[str] = None,
        **options: Any,
    ) -> None:
        if options.get("store") is False:
            raise ConfigError("a conversation stores its turns; store=False cannot continue it")
        if "previous_response_id" in options:
            raise ConfigError("give a conversation's starting point as response_id=")
        self._respond = respond
        self.model = model
        self.options: Dict[str, Any] = {k: v for k, v in options.items() if k != "store"}
        self._lock = threading.Lock()
        self._response_id = response_id
        self.turns = 0

    def __repr__(self) -> str:
        return f"<Conversation model={self.model!r} response_id={self._response_id!r}>"

    @property
    def response_id(self) -> Optional[str]:
        """The id of the last stored answer (``None`` before the first turn)."""
        return self._response_id

    def say(self, text: Any, **options: Any) -> NativeChatResult:
        """Send ``text`` (or a list of input items) as the next turn; the answer.

        ``options`` override the conversation's for this turn only.

        Raises:
            APIError: the server did not store the answer (no ``response_id``), so the
                conversation could not go on.
        """
        with self._lock:
            merged = {**self.options, **options, "store": True}
            if self._response_id is not None:
                merged["previous_response_id"] = self._response_id
            result = self._respond(self.model, text, **merged)
            if result.response_id is None:
                raise APIError(
                    f"the server did not store the answer of {self.model!r} (no response_id), "
                    "so the conversation cannot go on; its native chat may not support stored "
                    "conversations"
                )
            self._response_id = result.response_id
            self.turns += 1
            return result

    def reset(self) -> None:
        """Forget the history: the next :meth:`say` starts a new conversation."""
        with self._lock:
            self._response_id = None
            self.turns = 0

    def fork(self) -> Conversation:
        """A new conversation going on from the same answer (the server allows branching)."""
        with self._lock:
            twin = Conversation(
                self._respond, self.model, response_id=self._response_id, **self.options
            )
            twin.turns = self.turns
            return twin
