"""``lmstrix config set|get|unset|list``: the user's settings (``default-model``).

The settings live in ``settings.json`` beside the registry (see
:class:`~lmstrix.registry.UserSettings`); an unknown setting name is bad usage (exit 2)
and the message lists the known ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

from ._output import EXIT_FAILURE, EXIT_OK, table
from ._session import Session

if TYPE_CHECKING:
    from ..registry._settings import UserSettings

__all__ = [
    "cmd_config_get",
    "cmd_config_list",
    "cmd_config_set",
    "cmd_config_unset",
    "default_model",
    "user_settings",
]


def user_settings(session: Session) -> UserSettings:
    """The settings of this run: beside ``--registry`` if given, else the default registry."""
    from ..registry._settings import UserSettings

    return UserSettings.beside(session.registry_path)


def default_model(session: Session) -> Optional[str]:
    """The ``default-model`` setting, or ``None``."""
    return user_settings(session).get("default-model")


def cmd_config_set(session: Session, name: str, value: str) -> int:
    """Set ``name`` to ``value``."""
    settings = user_settings(session)
    settings.set(name, value)
    stored = settings.get(name)
    if session.as_json:
        session.emit({"name": name, "value": stored, "file": str(settings.path)})
    else:
        session.echo(f"{name} = {stored}")
        session.note(f"saved in {settings.path}")
    return EXIT_OK


def cmd_config_get(session: Session, name: str) -> int:
    """Print the value of ``name``; exit 1 when it is not set."""
    settings = user_settings(session)
    value = settings.get(name)
    if session.as_json:
        session.emit({"name": name, "value": value, "file": str(settings.path)})
    elif value is not None:
        session.echo(value)
    else:
        session.error(f"{name} is not set (lmstrix config set {name} VALUE sets it)")
    return EXIT_OK if value is not None else EXIT_FAILURE


def cmd_config_unset(session: Session, name: str) -> int:
    """Forget ``name`` (not an error when it was not set)."""
    settings = user_settings(session)
    was_set = settings.unset(name)
    if session.as_json:
        session.emit({"name": name, "was_set": was_set, "file": str(settings.path)})
    else:
        session.echo(f"{name} unset" if was_set else f"{name} was not set")
    return EXIT_OK


def cmd_config_list(session: Session) -> int:
    """Every known setting, its value (``-`` when not set) and what it does."""
    from ..registry._settings import SETTINGS

    settings = user_settings(session)
    values = settings.values()
    if session.as_json:
        session.emit({"file": str(settings.path), "settings": {n: values.get(n) for n in SETTINGS}})
        return EXIT_OK
    session.echo(
        table(["setting", "value", "what"], [[n, values.get(n), h] for n, h in SETTINGS.items()])
    )
    session.note(f"settings file: {settings.path}")
    return EXIT_OK
