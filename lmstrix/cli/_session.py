"""One CLI run: the global options, the output, a lazily made client and registry.

Both front ends (``click_app`` and ``_lite``) parse arguments into a :class:`Session`
and the keyword arguments of one command function, then call :func:`run_command`,
which imports the command's module, runs it, and turns library errors into messages
and exit codes (0 ok, 1 failure, 2 bad usage or input, 130 interrupted). Nothing here
imports more than the standard library.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import re
import sys
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    TextIO,
    Tuple,
    Union,
)

from ._output import EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, Output, StdoutClosed

if TYPE_CHECKING:
    from ..client._client import Client
    from ..pool._pool import Pool
    from ..registry._registry import Registry

__all__ = ["CliError", "Session", "UsageError", "run_command"]


class CliError(Exception):
    """A failure the CLI reports in one line; ``exit_code`` is 1 unless said otherwise."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code


class UsageError(CliError):
    """Bad usage or bad input (an option value, an unreadable file): exit 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class Session(Output):
    """The global options of one run, its output, and the client and registry it uses.

    ``server``, ``token`` and ``registry_path`` fall back to ``$LMSTRIX_SERVER``,
    ``$LM_API_TOKEN``/``$LMSTUDIO_API_TOKEN`` and ``$LMSTRIX_REGISTRY``/``$LMSTRIX_HOME``
    the way the library does. The token is registered as a secret of the output.
    """

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> Session:
        """A session from the global options as both front ends parse them."""
        return cls(
            server=options["server"],
            token=options["token"],
            registry_path=options["registry"],
            timeout_s=options["timeout"],
            as_json=bool(options["json"]),
            verbosity=-1 if options["quiet"] else int(options["verbose"]),
            audit_path=options["audit"],
            label=options["label"],
        )

    def __init__(
        self,
        *,
        server: Union[str, Sequence[str], None] = None,
        token: Optional[str] = None,
        registry_path: Optional[str] = None,
        timeout_s: Optional[float] = None,
        as_json: bool = False,
        verbosity: int = 0,
        stdout: Optional[TextIO] = None,
        stderr: Optional[TextIO] = None,
        stdin: Optional[IO[str]] = None,
        audit_path: Optional[str] = None,
        label: Optional[str] = None,
    ) -> None:
        super().__init__(
            as_json=as_json, verbosity=verbosity, stdout=stdout, stderr=stderr, stdin=stdin
        )
        given = [server] if isinstance(server, str) else list(server or [])
        self.server_options: List[str] = [s for s in given if s]
        self.server = self.server_options[0] if self.server_options else None
        self.token = token or None
        self.registry_path = registry_path or None
        self.timeout_s = timeout_s
        self._client: Optional[Client] = None
        self._found: Optional[str] = None  # the server found on disk ("" for none)
        self._clients: Optional[List[Client]] = None
        self._pool: Optional[Pool] = None
        self._registry: Optional[Registry] = None
        self.label = label or None
        self.plugins: Any = None  # lmstrix.plugins.Plugins when the CLI loaded them
        self._observers: List[Any] = []
        self._middleware: List[Any] = []
        self._attached: Dict[str, Callable[[], Any]] = {}
        if audit_path:
            from ..observe._audit import AuditLog

            self._observers.append(AuditLog(audit_path, label=self.label))
        from ..config import resolve_token

        self.add_secret(resolve_token(self.token))

    @property
    def servers(self) -> List[str]:
        """The server URLs of this run (normalised, in order, each once).

        ``--server`` given several times, else ``$LMSTRIX_SERVER`` (commas between
        several), else the local LM Studio found on disk (said once on stderr), else the
        default server. A bad URL is a usage error naming it.
        """
        from ..config import ENV_SERVER, normalize_base_url, resolve_base_url
        from ._checks import server_url

        if self.server_options:
            where, raw = "--server", self.server_options
        else:
            where = f"${ENV_SERVER}"
            raw = [part.strip() for part in os.environ.get(ENV_SERVER, "").split(",")]
            raw = [part for part in raw if part]
        if not raw:
            return [self._found_server() or resolve_base_url(None, {})]
        urls: List[str] = []
        for text in raw:
            try:
                server_url(text)
                url = normalize_base_url(text)
            except ValueError as exc:
                raise UsageError(f"{where}: {exc}") from None
            if url not in urls:
                urls.append(url)
        return urls

    def _found_server(self) -> Optional[str]:
        """The server LM Studio's port file names (looked up once per run), or None."""
        if self._found is None:
            from .._discovery import discover_server

            found = discover_server()
            self._found = found.url if found else ""
            if found:
                self.note(f"using the LM Studio server found in {found.path}: {found.url}")
        return self._found or None

    @property
    def several(self) -> bool:
        """True when this run talks to more than one server."""
        return len(self.servers) > 1

    @property
    def base_url(self) -> str:
        """The (first) server URL this run talks to; a bad one is a usage error."""
        return self.servers[0]

    def client(self) -> Client:
        """The run's :class:`~lmstrix.Client` (made on first use, closed by :meth:`close`).

        For commands that work on one server: with several, a usage error.
        """
        self.one_server()
        if self._client is None:
            self._client = self._new_client(self.base_url)
        return self._client

    def one_server(self) -> None:
        """A usage error when several servers were given (for one-server commands)."""
        if self.several:
            raise UsageError(
                f"this command works on one server at a time, and {len(self.servers)} were "
                "given (--server or $LMSTRIX_SERVER): give one"
            )

    def observe(self, observer: Any) -> None:
        """Give every client this run makes ``observer`` too (call it before the first)."""
        self._not_made("an observer")
        self._observers.append(observer)

    def add_middleware(self, middleware: Any) -> None:
        """Put ``middleware`` on every client this run makes (call it before the first)."""
        self._not_made("a middleware")
        self._middleware.append(middleware)

    def attach(self, key: str, value: Callable[[], Any]) -> None:
        """Add ``key`` (``value()`` when emitted) to the command's JSON document."""
        self._attached[key] = value

    def emit(self, document: Any) -> None:
        """The command's JSON document, with what was attached (``metrics``)."""
        if isinstance(document, dict) and self._attached:
            document = {**document, **{k: value() for k, value in self._attached.items()}}
        super().emit(document)

    def _not_made(self, what: str) -> None:
        if self._client is not None or self._clients is not None or self._pool is not None:
            raise RuntimeError(f"{what} must be added before the first client is made")

    def _client_options(self, options: Dict[str, Any]) -> Dict[str, Any]:
        """``options`` with the run's observers, middleware and label added."""
        merged = dict(options)
        merged["observers"] = [*self._observers, *options.get("observers", ())]
        merged["middleware"] = [*self._middleware, *options.get("middleware", ())]
        if self.label is not None:
            merged.setdefault("label", self.label)
        return merged

    def _new_client(self, url: str, **options: Any) -> Client:
        from ..client._client import Client

        return Client(
            url, api_token=self.token, timeout=self.timeout_s, **self._client_options(options)
        )

    def clients(self) -> List[Client]:
        """One :class:`~lmstrix.Client` per server (the one client with one server)."""
        if not self.several:
            return [self.client()]
        if self._clients is None:
            self._clients = [self._new_client(url) for url in self.servers]
        return self._clients

    def chat_client(self, **options: Any) -> Any:
        """What answers ``chat`` and ``batch``: a Client, or a Pool over several servers.

        ``options`` (``registry=``, ``observers=``) go to the Client or the Pool (and so
        to each of its clients). Made once per run.
        """
        if not self.several:
            if self._client is None:
                self._client = self._new_client(self.base_url, **options)
            return self._client
        if self._pool is None:
            from ..pool._pool import Pool

            self._pool = Pool(
                self.servers,
                api_token=self.token,
                timeout=self.timeout_s,
                **self._client_options(options),
            )
        return self._pool

    def registry(self) -> Registry:
        """The run's :class:`~lmstrix.Registry`, scoped to this run's server."""
        if self._registry is None:
            from ..registry._registry import Registry

            self._registry = Registry(self.registry_path, server=self.base_url)
        return self._registry

    def unknown_model(self, key: str, cause: Optional[Exception] = None) -> Exception:
        """The error for an unknown model, with close matches from the server and registry.

        When ``cause`` (the server's own "not found" error) is given and the server does
        list ``key`` after all, ``cause`` is returned unchanged.
        """
        from ..errors import RegistryError

        client = self.chat_client() if self.several else self.client()
        models = client.list_models()
        known = [m.key for m in models]
        if cause is not None and key in known + [i.id for m in models for i in m.loaded_instances]:
            return cause
        with contextlib.suppress(RegistryError):  # a damaged registry must not hide this
            for url in self.servers:
                records = self.registry().records(server=url)
                known += [r.key for r in records if r.key not in known]
        from ..client._detect import model_not_found

        return model_not_found(" or ".join(self.servers), key, known)

    def close(self) -> None:
        """Close the client's connections."""
        clients = [self._client, self._pool, *(self._clients or [])]
        self._client = self._pool = self._clients = None
        for client in clients:
            if client is not None:
                client.close()


class _Handler(logging.Handler):
    """Library log records, on the session's stderr, token blanked out."""

    def __init__(self, session: Session) -> None:
        super().__init__()
        self.session = session

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = record.getMessage()
        except Exception:  # pragma: no cover - a broken log call must not kill a command
            text = str(record.msg)
        level = record.levelname.lower()
        where = f" {record.name}" if self.session.verbosity > 0 else ""
        self.session._err(f"{level}{where}: {text}")


def _log_level(verbosity: int) -> int:
    if verbosity < 0:
        return logging.ERROR
    return {0: logging.WARNING, 1: logging.INFO}.get(verbosity, logging.DEBUG)


def run_command(session: Session, module: str, function: str, **arguments: Any) -> int:
    """Run ``lmstrix.cli.<module>.<function>(session, **arguments)``; return the exit code.

    A ``module`` not starting with ``_`` is a full module path (a plugin's command).

    This is the one place where errors become CLI messages: a failure is one line on
    stderr (a traceback too with ``-v``), never a secret.
    """
    logger = logging.getLogger("lmstrix")
    handler = _Handler(session)
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(_log_level(session.verbosity))
    try:
        path = f"{__package__}.{module}" if module.startswith("_") else module
        command = getattr(importlib.import_module(path), function)
        return int(command(session, **arguments))
    except KeyboardInterrupt:
        session.error("interrupted")
        return EXIT_INTERRUPTED
    except StdoutClosed:  # the reader went away (`| head`): nothing more to say
        _silence(session)
        return EXIT_OK
    except BaseException as exc:  # every failure becomes one line and an exit code
        code = _exit_code(exc)
        if code is None:
            raise
        if session.verbosity > 0:
            import traceback

            session._err("".join(traceback.format_exception(type(exc), exc, exc.__traceback__)))
        session.error(_message(exc, (module, function)))
        return code
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)
        session.close()


def _exit_code(exc: BaseException) -> Optional[int]:
    """The exit code for an error, or ``None`` for what must propagate (SystemExit)."""
    from ..errors import ConfigError, LMStrixError, TemplateError

    if isinstance(exc, CliError):
        return exc.exit_code
    if isinstance(exc, (ConfigError, TemplateError)):
        return EXIT_USAGE
    if isinstance(exc, LMStrixError):
        return EXIT_FAILURE
    if isinstance(exc, (SystemExit, GeneratorExit)):
        return None
    return EXIT_FAILURE


def _silence(session: Session) -> None:
    """Point a closed stdout at the null device, so the exit-time flush cannot fail."""
    if session.stdout is not sys.stdout:
        return
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(null, sys.stdout.fileno())
        finally:
            os.close(null)
    except (OSError, ValueError):  # no file descriptor (a test's stream)
        pass


def _message(exc: BaseException, target: Tuple[str, str]) -> str:
    """The one-line message for ``exc`` raised by the command ``target``."""
    from ..errors import LMStrixError

    if isinstance(exc, CliError):
        return str(exc)
    if not isinstance(exc, LMStrixError):
        return f"{type(exc).__name__}: {exc} (run with -v for the traceback)"
    text = str(exc)
    from ._options import flag_names

    for name, flag in flag_names(target).items():  # name the flags the user typed
        text = re.sub(rf"\b{name}\b", flag, text)
    return text
