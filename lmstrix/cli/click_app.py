"""The ``lmstrix`` command, click front end (extra ``[cli]``); the only module importing click.

Every command only turns its arguments into a call of the shared implementation (see
:mod:`lmstrix.cli._lite` for the same commands on argparse). Global options are
accepted before and after the command name. Shell completion (click 8):
``eval "$(_LMSTRIX_COMPLETE=bash_source lmstrix)"`` (``zsh_source``, ``fish_source``).
"""

# mypy: disallow-untyped-decorators=False
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TypeVar

if TYPE_CHECKING:
    # mypy targets Python 3.8 here and cannot parse click >= 8.2's own sources (they use
    # `match`), so the type checker sees click as Any; the shared code it calls is typed.
    click: Any
else:
    import click

from ._lite import COMMANDS, GLOBAL_DEFAULTS
from ._options import COMMANDS as TABLE
from ._options import GLOBAL_OPTIONS, GROUPS, Argument, Command, Option
from ._output import EXIT_INTERRUPTED, EXIT_USAGE

__all__ = ["cli", "main"]

F = TypeVar("F", bound=Callable[..., Any])
_META = "lmstrix.globals"


def _settings(ctx: click.Context) -> Dict[str, Any]:
    settings: Dict[str, Any] = ctx.meta.setdefault(_META, dict(GLOBAL_DEFAULTS))
    return settings


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a global option given before or after the command name (the later one wins)."""
    if value is not None and value is not False and value != 0 and param.name:
        settings = _settings(ctx)
        if isinstance(value, tuple):  # a repeatable option: before and after the command
            settings[param.name] = list(settings[param.name]) + list(value)
        elif param.name == "verbose":
            settings["verbose"] += value
        else:
            settings[param.name] = value
    return value


def _sentence(text: str) -> str:
    """A table help phrase as click shows help: capitalised, with a full stop."""
    if not text:
        return text
    return text[0].upper() + text[1:] + ("" if text.endswith(".") else ".")


class _Checked(click.ParamType):  # type: ignore[misc]
    """A table ``type`` function as a click type: its ``ValueError`` is the message."""

    def __init__(self, convert: Callable[[str], Any]) -> None:
        self.convert_text = convert
        self.name = getattr(convert, "__name__", "value")

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        if not isinstance(value, str):
            return value
        try:
            return self.convert_text(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _click_type(option: Option) -> Any:
    if option.choices is not None:
        return click.Choice(list(option.choices))
    if option.type is None or option.type in (int, float, str):
        return option.type
    return _Checked(option.type)


def _option(option: Option, *, is_global: bool = False, hidden: bool = False) -> Any:
    """``option`` of the table as a click option decorator.

    A global option has no default of its own (the session applies it) and is kept by
    :func:`_store` instead of being passed to the command.
    """
    default = option.parsed_default()
    kwargs: Dict[str, Any] = {"help": _sentence(option.help_text()) or None}
    if is_global:
        kwargs.update(hidden=hidden, expose_value=False, callback=_store)
    else:
        kwargs["default"] = () if option.multiple else default
    names = [*option.flags, option.dest]
    if option.kind == "flag":
        kwargs["is_flag"] = True
    elif option.kind == "count":
        kwargs["count"] = True
    elif option.kind == "switch":
        names = ["/".join(option.flags), option.dest]
    else:
        kwargs.update(
            type=_click_type(option),
            metavar=option.metavar,
            required=option.required,
            multiple=option.multiple,
        )
    return click.option(*names, **kwargs)


def _argument(argument: Argument) -> Callable[[F], F]:
    if argument.nargs == "*":
        decorator: Callable[[F], F] = click.argument(
            argument.dest, metavar=f"[{argument.metavar}]...", nargs=-1
        )
    else:
        decorator = click.argument(
            argument.dest, metavar=argument.metavar, required=argument.nargs == "1"
        )
    return decorator


def _global_options(hidden: bool) -> Callable[[F], F]:
    """The global options, stored by :func:`_store` before or after the command name."""
    options = [_option(o, is_global=True, hidden=hidden) for o in GLOBAL_OPTIONS]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _run(command: str, **arguments: Any) -> int:
    from ._plugins import use_plugins
    from ._session import Session, run_command

    session = Session.from_options(_settings(click.get_current_context()))
    use_plugins(session, _PLUGINS.get("loaded"))
    module, function = COMMANDS[command]
    return run_command(session, module, function, **arguments)


@click.group(
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Global options may also follow the command name. Exit codes: 0 ok, 1 failure, "
    "2 bad usage or input, 130 interrupted.",
)
@_global_options(hidden=False)
def cli() -> None:
    """Find the real context limits of your LM Studio models, and use them."""


def _group(name: str) -> Any:
    """The click group of the commands ``<name> ...`` (``prompt``, ``audit``)."""

    @click.pass_context
    def callback(ctx: Any) -> None:
        if ctx.invoked_subcommand is None:  # a missing subcommand is bad usage in every click
            click.echo(ctx.get_help(), err=True)
            ctx.exit(EXIT_USAGE)

    help = _sentence(GROUPS[name])
    return cli.group(name, help=help, short_help=help, invoke_without_command=True)(
        _global_options(hidden=True)(callback)
    )


_GROUPS = {name: _group(name) for name in GROUPS}


def _register(command: Command) -> None:
    """Add ``command`` of the table to the click group it belongs to."""
    words = command.name.split()
    group = _GROUPS[words[0]] if len(words) == 2 else cli
    lists = [a.dest for a in command.arguments if a.nargs == "*"]
    lists += [o.dest for o in command.options if o.multiple]

    def callback(**arguments: Any) -> int:
        for name in lists:  # click gives tuples; the commands take lists
            arguments[name] = list(arguments[name])
        return _run(command.name, **arguments)

    fn: Any = callback
    for option in reversed(command.options):
        fn = _option(option)(fn)
    for argument in reversed(command.arguments):
        fn = _argument(argument)(fn)
    fn = _global_options(hidden=True)(fn)
    help = _sentence(command.help)
    group.command(words[-1], help=help, short_help=help)(fn)


for _command in TABLE:
    _register(_command)

_PLUGINS: Dict[str, Any] = {"commands": []}  # what main() loaded for this run


def _add_plugins() -> None:
    """Load the plugins and register their commands (those of an earlier run go first)."""
    from ._plugins import load_plugins, plugin_commands

    for name in _PLUGINS["commands"]:
        cli.commands.pop(name, None)
        COMMANDS.pop(name, None)
    plugins = _PLUGINS["loaded"] = load_plugins()
    added = plugin_commands(plugins, list(COMMANDS))
    _PLUGINS["commands"] = [command.name for command in added]
    for command in added:
        COMMANDS[command.name] = command.target
        _register(command)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the click CLI; return the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = sys.argv[1:] if argv is None else list(argv)
    _add_plugins()
    if not args and not os.environ.get("_LMSTRIX_COMPLETE"):  # completion runs with no args
        context = click.Context(cli, info_name="lmstrix", **cli.context_settings)
        click.echo(cli.get_help(context), err=True)
        return EXIT_USAGE
    try:
        result = cli.main(args=args, prog_name="lmstrix", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except click.exceptions.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Exit as exc:  # click < 8 raises it through
        return int(exc.exit_code)
    return result if isinstance(result, int) else 0
