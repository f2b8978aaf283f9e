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
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, TypeVar, cast

if TYPE_CHECKING:
    # mypy targets Python 3.8 here and cannot parse click >= 8.2's own sources (they use
    # `match`), so the type checker sees click as Any; the shared code it calls is typed.
    click: Any
else:
    import click

from ._lite import COMMANDS, GLOBAL_DEFAULTS
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
        if param.name == "verbose":
            settings["verbose"] += value
        else:
            settings[param.name] = value
    return value


def _global_options(hidden: bool) -> Callable[[F], F]:
    def opt(*names: str, **kwargs: Any) -> Callable[[F], F]:
        option: Callable[[F], F] = click.option(
            *names, expose_value=False, callback=_store, hidden=hidden, **kwargs
        )
        return option

    options = [
        opt(
            "--server",
            metavar="URL",
            envvar=None,
            help="LM Studio server (default $LMSTRIX_SERVER or http://localhost:1234).",
        ),
        opt(
            "--token",
            metavar="T",
            help="API token (default $LM_API_TOKEN, then $LMSTUDIO_API_TOKEN; prefer "
            "those: arguments show in process lists).",
        ),
        opt(
            "--registry",
            metavar="PATH",
            help="Registry file (default $LMSTRIX_REGISTRY, else $LMSTRIX_HOME/registry.json).",
        ),
        opt("--timeout", metavar="SECONDS", type=float, help="Read timeout (default 600)."),
        opt("--json", is_flag=True, help="Machine output: one JSON document on stdout."),
        opt("-v", "--verbose", count=True, help="More logging (-vv: debug); tracebacks."),
        opt("-q", "--quiet", is_flag=True, help="No progress or warnings."),
    ]

    def decorate(fn: F) -> F:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return decorate


def _run(command: str, **arguments: Any) -> int:
    from ._session import Session, run_command

    session = Session.from_options(_settings(click.get_current_context()))
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


def _command(name: str, help: str) -> Callable[[F], Any]:
    def decorate(fn: F) -> Any:
        return cli.command(name, help=help, short_help=help)(_global_options(hidden=True)(fn))

    return decorate


@_command("doctor", "Check the server, its API and auth, and the registry.")
def _doctor() -> int:
    return _run("doctor")


@_command("scan", "Sync the registry with the server's models (keeps test results).")
def _scan() -> int:
    return _run("scan")


@_command("list", "Models with declared, loadable and working context.")
def _list() -> int:
    return _run("list")


@_command("show", "One model's record and probe history.")
@click.argument("model")
def _show(model: str) -> int:
    return _run("show", model=model)


@_command("test", "Find the loadable and working context of models.")
@click.argument("models", metavar="[MODEL]...", nargs=-1)
@click.option("--all", "all_models", is_flag=True, help="Every chat model on the server.")
@click.option(
    "--min",
    "min_context",
    type=int,
    default=2048,
    metavar="N",
    help="Smallest load to try (default 2048).",
)
@click.option(
    "--max",
    "max_context",
    type=int,
    metavar="N",
    help="Largest load to try (default: the declared context).",
)
@click.option(
    "--resolution",
    type=int,
    default=1024,
    metavar="N",
    help="How close to the true limits, in tokens (default 1024).",
)
@click.option(
    "--trials",
    type=int,
    default=3,
    metavar="N",
    help="Needles per size near the limit (default 3).",
)
@click.option("--reset", is_flag=True, help="Forget earlier results and test again.")
def _test(models: List[str], **options: Any) -> int:
    return _run("test", models=list(models), **options)


@_command("load", "Load a model (LM Studio 0.4+).")
@click.argument("model")
@click.option(
    "--context",
    metavar="N|tested",
    help="Context length, or 'tested': the registry's working context.",
)
def _load(model: str, context: Optional[str]) -> int:
    return _run("load", model=model, context=context)


@_command("unload", "Unload a model's instances, or all.")
@click.argument("model", required=False)
@click.option("--all", "all_instances", is_flag=True, help="Every loaded instance.")
def _unload(model: Optional[str], all_instances: bool) -> int:
    return _run("unload", model=model, all_instances=all_instances)


@_command("ps", "Loaded instances with their context and parallel slots.")
def _ps() -> int:
    return _run("ps")


def _template_options(fn: F) -> F:
    fn = click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="K=V",
        help="A template variable (repeatable; dotted names nest).",
    )(fn)
    fn = click.option(
        "--template",
        metavar="NAME",
        help="Library entry to render as the prompt ({{input}} = the prompt).",
    )(fn)
    return cast(
        F, click.option("--prompts", metavar="FILE", help="Prompt library (JSON or TOML).")(fn)
    )


@_command("chat", "Ask a model one question (streams on a terminal).")
@click.argument("model")
@click.argument("prompt", required=False)
@click.option("-f", "--file", metavar="FILE", help="Read the prompt from FILE (- = stdin).")
@click.option("--system", metavar="TEXT", help="System message.")
@click.option("--temperature", type=float, metavar="T")
@click.option("--max-tokens", type=int, metavar="N")
@click.option(
    "--stream/--no-stream", default=None, help="Stream the answer (default: on a terminal)."
)
@click.option("--stats", is_flag=True, help="Time to first token, tokens/s and usage, on stderr.")
@_template_options
def _chat(model: str, prompt: Optional[str], variables: List[str], **options: Any) -> int:
    return _run("chat", model=model, prompt=prompt, variables=list(variables), **options)


@cli.group(
    "prompt", help="Prompt templates.", short_help="Prompt templates.", invoke_without_command=True
)
@_global_options(hidden=True)
@click.pass_context
def _prompt(ctx: Any) -> None:
    if ctx.invoked_subcommand is None:  # a missing subcommand is bad usage in every click
        click.echo(ctx.get_help(), err=True)
        ctx.exit(EXIT_USAGE)


@_prompt.command("render", help="Render a library entry.", short_help="Render a library entry.")
@_global_options(hidden=True)
@click.argument("file")
@click.argument("name")
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="K=V",
    help="A variable (repeatable; dotted names nest).",
)
def _prompt_render(file: str, name: str, variables: List[str]) -> int:
    return _run("prompt render", file=file, name=name, variables=list(variables))


@_command("batch", "Run many prompts through a model, resumably.")
@click.argument("input")
@click.option(
    "-o",
    "--output",
    required=True,
    metavar="OUTPUT",
    help="JSONL results (appended; done items are skipped on a rerun).",
)
@click.option("-m", "--model", required=True, metavar="M")
@click.option("--workers", type=int, metavar="N")
@click.option("--prompts", metavar="FILE", help="Prompt library (JSON or TOML).")
@click.option("--template", metavar="NAME", help="Library entry to render per item.")
@click.option("--retries", type=int, default=1, metavar="N")
@click.option("--rpm", type=float, metavar="N", help="Requests per minute, at most.")
@click.option("--temperature", type=float, metavar="T")
@click.option("--max-tokens", type=int, metavar="N")
def _batch(input: str, **options: Any) -> int:
    return _run("batch", input=input, **options)


@_command("demo", "Run the whole job on the built-in simulator.")
@click.option("--trials", type=int, default=3, metavar="N", help="Needles per size (default 3).")
def _demo(trials: int) -> int:
    return _run("demo", trials=trials)


@_command("simulate", "Serve the simulated LM Studio until Ctrl-C.")
@click.option(
    "--port",
    type=int,
    default=1234,
    metavar="N",
    help="Port on 127.0.0.1 (default 1234; 0 picks a free one).",
)
@click.option(
    "--api",
    type=click.Choice(["v1", "v0", "openai"]),
    default="v1",
    help="Server generation to simulate (default v1).",
)
@click.option(
    "--time-scale",
    type=float,
    default=0.0,
    metavar="X",
    help="Real seconds per simulated second (default 0: no sleeping).",
)
def _simulate(port: int, api: str, time_scale: float) -> int:
    return _run("simulate", port=port, api=api, time_scale=time_scale)


def main(argv: Optional[List[str]] = None) -> int:
    """Run the click CLI; return the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    args = sys.argv[1:] if argv is None else list(argv)
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
