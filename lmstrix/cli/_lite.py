"""``python -m lmstrix``: the standard-library-only command line (argparse).

Same commands, flags and JSON as the click front end (``click_app``): both turn the
arguments into a :class:`~lmstrix.cli._session.Session` and one call of a command
function. Global options may come before or after the command name.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Dict, List, Optional, Tuple

from ._output import EXIT_USAGE

__all__ = ["COMMANDS", "GLOBAL_DEFAULTS", "build_parser", "main"]

# command -> (module, function) of its one shared implementation
COMMANDS: Dict[str, Tuple[str, str]] = {
    "doctor": ("_cmd_models", "cmd_doctor"),
    "scan": ("_cmd_models", "cmd_scan"),
    "list": ("_cmd_models", "cmd_list"),
    "show": ("_cmd_models", "cmd_show"),
    "test": ("_cmd_test", "cmd_test"),
    "load": ("_cmd_instances", "cmd_load"),
    "unload": ("_cmd_instances", "cmd_unload"),
    "ps": ("_cmd_instances", "cmd_ps"),
    "chat": ("_cmd_chat", "cmd_chat"),
    "prompt render": ("_cmd_chat", "cmd_prompt_render"),
    "batch": ("_cmd_batch", "cmd_batch"),
    "demo": ("_demo", "run_demo"),
    "simulate": ("_demo", "cmd_simulate"),
}

# The global options and their values when not given; the click front end uses them too.
GLOBAL_DEFAULTS: Dict[str, Any] = {
    "server": None,
    "token": None,
    "registry": None,
    "timeout": None,
    "json": False,
    "verbose": 0,
    "quiet": False,
}
_GLOBALS = tuple(GLOBAL_DEFAULTS)


def _add_globals(parser: argparse.ArgumentParser, *, top: bool) -> None:
    # After the command name the options are hidden from help and default to SUPPRESS,
    # so an option given only before the command is not overwritten by the subparser.
    def opt(*names: str, help: str, **kwargs: Any) -> None:
        kwargs["default"] = argparse.SUPPRESS
        parser.add_argument(*names, help=help if top else argparse.SUPPRESS, **kwargs)

    opt(
        "--server",
        metavar="URL",
        help="LM Studio server (default $LMSTRIX_SERVER or http://localhost:1234)",
    )
    opt(
        "--token",
        metavar="T",
        help="API token (default $LM_API_TOKEN, then "
        "$LMSTUDIO_API_TOKEN; prefer those: arguments show in process lists)",
    )
    opt(
        "--registry",
        metavar="PATH",
        help="registry file (default $LMSTRIX_REGISTRY, else $LMSTRIX_HOME/registry.json)",
    )
    opt("--timeout", metavar="SECONDS", type=float, help="read timeout (default 600)")
    opt("--json", action="store_true", help="machine output: one JSON document on stdout")
    opt("-v", "--verbose", action="count", help="more logging (-vv: debug); tracebacks")
    opt("-q", "--quiet", action="store_true", help="no progress or warnings")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the lite CLI."""
    parser = argparse.ArgumentParser(
        prog="lmstrix",
        description="Find the real context limits of your LM Studio models, and use them.",
        epilog="Global options may also follow the command name. Exit codes: 0 ok, "
        "1 failure, 2 bad usage or input, 130 interrupted.",
        allow_abbrev=False,  # like click: `--temp` is not `--temperature`
    )
    _add_globals(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def command(name: str, help: str) -> argparse.ArgumentParser:
        cmd = sub.add_parser(name, help=help, description=help, allow_abbrev=False)
        _add_globals(cmd, top=False)
        return cmd

    command("doctor", "check the server, its API and auth, and the registry")
    command("scan", "sync the registry with the server's models (keeps test results)")
    command("list", "models with declared, loadable and working context")
    cmd = command("show", "one model's record and probe history")
    cmd.add_argument("model", metavar="MODEL")

    cmd = command("test", "find the loadable and working context of models")
    cmd.add_argument("models", metavar="MODEL", nargs="*")
    cmd.add_argument(
        "--all", dest="all_models", action="store_true", help="every chat model on the server"
    )
    cmd.add_argument(
        "--min",
        dest="min_context",
        type=int,
        default=2048,
        metavar="N",
        help="smallest load to try (default 2048)",
    )
    cmd.add_argument(
        "--max",
        dest="max_context",
        type=int,
        metavar="N",
        help="largest load to try (default: the declared context)",
    )
    cmd.add_argument(
        "--resolution",
        type=int,
        default=1024,
        metavar="N",
        help="how close to the true limits, in tokens (default 1024)",
    )
    cmd.add_argument(
        "--trials",
        type=int,
        default=3,
        metavar="N",
        help="needles per size near the limit (default 3)",
    )
    cmd.add_argument("--reset", action="store_true", help="forget earlier results and test again")

    cmd = command("load", "load a model (LM Studio 0.4+)")
    cmd.add_argument("model", metavar="MODEL")
    cmd.add_argument(
        "--context",
        metavar="N|tested",
        help="context length, or 'tested': the registry's working context",
    )
    cmd = command("unload", "unload a model's instances, or all")
    cmd.add_argument("model", metavar="MODEL", nargs="?")
    cmd.add_argument(
        "--all", dest="all_instances", action="store_true", help="every loaded instance"
    )
    command("ps", "loaded instances with their context and parallel slots")

    cmd = command("chat", "ask a model one question (streams on a terminal)")
    cmd.add_argument("model", metavar="MODEL")
    cmd.add_argument("prompt", metavar="PROMPT", nargs="?")
    cmd.add_argument("-f", "--file", metavar="FILE", help="read the prompt from FILE (- = stdin)")
    cmd.add_argument("--system", metavar="TEXT", help="system message")
    cmd.add_argument("--temperature", type=float, metavar="T")
    cmd.add_argument("--max-tokens", type=int, metavar="N")
    cmd.add_argument(
        "--stream",
        dest="stream",
        action="store_true",
        default=None,
        help="stream the answer (default on a terminal)",
    )
    cmd.add_argument("--no-stream", dest="stream", action="store_false")
    cmd.add_argument(
        "--stats", action="store_true", help="time to first token, tokens/s and usage, on stderr"
    )
    _template_options(cmd)

    cmd = command("prompt", "prompt templates")
    prompt_sub = cmd.add_subparsers(dest="prompt_command", metavar="SUBCOMMAND")
    render = prompt_sub.add_parser(
        "render",
        help="render a library entry",
        description="render a library entry",
        allow_abbrev=False,
    )
    _add_globals(render, top=False)
    render.add_argument("file", metavar="FILE")
    render.add_argument("name", metavar="NAME")
    render.add_argument(
        "--var",
        dest="variables",
        action="append",
        default=[],
        metavar="K=V",
        help="a variable (repeatable; dotted names nest)",
    )

    cmd = command("batch", "run many prompts through a model, resumably")
    cmd.add_argument("input", metavar="INPUT", help="JSONL, CSV or text file of items")
    cmd.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="OUTPUT",
        help="JSONL results (appended; done items are skipped on a rerun)",
    )
    cmd.add_argument("-m", "--model", required=True, metavar="M")
    cmd.add_argument("--workers", type=int, metavar="N")
    cmd.add_argument("--prompts", metavar="FILE", help="prompt library (JSON or TOML)")
    cmd.add_argument("--template", metavar="NAME", help="library entry to render per item")
    cmd.add_argument("--retries", type=int, default=1, metavar="N")
    cmd.add_argument("--rpm", type=float, metavar="N", help="requests per minute, at most")
    cmd.add_argument("--temperature", type=float, metavar="T")
    cmd.add_argument("--max-tokens", type=int, metavar="N")

    cmd = command("demo", "run the whole job on the built-in simulator")
    cmd.add_argument(
        "--trials", type=int, default=3, metavar="N", help="needles per size (default 3)"
    )
    cmd = command("simulate", "serve the simulated LM Studio until Ctrl-C")
    cmd.add_argument(
        "--port",
        type=int,
        default=1234,
        metavar="N",
        help="port on 127.0.0.1 (default 1234; 0 picks a free one)",
    )
    cmd.add_argument(
        "--api",
        choices=("v1", "v0", "openai"),
        default="v1",
        help="server generation to simulate (default v1)",
    )
    cmd.add_argument(
        "--time-scale",
        type=float,
        default=0.0,
        metavar="X",
        help="real seconds per simulated second (default 0: no sleeping)",
    )
    return parser


def _template_options(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--prompts", metavar="FILE", help="prompt library (JSON or TOML)")
    cmd.add_argument(
        "--template",
        metavar="NAME",
        help="library entry to render as the prompt ({{input}} = the prompt)",
    )
    cmd.add_argument(
        "--var",
        dest="variables",
        action="append",
        default=[],
        metavar="K=V",
        help="a template variable (repeatable)",
    )


def _arguments(args: argparse.Namespace) -> Dict[str, Any]:
    """The keyword arguments of the command function, from the parsed namespace."""
    skip = set(_GLOBALS) | {"command", "prompt_command"}
    return {k: v for k, v in vars(args).items() if k not in skip}


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point; returns the exit code (0 ok, 1 failure, 2 usage, 130 interrupted)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on bad usage, 0 on --help
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    name = args.command
    if name == "prompt":
        if args.prompt_command is None:
            sys.stderr.write("lmstrix prompt: give a subcommand: render\n")
            return EXIT_USAGE
        name = f"prompt {args.prompt_command}"
    if name is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    from ._session import Session, run_command

    session = Session.from_options({k: getattr(args, k, GLOBAL_DEFAULTS[k]) for k in _GLOBALS})
    module, function = COMMANDS[name]
    return run_command(session, module, function, **_arguments(args))
