"""The types of the option table (:mod:`lmstrix.cli._options`): options, arguments, commands.

Plain frozen data: both front ends render them, argparse in ``_lite`` and click in
``click_app``. A :class:`FromLibrary` default is the library's own, looked up when needed.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

__all__ = ["Argument", "Command", "FromLibrary", "Option"]


@dataclass(frozen=True)
class FromLibrary:
    """A default owned by the library: ``lmstrix.<module>.<name>``, or one parameter of it.

    With ``parameter``, the default of that parameter in the signature of the function
    or class ``name``; without, the constant itself. A module that is left out of a
    vendored copy (``batch``) resolves to ``None``.
    """

    module: str
    name: str
    parameter: Optional[str] = None

    def resolve(self) -> Any:
        """The library's value (imports the module)."""
        import inspect

        try:
            owner = importlib.import_module(f"lmstrix.{self.module}")
        except ImportError:
            return None
        value = getattr(owner, self.name)
        if self.parameter is None:
            return value
        return inspect.signature(value).parameters[self.parameter].default


@dataclass(frozen=True)
class Option:
    """One ``--flag`` of a command, as both front ends declare it.

    ``kind`` is ``value`` (takes a value of ``type``), ``flag`` (on when given), ``count``
    (``-vv``) or ``switch`` (``--x``/``--no-x``, ``None`` when neither is given).
    ``dest`` is the keyword argument of the command function. ``multiple`` collects
    repeated values into a list. ``aliases`` are the library's names for the same
    value, so a library message naming one is shown with the flag instead.
    """

    dest: str
    flags: Tuple[str, ...]
    help: str = ""
    kind: str = "value"
    type: Optional[Callable[[str], Any]] = None
    default: Any = None
    metavar: Optional[str] = None
    choices: Optional[Tuple[str, ...]] = None
    multiple: bool = False
    required: bool = False
    aliases: Tuple[str, ...] = ()

    @property
    def flag(self) -> str:
        """The long flag, as messages name the option."""
        return next((f for f in self.flags if f.startswith("--")), self.flags[0])

    def resolved_default(self) -> Any:
        """The default value (a library default looked up now); ``[]`` when ``multiple``
        (unless the library owns it: the default server)."""
        if isinstance(self.default, FromLibrary):
            return self.default.resolve()
        if self.multiple:
            return []
        if self.kind == "flag":
            return bool(self.default)
        if self.kind == "count":
            return self.default or 0
        return self.default

    def parsed_default(self) -> Any:
        """The value a front end passes when the option is not given.

        ``None`` for a library default: the command then leaves the argument out, so
        the library function it calls applies its own default.
        """
        return None if isinstance(self.default, FromLibrary) else self.resolved_default()

    def help_text(self) -> str:
        """The help with ``{default}`` filled in (a library default looked up now)."""
        default = self.resolved_default()
        shown = (
            "none" if default is None else f"{default:g}" if isinstance(default, float) else default
        )
        return self.help.replace("{default}", str(shown))


@dataclass(frozen=True)
class Argument:
    """A positional argument: ``nargs`` is ``1``, ``?`` (optional) or ``*`` (any number)."""

    dest: str
    metavar: str
    nargs: str = "1"
    help: str = ""


@dataclass(frozen=True)
class Command:
    """A command: its name (``prompt render`` for a subcommand), help, implementation, params."""

    name: str
    help: str
    module: str
    function: str
    arguments: Tuple[Argument, ...] = ()
    options: Tuple[Option, ...] = ()

    @property
    def target(self) -> Tuple[str, str]:
        """``(module, function)`` of the shared implementation in ``lmstrix.cli``."""
        return self.module, self.function

    def flag_names(self) -> Dict[str, str]:
        """Python names (``dest`` and library aliases) -> the flag a user types."""
        names: Dict[str, str] = {}
        for option in self.options:
            for name in (option.dest, *option.aliases):
                names[name] = option.flag
        return names
