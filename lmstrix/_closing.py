"""``with obj:`` closes ``obj``: the context-manager half of everything that has ``close()``."""

from __future__ import annotations

from typing import TypeVar

__all__ = ["ClosedByWith"]

C = TypeVar("C", bound="ClosedByWith")


class ClosedByWith:
    """A base for classes with a ``close()``: ``with`` gives the object and closes it at
    the end, whatever happened inside (exceptions are not swallowed)."""

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self: C) -> C:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
