"""Plugins in the CLI: loaded at start-up (unless ``LMSTRIX_NO_PLUGINS`` is set), their
commands added to both front ends, their middleware and observers given to every client
of the run; and the ``lmstrix plugins`` command.

A plugin that fails is reported with one warning line on stderr and skipped; a plugin
command whose name is already taken is skipped the same way. Never a crash.
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import TYPE_CHECKING, Any, List, Optional, Sequence, TextIO

from ..plugins import NO_PLUGINS_ENV, PluginWarning, installed, load
from ._params import Command

if TYPE_CHECKING:
    from ..plugins import Plugins
    from ._session import Session

__all__ = [
    "cmd_plugins",
    "load_plugins",
    "plugin_commands",
    "post_processed",
    "use_plugins",
]


def load_plugins(stderr: Optional[TextIO] = None) -> Optional[Plugins]:
    """The installed plugins, loaded; ``None`` when ``LMSTRIX_NO_PLUGINS`` is set."""
    if os.environ.get(NO_PLUGINS_ENV, "").strip() not in ("", "0"):
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", PluginWarning)
        found = load()
    for warning in caught:
        (stderr or sys.stderr).write(f"warning: {warning.message}\n")
    return found


def plugin_commands(
    plugins: Optional[Plugins], taken: Sequence[str], stderr: Optional[TextIO] = None
) -> List[Command]:
    """The plugins' commands that are :class:`Command` objects with a free name."""
    if plugins is None:
        return []
    chosen: List[Command] = []
    names = set(taken)
    for command in plugins.cli_commands:
        problem = None
        if not isinstance(command, Command):
            problem = "is not an lmstrix.cli.Command"
        elif command.name in names or " " in command.name:
            problem = "has a name that is taken (or has a space)"
        if problem is not None:
            name = getattr(command, "name", command)
            (stderr or sys.stderr).write(f"warning: plugin command {name!r} {problem}: skipped\n")
            continue
        names.add(command.name)
        chosen.append(command)
    return chosen


def use_plugins(session: Session, plugins: Optional[Plugins]) -> None:
    """Give the run's clients the plugins' middleware and observers."""
    session.plugins = plugins
    if plugins is None:
        return
    for middleware in plugins.middleware:
        session.add_middleware(middleware)
    for observer in plugins.observers:
        session.observe(observer)


def post_processed(session: Session, client: Any, names: Sequence[str]) -> Any:
    """``client``, its ``chat`` answers post-processed by ``names`` (``--post``): the
    built-in post-processors and the loaded plugins'. Unknown names are bad usage."""
    if not names:
        return client
    from ..plugins import BUILTIN_POST_PROCESSORS, PostProcessError, PostProcessingClient
    from ._session import UsageError

    plugins: Any = session.plugins
    available = plugins.post_processors if plugins is not None else BUILTIN_POST_PROCESSORS
    try:
        return PostProcessingClient(client, names, available)
    except PostProcessError as exc:
        raise UsageError(f"--post: {exc}") from None


def cmd_plugins(session: Session) -> int:
    """``lmstrix plugins``: what is installed, what loaded, what each provides."""
    plugins: Any = session.plugins
    loading = plugins is not None
    infos = plugins.infos if loading else installed()
    if session.as_json:
        session.emit({"loading": loading, "plugins": [info.to_dict() for info in infos]})
        return 0
    if not loading:
        session.echo(f"plugins are not loaded: {NO_PLUGINS_ENV} is set")
    if not infos:
        session.echo("no plugins installed (entry-point group lmstrix.plugins)")
        return 0
    from ._output import table

    rows = []
    for info in infos:
        status = "loaded" if info.loaded else (f"skipped: {info.error}" if info.error else "-")
        rows.append(
            [
                info.name,
                f"{info.distribution or '?'} {info.version or ''}".strip(),
                status,
                ", ".join(info.provides) or "-",
            ]
        )
    session.echo(table(["plugin", "package", "status", "provides"], rows))
    return 0
