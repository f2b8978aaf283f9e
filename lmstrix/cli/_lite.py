"""``python -m lmstrix``: the standard-library-only command line (argparse).

The commands and options are those of :mod:`lmstrix.cli._options`, rendered into
argparse here and into click by ``click_app``; both turn the arguments into a
:class:`~lmstrix.cli._session.Session` and one call of a command function. Global
options may come before or after the command name. A command's own options are added
to its parser only when that command runs (or for help), so a library default shown in
the help is looked up (and its module imported) only for that command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Dict, List, Optional, Sequence, Union

from ._options import COMMANDS as TABLE
from ._options import GLOBAL_OPTIONS, GROUPS, Argument, Command, Option
from ._output import EXIT_USAGE

__all__ = ["COMMANDS", "GLOBAL_DEFAULTS", "build_parser", "main"]

# command name -> (module, function) of its one shared implementation
COMMANDS: Dict[str, Any] = {command.name: command.target for command in TABLE}
_BY_NAME: Dict[str, Command] = {command.name: command for command in TABLE}

# The global options and their values when not given; the click front end uses them too.
# ``None`` for a library default (the server, the timeout): the library applies it.
GLOBAL_DEFAULTS: Dict[str, Any] = {
    o.dest: [] if o.multiple else 0 if o.kind == "count" else False if o.kind == "flag" else None
    for o in GLOBAL_OPTIONS
}
_GLOBALS = tuple(GLOBAL_DEFAULTS)
# A repeatable global option given after the command name is kept apart (argparse gives
# each subcommand a fresh namespace, which would drop the values given before it).
_LATER = "_later"
_MULTIPLE = tuple(o.dest for o in GLOBAL_OPTIONS if o.multiple)


def _type(convert: Callable[[str], Any]) -> Callable[[str], Any]:
    """``convert`` with its ``ValueError`` message shown as argparse's error."""
    if convert in (int, float, str):
        return convert

    def checked(text: str) -> Any:
        try:
            return convert(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    checked.__name__ = getattr(convert, "__name__", "value")
    return checked


def _add_option(parser: argparse.ArgumentParser, option: Option, *, hidden: bool = False) -> None:
    later = hidden and option.multiple and option in GLOBAL_OPTIONS
    kwargs: Dict[str, Any] = {"dest": option.dest + _LATER if later else option.dest}
    default = option.parsed_default()
    kwargs["help"] = argparse.SUPPRESS if hidden else (option.help_text() or None)
    if hidden or option in GLOBAL_OPTIONS:
        # Global options: SUPPRESS keeps one given before the command name from being
        # overwritten by the command's parser; the session applies the defaults.
        kwargs["default"] = argparse.SUPPRESS
    else:
        kwargs["default"] = default
    if option.kind == "flag":
        kwargs["action"] = "store_true"
    elif option.kind == "count":
        kwargs["action"] = "count"
    elif option.kind == "switch":
        on, off = option.flags
        parser.add_argument(on, action="store_true", **kwargs)
        parser.add_argument(off, dest=option.dest, action="store_false", default=default)
        return
    else:
        if option.type is not None:
            kwargs["type"] = _type(option.type)
        kwargs["metavar"] = option.metavar
        kwargs["choices"] = option.choices
        kwargs["required"] = option.required
        if option.multiple:
            kwargs["action"] = "append"
    parser.add_argument(*option.flags, **kwargs)


def _add_argument(parser: argparse.ArgumentParser, argument: Argument) -> None:
    nargs: Optional[str] = None if argument.nargs == "1" else argument.nargs
    parser.add_argument(
        argument.dest, metavar=argument.metavar, nargs=nargs, help=argument.help or None
    )


def _add_globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    for option in GLOBAL_OPTIONS:
        _add_option(parser, option, hidden=not top)


def _fill(parser: argparse.ArgumentParser, command: Command) -> None:
    """Add ``command``'s arguments and options to its (empty) parser."""
    _add_globals(parser, top=False)
    for argument in command.arguments:
        _add_argument(parser, argument)
    for option in command.options:
        _add_option(parser, option)


class _Commands(argparse._SubParsersAction):  # type: ignore[type-arg]
    """Subcommands whose parsers get their arguments when the command is chosen."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pending: Dict[str, Callable[[], None]] = {}

    def complete(self, name: str) -> None:
        fill = self.pending.pop(name, None)
        if fill is not None:
            fill()

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Union[str, Sequence[Any], None],
        option_string: Optional[str] = None,
    ) -> None:
        if isinstance(values, (list, tuple)) and values:
            self.complete(str(values[0]))
        super().__call__(parser, namespace, values, option_string)


def _subcommands(parser: argparse.ArgumentParser, dest: str, metavar: str) -> _Commands:
    parser.register("action", "parsers", _Commands)
    action = parser.add_subparsers(dest=dest, metavar=metavar)
    assert isinstance(action, _Commands)
    return action


def build_parser(*, lazy: bool = False, extra: Sequence[Command] = ()) -> argparse.ArgumentParser:
    """The argument parser of the lite CLI, with the plugins' commands ``extra``.

    With ``lazy``, a command's arguments are added when the command is parsed (what
    :func:`main` uses); otherwise every parser is complete (for inspection).
    """
    parser = argparse.ArgumentParser(
        prog="lmstrix",
        description="Find the real context limits of your LM Studio models, and use them.",
        epilog="Global options may also follow the command name. Exit codes: 0 ok, "
        "1 failure, 2 bad usage or input, 130 interrupted.",
        allow_abbrev=False,  # like click: `--temp` is not `--temperature`
    )
    _add_globals(parser, top=True)
    top = _subcommands(parser, "command", "COMMAND")
    groups: Dict[str, _Commands] = {}
    for command in (*TABLE, *extra):
        words = command.name.split()
        owner = top
        if len(words) == 2:
            if words[0] not in groups:
                group = top.add_parser(
                    words[0], help=GROUPS[words[0]], description=GROUPS[words[0]]
                )
                _add_globals(group, top=False)
                groups[words[0]] = _subcommands(group, f"{words[0]}_command", "SUBCOMMAND")
            owner = groups[words[0]]
        sub = owner.add_parser(
            words[-1], help=command.help, description=command.help, allow_abbrev=False
        )

        def fill(sub: argparse.ArgumentParser = sub, command: Command = command) -> None:
            _fill(sub, command)

        owner.pending[words[-1]] = fill
        if not lazy:
            owner.complete(words[-1])
    return parser


def _arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of the command function, from the parsed namespace."""
    skip = set(_GLOBALS) | {"command"} | {f"{group}_command" for group in GROUPS}
    skip |= {dest + _LATER for dest in _MULTIPLE}
    return {k: v for k, v in vars(args).items() if k not in skip}


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    from ._plugins import load_plugins, plugin_commands, use_plugins

    plugins = load_plugins()
    extra = plugin_commands(plugins, list(_BY_NAME))
    parser = build_parser(lazy=True, extra=extra)
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    name = args.command
    if name in GROUPS:
        sub = getattr(args, f"{name}_command")
        if sub is None:
            choices = [c.name.split()[1] for c in TABLE if c.name.startswith(name + " ")]
            sys.stderr.write(f"lmstrix {name}: give a subcommand: {', '.join(choices)}\n")
            return EXIT_USAGE
        name = f"{name} {sub}"
    if name is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ._session import Session, run_command

    options = {k: getattr(args, k, GLOBAL_DEFAULTS[k]) for k in _GLOBALS}
    for dest in _MULTIPLE:  # before the command name, then after it
        options[dest] = list(options[dest] or []) + list(getattr(args, dest + _LATER, None) or [])
    session = Session.from_options(options)
    use_plugins(session, plugins)
    command = _BY_NAME.get(name) or next(c for c in extra if c.name == name)
    return run_command(session, *command.target, **_arguments(args))
