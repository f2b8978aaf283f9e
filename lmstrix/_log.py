"""Module loggers that leave :mod:`logging` unimported until the application uses it.

``log = logger(__name__)`` stands for ``logging.getLogger(__name__)`` with a
``NullHandler`` added (a library's loggers say nothing until the application configures
logging). Importing :mod:`logging` takes several milliseconds, more than
``lmstrix.Client``'s own modules, and many scripts never use it.

While no code in the process has imported :mod:`logging`, nothing can have configured
it: there is no handler but ours, a ``NullHandler``, so a record would go nowhere, and
``log.debug(...)`` (``info``, ``warning``, ``error``, ``exception``, ``critical``,
``log``) returns at once without making one. Once :mod:`logging` is imported, by the
application or anyone, the next call makes the real logger and hands out its own bound
method, so records, levels, filters and the caller's file and line are logging's own.
Any other attribute (``log.level``, ``log.handlers``...) makes the logger at once.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

if TYPE_CHECKING:
    from logging import Logger

__all__ = ["logger"]


def _ignore(*args: Any, **kwargs: Any) -> None:
    """A log call made while :mod:`logging` is not imported: no handler could see it."""


def _method(name: str) -> Any:
    """The property ``name`` of a lazy logger: the real logger's method, or
    :func:`_ignore` while :mod:`logging` is not imported."""

    def get(self: _LazyLogger) -> Callable[..., None]:
        found = self._logger
        if found is None:
            if "logging" not in sys.modules:
                return _ignore
            found = self._made()
        method: Callable[..., None] = getattr(found, name)
        return method

    return property(get)


class _LazyLogger:
    debug = _method("debug")
    info = _method("info")
    warning = _method("warning")
    error = _method("error")
    exception = _method("exception")
    critical = _method("critical")
    log = _method("log")

    def __init__(self, name: str) -> None:
        self._name = name
        self._logger: Optional[Logger] = None

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._made(), attribute)

    def __repr__(self) -> str:
        return f"<logger {self._name} (made on first use)>"

    def _made(self) -> Logger:
        found = self._logger
        if found is None:
            import logging

            found = logging.getLogger(self._name)
            # Loggers of one name share one handler. (Two threads logging first at the
            # same moment may add two: a second NullHandler does nothing either.)
            if not any(type(handler) is logging.NullHandler for handler in found.handlers):
                found.addHandler(logging.NullHandler())
            self._logger = found
        return found


def logger(name: str) -> Logger:
    """The logger ``name``, made (and given a ``NullHandler``) when first needed."""
    return cast("Logger", _LazyLogger(name))
