"""The whole lmstrix exception tree.

Every error lmstrix raises derives from :class:`LMStrixError`, and also from the
built-in exception that fits it best (``ValueError``, ``LookupError``,
``ConnectionError``, ``TimeoutError``), so callers that already catch those keep
working. Messages say what failed, where (URL, model, file and line) and what to do.
No message, ``repr`` or attribute ever holds an API token.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Sequence, Tuple

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "ConfigError",
    "ContextOverflowError",
    "ContextSearchError",
    "FallbackError",
    "LMStrixError",
    "MissingVariableError",
    "ModelLoadError",
    "ModelNotFoundError",
    "PermissionDeniedError",
    "QuotaExceededError",
    "RegistryCorruptError",
    "RegistryError",
    "SchemaValidationError",
    "StreamError",
    "TemplateCycleError",
    "TemplateError",
    "TemplateSyntaxError",
    "ToolCallError",
    "ToolLoopError",
]


class LMStrixError(Exception):
    """Root of every error raised by lmstrix.

    Errors pickle with their attributes (``status_code``, ``url``, ...), so an error raised
    in another process (a batch on an executor) reaches the caller whole.
    """

    def __reduce__(self) -> Tuple[Any, ...]:
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: Any, args: Tuple[Any, ...], state: Dict[str, Any]) -> LMStrixError:
    """Unpickle an error without calling an ``__init__`` whose arguments differ from ``args``."""
    error: LMStrixError = cls.__new__(cls)
    Exception.__init__(error, *args)
    error.__dict__.update(state)
    return error


class ConfigError(LMStrixError, ValueError):
    """A setting (argument, environment variable or file) is invalid."""


class APIError(LMStrixError):
    """A request to the server failed; ``url`` names the endpoint when known."""

    def __init__(self, message: str, *, url: Optional[str] = None) -> None:
        super().__init__(message)
        self.message = message
        self.url = url


class APIConnectionError(APIError, ConnectionError):
    """The server could not be reached, or the connection broke before an answer.

    ``sent`` says whether the request may have reached the server (``False``: it
    surely did not, so sending it again is safe).
    """

    def __init__(self, message: str, *, url: Optional[str] = None, sent: bool = True) -> None:
        super().__init__(message, url=url)
        self.sent = sent


class APITimeoutError(APIConnectionError, TimeoutError):
    """The server did not connect or answer within the timeout."""


class APIStatusError(APIError):
    """The server answered with an error (HTTP status, or an ``error`` body on a 200).

    ``status_code`` is the HTTP status and ``body`` the parsed JSON body (or the raw
    text when the body was not JSON).
    """

    def __init__(
        self,
        message: str,
        *,
        url: Optional[str] = None,
        status_code: int = 0,
        body: Any = None,
        model: Optional[str] = None,
    ) -> None:
        super().__init__(message, url=url)
        self.status_code = status_code
        self.body = body
        self.model = model


class AuthenticationError(APIStatusError, PermissionError):
    """The server wants an API token, or refused the one given (HTTP 401/403)."""


class ModelNotFoundError(APIStatusError, LookupError):
    """The server does not know the model (or no model is loaded)."""


class ModelLoadError(APIStatusError):
    """The server refused or failed to load a model (guardrail, crash, out of memory)."""


class ContextOverflowError(APIStatusError, ValueError):
    """The prompt does not fit in the context the model is loaded with."""


class FallbackError(APIError):
    """Every model of a fallback chain was skipped or failed; ``failures`` says each why.

    ``failures`` is a list of ``(model, reason)``; ``errors`` holds the exceptions of the
    models that were tried (skipped ones, which were never sent a request, have none).
    """

    def __init__(
        self,
        message: str,
        *,
        failures: Sequence[Tuple[str, str]],
        errors: Sequence[BaseException] = (),
    ) -> None:
        super().__init__(message)
        self.failures = list(failures)
        self.errors = list(errors)


class StreamError(APIError):
    """A stream failed after it started: an error event, a cut or a truncated stream.

    ``text`` holds what was received before the failure, ``kind`` names the failure
    (``error_event``, ``truncated``, ``disconnected``, ``timeout``, ``empty``,
    ``bad_event``, ``line_too_long``) and ``body`` the error payload when the server sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        url: Optional[str] = None,
        text: str = "",
        kind: str = "error_event",
        body: Any = None,
    ) -> None:
        super().__init__(message, url=url)
        self.text = text
        self.kind = kind
        self.body = body


class SchemaValidationError(LMStrixError, ValueError):
    """A structured answer was not JSON, or broke its schema, on every try.

    ``errors`` lists what was wrong with the last answer (each message starts with the
    JSON path at fault, ``$`` for the whole value), ``text`` is that answer as the model
    wrote it, ``tries`` how many answers were asked for, and ``model`` the model.
    """

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[str] = (),
        text: str = "",
        tries: int = 1,
        model: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors)
        self.text = text
        self.tries = tries
        self.model = model


class RegistryError(LMStrixError):
    """The registry file could not be read, locked or written."""


class RegistryCorruptError(RegistryError, ValueError):
    """The registry file is not valid; it is left untouched.

    ``path``, ``lineno`` and ``colno`` locate the problem (1-based; 0 when unknown).
    """

    def __init__(self, message: str, *, path: str, lineno: int = 0, colno: int = 0) -> None:
        super().__init__(message)
        self.path = path
        self.lineno = lineno
        self.colno = colno


class TemplateError(LMStrixError, ValueError):
    """A prompt template or prompt library is invalid or cannot be rendered."""


class MissingVariableError(TemplateError, LookupError):
    """Placeholders had no value; ``missing`` lists every missing name, in order."""

    def __init__(self, message: str, *, missing: Sequence[str]) -> None:
        super().__init__(message)
        self.missing: Tuple[str, ...] = tuple(missing)


class TemplateSyntaxError(TemplateError):
    """Text could not be parsed: a malformed placeholder, or an invalid library file.

    Also importable as ``lmstrix.prompts.TemplateSyntaxError``.

    ``source`` says where (``template``, ``entry 'greeting'`` or a file path);
    ``lineno`` and ``colno`` locate the problem (1-based; 0 when unknown).
    """

    def __init__(self, message: str, *, source: str, lineno: int = 0, colno: int = 0) -> None:
        super().__init__(message)
        self.source = source
        self.lineno = lineno
        self.colno = colno


class TemplateCycleError(TemplateError):
    """Library entries refer to each other in a loop; ``cycle`` lists it, first name last too."""

    def __init__(self, message: str, *, cycle: Sequence[str]) -> None:
        super().__init__(message)
        self.cycle: Tuple[str, ...] = tuple(cycle)


class ContextSearchError(LMStrixError):
    """The context-limit search could not run (bad bounds, no usable model or server)."""


class QuotaExceededError(LMStrixError):
    """A call would go over a client-side budget or rate limit; nothing was sent.

    ``label`` is the user or tenant (``None`` for unlabelled calls), ``limit`` the quota,
    ``used`` what was already counted against it, ``requested`` this call's estimate, and
    ``retry_after_s`` when trying again may succeed (``None`` when unknown).
    """

    def __init__(
        self,
        message: str,
        *,
        label: Optional[str] = None,
        limit: float = 0,
        used: float = 0,
        requested: float = 0,
        retry_after_s: Optional[float] = None,
    ) -> None:
        super().__init__(message)
        self.label = label
        self.limit = limit
        self.used = used
        self.requested = requested
        self.retry_after_s = retry_after_s


class PermissionDeniedError(LMStrixError, PermissionError):
    """A client-side :class:`~lmstrix.limits.Policy` refused a call; nothing was sent.

    ``label``, ``model`` and ``operation`` name what was refused. This is no security
    boundary: the server's own API token permissions are.
    """

    def __init__(
        self,
        message: str,
        *,
        label: Optional[str] = None,
        model: Optional[str] = None,
        operation: Optional[str] = None,
    ) -> None:
        super().__init__(message)
        self.label = label
        self.model = model
        self.operation = operation


class ToolCallError(LMStrixError, ValueError):
    """A tool call cannot be used as it is: its arguments are not a JSON object.

    ``call`` is the :class:`~lmstrix.types.ToolCall` at fault.
    """

    def __init__(self, message: str, *, call: Any = None) -> None:
        super().__init__(message)
        self.call = call


class ToolLoopError(LMStrixError):
    """A tool loop reached its step limit while the model still asked for tools.

    ``run`` is the :class:`~lmstrix.client.ToolRun` so far (its ``messages`` hold the whole
    exchange, its ``completion`` the last answer, whose ``tool_calls`` were not run).
    """

    def __init__(self, message: str, *, run: Any = None) -> None:
        super().__init__(message)
        self.run = run
