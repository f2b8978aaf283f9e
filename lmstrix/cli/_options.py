"""Every command's arguments and options, declared once; both front ends render this table.

:data:`GLOBAL_OPTIONS` and :data:`COMMANDS` are plain data. ``_lite`` turns them into
argparse parsers and ``click_app`` into click commands, so a flag, its type, default,
choices and help are written here and nowhere else. A default that is the library's own
(the context search's ``trials``, the batch's ``retries``, the read timeout) is a
:class:`FromLibrary` reference to the library's signature or constant: an option left
out reaches the command as ``None`` and is not passed on, so the library applies its own
default, and the help shows that value, looked up when the command's help is rendered.
The CLI never restates a library default. Help texts are lower-case phrases;
``{default}`` in one is replaced by the default.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple

from ._checks import positive_seconds, server_url
from ._options_config import CONFIG_COMMANDS, CONFIG_GROUPS
from ._options_observe import (
    AUDIT_OPTIONS,
    CACHE,
    METRICS_OUT,
    OBSERVE_COMMANDS,
    OBSERVE_GROUPS,
    POST,
)
from ._options_text import TEXT_COMMANDS
from ._params import Argument, Command, FromLibrary, Option

__all__ = [
    "COMMANDS",
    "GLOBAL_OPTIONS",
    "GROUPS",
    "SIMULATED_APIS",
    "Argument",
    "Command",
    "FromLibrary",
    "flag_names",
    "given",
    "library_default",
    "Option",
    "positive_seconds",
    "server_url",
]


def given(**values: Any) -> Dict[str, Any]:
    """The keyword arguments whose value is not ``None``: the options a user gave.

    A command passes these on, so the library's own default applies to the others.
    """
    return {name: value for name, value in values.items() if value is not None}


def flag_names(target: Tuple[str, str]) -> Dict[str, str]:
    """Python names -> CLI flags, for the command implemented by ``target``.

    Only names a user would not take for English (``max_context``, ``context_length``):
    library messages naming them are shown with the flag (``--max``) instead.
    """
    names: Dict[str, str] = {}
    for command in COMMANDS:
        if command.target == target:
            names.update(command.flag_names())
    return {name: flag for name, flag in names.items() if "_" in name}


def library_default(command: str, dest: str) -> Any:
    """The default of option ``dest`` of ``command`` (a library default looked up now)."""
    found = next(c for c in COMMANDS if c.name == command)
    return next(o for o in found.options if o.dest == dest).resolved_default()


GLOBAL_OPTIONS: Tuple[Option, ...] = (
    Option(
        "server",
        ("--server",),
        "LM Studio server; repeat it for several (a pool) (default $LMSTRIX_SERVER, "
        "commas between several, else the port the local LM Studio wrote to "
        "~/.lmstudio/.internal/http-server.json, else {default})",
        type=server_url,
        default=FromLibrary("config", "DEFAULT_BASE_URL"),
        metavar="URL",
        multiple=True,
    ),
    Option(
        "token",
        ("--token",),
        "API token (default $LM_API_TOKEN, then $LMSTUDIO_API_TOKEN; prefer those: "
        "arguments show in process lists)",
        metavar="T",
    ),
    Option(
        "registry",
        ("--registry",),
        "registry file (default $LMSTRIX_REGISTRY, else $LMSTRIX_HOME/registry.json)",
        metavar="PATH",
    ),
    Option(
        "timeout",
        ("--timeout",),
        "read timeout in seconds (default {default})",
        type=positive_seconds,
        default=FromLibrary("config", "Timeout", "read_s"),
        metavar="SECONDS",
    ),
    Option("json", ("--json",), "machine output: one JSON document on stdout", kind="flag"),
    Option("verbose", ("-v", "--verbose"), "more logging (-vv: debug); tracebacks", kind="count"),
    Option("quiet", ("-q", "--quiet"), "no progress or warnings", kind="flag"),
    *AUDIT_OPTIONS,
)

#: The server generations ``lmstrix simulate --api`` offers.
SIMULATED_APIS = ("v1", "v0", "openai")

_SEARCH = "find_context_limit"
_TRIALS = Option(
    "trials",
    ("--trials",),
    "needles per size near the limit (default {default})",
    type=int,
    default=FromLibrary("context", _SEARCH, "trials"),
    metavar="N",
)
_TEMPERATURE = Option("temperature", ("--temperature",), type=float, metavar="T")
_MAX_TOKENS = Option("max_tokens", ("--max-tokens",), type=int, metavar="N")
_PROMPTS = Option("prompts", ("--prompts",), "prompt library (JSON or TOML)", metavar="FILE")
_MODEL = Argument("model", "MODEL")
_TTL = Option(
    "ttl",
    ("--ttl",),
    "unload the model after this many idle seconds",
    type=int,
    metavar="SECONDS",
)

GROUPS: Dict[str, str] = {"prompt": "prompt templates", **OBSERVE_GROUPS, **CONFIG_GROUPS}

COMMANDS: Tuple[Command, ...] = (
    Command(
        "doctor",
        "check the server, its API and auth, and the registry",
        "_cmd_models",
        "cmd_doctor",
    ),
    Command(
        "scan",
        "sync the registry with the server's models (keeps test results)",
        "_cmd_models",
        "cmd_scan",
    ),
    Command(
        "list",
        "models with declared, loadable and working context (the registry's alone when "
        "the server is not reachable)",
        "_cmd_models",
        "cmd_list",
    ),
    Command(
        "show",
        "one model's record, speed profile and probe history",
        "_cmd_models",
        "cmd_show",
        (_MODEL,),
        (
            Option(
                "plot",
                ("--plot",),
                "also draw the probes and the speed profile to FILE (.png, .svg, .pdf; "
                "needs the [plot] extra)",
                metavar="FILE",
            ),
        ),
    ),
    Command(
        "test",
        "find the loadable and working context of models",
        "_cmd_test",
        "cmd_test",
        (Argument("models", "MODEL", "*"),),
        (
            Option("all_models", ("--all",), "every chat model on the server", kind="flag"),
            Option(
                "min_context",
                ("--min",),
                "smallest load to try (default {default})",
                type=int,
                default=FromLibrary("context", _SEARCH, "min_context"),
                metavar="N",
            ),
            Option(
                "max_context",
                ("--max",),
                "largest load to try (default: the declared context)",
                type=int,
                metavar="N",
            ),
            Option(
                "resolution",
                ("--resolution",),
                "how close to the true limits, in tokens (default {default})",
                type=int,
                default=FromLibrary("context", _SEARCH, "resolution"),
                metavar="N",
            ),
            _TRIALS,
            Option("reset", ("--reset",), "forget earlier results and test again", kind="flag"),
            Option(
                "recheck",
                ("--recheck",),
                "re-confirm the recorded limits cheaply (one load, a few needles) and flag drift",
                kind="flag",
            ),
            METRICS_OUT,
        ),
    ),
    Command(
        "load",
        "load a model (LM Studio 0.4+)",
        "_cmd_instances",
        "cmd_load",
        (_MODEL,),
        (
            Option(
                "context",
                ("--context",),
                "context length, or 'tested': the registry's loadable context (a prompt "
                "of the working size still has room for its answer)",
                metavar="N|tested",
                aliases=("context_length",),
            ),
            _TTL,
            Option(
                "estimate",
                ("--estimate",),
                "do not load: print LM Studio's memory estimate (runs `lms load "
                "--estimate-only`; needs the lms command)",
                kind="flag",
            ),
        ),
    ),
    Command(
        "get",
        "download a model into LM Studio (0.4+), showing progress",
        "_cmd_manage",
        "cmd_get",
        (Argument("model", "MODEL", help="catalog id (publisher/name) or Hugging Face URL"),),
        (
            Option(
                "quantization",
                ("--quantization",),
                "the variant to get, like Q4_K_M (Hugging Face URLs only)",
                metavar="Q",
            ),
            Option(
                "poll",
                ("--poll",),
                "seconds between two progress checks (default {default})",
                type=positive_seconds,
                default=FromLibrary("client._downloads", "DEFAULT_POLL_S"),
                metavar="SECONDS",
            ),
        ),
    ),
    Command(
        "unload",
        "unload a model's instances, or all",
        "_cmd_instances",
        "cmd_unload",
        (Argument("model", "MODEL", "?"),),
        (Option("all_instances", ("--all",), "every loaded instance", kind="flag"),),
    ),
    Command(
        "ps",
        "loaded instances with their context and parallel slots",
        "_cmd_instances",
        "cmd_ps",
    ),
    Command(
        "chat",
        "ask a model a question (streamed on a terminal), or chat with it (no prompt)",
        "_cmd_chat",
        "cmd_chat",
        (Argument("model", "MODEL", "?"), Argument("prompt", "PROMPT", "?")),
        (
            Option(
                "models",
                ("-m", "--model"),
                "the model, instead of MODEL; repeat it for a fallback chain (tried in "
                "order; a model whose tested working context cannot hold the prompt is skipped)",
                metavar="M",
                multiple=True,
            ),
            Option(
                "file", ("-f", "--file"), "read the prompt from FILE (- = stdin)", metavar="FILE"
            ),
            Option("system", ("--system",), "system message", metavar="TEXT"),
            _TEMPERATURE,
            _MAX_TOKENS,
            Option(
                "ttl",
                ("--ttl",),
                "idle seconds before the server unloads the model, when this request loads it",
                type=int,
                metavar="SECONDS",
            ),
            Option(
                "stream",
                ("--stream", "--no-stream"),
                "stream the answer (default: on a terminal)",
                kind="switch",
            ),
            Option(
                "stats",
                ("--stats",),
                "time to first token, tokens/s and usage, on stderr",
                kind="flag",
            ),
            Option(
                "native",
                ("--native",),
                "ask through LM Studio 0.4's native chat, with model-load and prompt "
                "progress on stderr",
                kind="flag",
            ),
            _PROMPTS,
            Option(
                "template",
                ("--template",),
                "library entry to render as the prompt ({{input}} = the prompt)",
                metavar="NAME",
            ),
            Option(
                "variables",
                ("--var",),
                "a template variable (repeatable; dotted names nest)",
                metavar="K=V",
                multiple=True,
            ),
            CACHE,
            POST,
            Option(
                "schema",
                ("--schema",),
                "a JSON schema file: the answer is JSON that conforms to it (asked again "
                "once if not), printed whole",
                metavar="FILE",
            ),
        ),
    ),
    Command(
        "prompt render",
        "render a library entry",
        "_cmd_chat",
        "cmd_prompt_render",
        (Argument("file", "FILE"), Argument("name", "NAME")),
        (
            Option(
                "variables",
                ("--var",),
                "a variable (repeatable; dotted names nest)",
                metavar="K=V",
                multiple=True,
            ),
        ),
    ),
    Command(
        "batch",
        "run many prompts through a model, resumably",
        "_cmd_batch",
        "cmd_batch",
        (Argument("input", "INPUT", help="JSONL, CSV or text file of items"),),
        (
            Option(
                "output",
                ("-o", "--output"),
                "JSONL results (appended; done items are skipped on a rerun)",
                metavar="OUTPUT",
                required=True,
            ),
            Option(
                "model",
                ("-m", "--model"),
                "the model; repeat it for a fallback chain (tried in order)",
                metavar="M",
                required=True,
                multiple=True,
            ),
            Option("workers", ("--workers",), type=int, metavar="N"),
            _PROMPTS,
            Option("template", ("--template",), "library entry to render per item", metavar="NAME"),
            Option(
                "retries",
                ("--retries",),
                "retries of a failed item (default {default})",
                type=int,
                default=FromLibrary("batch", "run_batch", "retries"),
                metavar="N",
            ),
            Option("rpm", ("--rpm",), "requests per minute, at most", type=float, metavar="N"),
            Option(
                "order",
                ("--order",),
                "prefix: run items sharing a prompt prefix back to back, for the server's "
                "prompt cache (default with --template); input: as they come",
                choices=("prefix", "input"),
            ),
            _TEMPERATURE,
            _MAX_TOKENS,
            CACHE,
            POST,
            METRICS_OUT,
        ),
    ),
    *OBSERVE_COMMANDS,
    *CONFIG_COMMANDS,
    *TEXT_COMMANDS,
    Command(
        "demo",
        "run the whole job on the built-in simulator",
        "_demo",
        "run_demo",
        options=(_TRIALS,),
    ),
    Command(
        "simulate",
        "serve the simulated LM Studio until Ctrl-C",
        "_demo",
        "cmd_simulate",
        options=(
            Option(
                "port",
                ("--port",),
                "port on 127.0.0.1 (default {default}; 0 picks a free one)",
                type=int,
                default=FromLibrary("testing", "serve", "port"),
                metavar="N",
            ),
            Option(
                "api",
                ("--api",),
                "server generation to simulate (default {default})",
                default=FromLibrary("testing", "FakeLMStudio", "api"),
                choices=SIMULATED_APIS,
            ),
            Option(
                "time_scale",
                ("--time-scale",),
                "real seconds per simulated second (default {default}: no sleeping)",
                type=float,
                default=FromLibrary("testing", "FakeLMStudio", "time_scale"),
                metavar="X",
            ),
        ),
    ),
    Command(
        "plugins",
        "installed plugins: which loaded, what each adds (set LMSTRIX_NO_PLUGINS=1 to load none)",
        "_plugins",
        "cmd_plugins",
    ),
)
