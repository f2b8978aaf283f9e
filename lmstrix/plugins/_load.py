"""Finding and loading plugins: the ``lmstrix.plugins`` entry-point group.

Nothing here runs on ``import lmstrix``: :func:`installed` lists the entry points
without importing them, and :func:`load` imports them when asked (the CLI asks at
start-up unless ``LMSTRIX_NO_PLUGINS`` is set). An entry point names a plugin object: a
module, an instance, or a class (made with no arguments). The object may have any of
``middleware()``, ``observers()``, ``prompt_formats()``, ``post_processors()``,
``routers()`` and ``cli_commands()``. A plugin that fails to import, or whose hook fails
or returns the wrong kind of thing, is skipped whole, with one :class:`PluginWarning`
naming it and the error; the others load.
"""

from __future__ import annotations

import os
import pathlib
import sys
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple

from .._log import logger

# Imported when used: the CLI loads plugins at every start, and with none installed that
# must cost little more than reading a few folder listings.
if TYPE_CHECKING:
    from ..prompts import PromptFormat
    from ..types import Completion
    from ._post import PostProcessor

__all__ = [
    "HOOKS",
    "NO_PLUGINS_ENV",
    "PLUGIN_GROUP",
    "PluginInfo",
    "PluginWarning",
    "Plugins",
    "installed",
    "load",
]

log = logger(__name__)

PLUGIN_GROUP = "lmstrix.plugins"
NO_PLUGINS_ENV = "LMSTRIX_NO_PLUGINS"
HOOKS = (
    "middleware",
    "observers",
    "prompt_formats",
    "post_processors",
    "routers",
    "cli_commands",
)


class PluginWarning(UserWarning):
    """A plugin failed to load and was skipped."""


@dataclass(frozen=True)
class PluginInfo:
    """One installed plugin: its entry point, its distribution, and what loading did.

    ``provides`` names the hooks it answered; ``error`` says why it was skipped (``None``
    when it loaded, or when it was only listed).
    """

    name: str
    value: str
    distribution: Optional[str] = None
    version: Optional[str] = None
    loaded: bool = False
    provides: Tuple[str, ...] = ()
    error: Optional[str] = None

    def to_dict(self) -> Dict[str, Any]:
        """A JSON-ready dictionary (``lmstrix plugins --json``)."""
        return {
            "name": self.name,
            "value": self.value,
            "distribution": self.distribution,
            "version": self.version,
            "loaded": self.loaded,
            "provides": list(self.provides),
            "error": self.error,
        }


def _builtins() -> Dict[str, PostProcessor]:
    from ._post import BUILTIN_POST_PROCESSORS

    return dict(BUILTIN_POST_PROCESSORS)


@dataclass
class Plugins:
    """What the loaded plugins provide, gathered; pass the parts where they belong.

    ``Client(middleware=plugins.middleware, observers=plugins.observers)``,
    ``PromptLibrary.from_file(path, formats=plugins.prompt_formats)``,
    ``Pool(servers, prefer=plugins.routers["name"])``, and
    :meth:`post_process` for the post-processors (the built-in ones included).
    """

    infos: List[PluginInfo] = field(default_factory=list)
    middleware: List[Any] = field(default_factory=list)
    observers: List[Any] = field(default_factory=list)
    prompt_formats: List[PromptFormat] = field(default_factory=list)
    post_processors: Dict[str, PostProcessor] = field(default_factory=_builtins)
    routers: Dict[str, Callable[..., Any]] = field(default_factory=dict)
    cli_commands: List[Any] = field(default_factory=list)

    def post_process(self, done: Completion, names: Sequence[str]) -> Completion:
        """Apply the post-processors ``names`` to ``done``, in order."""
        from ._post import post_process

        return post_process(done, names, self.post_processors)


def installed(group: str = PLUGIN_GROUP) -> List[PluginInfo]:
    """The plugins installed in this environment, not loaded (nothing is imported)."""
    return [_info(entry) for entry in _entry_points(group)]


def load(group: str = PLUGIN_GROUP) -> Plugins:
    """Import every installed plugin and gather what each provides.

    A failing plugin is skipped with one :class:`PluginWarning`; the result's ``infos``
    says which loaded and why the others did not.
    """
    found = Plugins()
    for entry in _entry_points(group):
        info = _info(entry)
        try:
            target = entry.load()
            parts = _gather(target() if isinstance(target, type) else target)
        except Exception as exc:  # a plugin's failure never breaks its host
            error = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"lmstrix plugin {info.name!r} ({info.value}) failed and was skipped: {error}",
                PluginWarning,
                stacklevel=2,
            )
            log.debug("plugin %s failed", info.name, exc_info=True)
            found.infos.append(_replaced(info, error=error))
            continue
        found.middleware.extend(parts.get("middleware", ()))
        found.observers.extend(parts.get("observers", ()))
        found.prompt_formats.extend(parts.get("prompt_formats", ()))
        found.post_processors.update(parts.get("post_processors", {}))
        found.routers.update(parts.get("routers", {}))
        found.cli_commands.extend(parts.get("cli_commands", ()))
        found.infos.append(_replaced(info, loaded=True, provides=tuple(parts)))
    return found


def _gather(plugin: Any) -> Dict[str, Any]:
    """Call each hook ``plugin`` has, and check what it returns (all, or raise)."""
    parts: Dict[str, Any] = {}
    for hook in HOOKS:
        method = getattr(plugin, hook, None)
        if method is None:
            continue
        value = method()
        if hook in ("post_processors", "routers"):
            if not isinstance(value, Mapping) or not all(
                isinstance(k, str) and callable(v) for k, v in value.items()
            ):
                raise TypeError(f"{hook}() must return a mapping of names to callables")
            parts[hook] = dict(value)
            continue
        items = list(value)
        if hook == "prompt_formats":
            from ..prompts import PromptFormat

            bad = [x for x in items if not isinstance(x, PromptFormat)]
        elif hook == "cli_commands":
            bad = [x for x in items if not hasattr(x, "name") or not hasattr(x, "target")]
        else:
            bad = [x for x in items if not callable(x)]
        if bad:
            raise TypeError(f"{hook}() returned {bad[0]!r}, which is not what it takes")
        parts[hook] = items
    return parts


def _entry_points(group: str) -> List[Any]:
    """The entry points of ``group`` (each once, by name), from the ``.dist-info`` and
    ``.egg-info`` folders on ``sys.path``.

    The same places ``importlib.metadata`` reads, read the cheap way: only the
    ``entry_points.txt`` files that mention the group are parsed (``entry_points()``
    parses every distribution's, tens of milliseconds at each CLI start).
    """
    header = f"[{group}]"
    seen: Dict[str, Any] = {}
    for folder in sys.path:
        try:
            names = sorted(os.listdir(folder or "."))
        except OSError:  # a zip file, or gone
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            path = os.path.join(folder or ".", name, "entry_points.txt")
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read()
            except OSError:
                continue
            if header not in text:
                continue
            from importlib import metadata  # only for a distribution that names the group

            dist = metadata.PathDistribution(pathlib.Path(path).parent)
            for entry in dist.entry_points:
                if entry.group == group and entry.name not in seen:  # first on the path wins
                    seen[entry.name] = (entry, dist)
    return [_Found(entry, dist) for entry, dist in (seen[k] for k in sorted(seen))]


@dataclass(frozen=True)
class _Found:
    """An entry point and the distribution it came from (3.8's have no ``.dist``)."""

    entry: Any
    dist: Any

    @property
    def name(self) -> str:
        return str(self.entry.name)

    @property
    def value(self) -> str:
        return str(self.entry.value)

    def load(self) -> Any:
        return self.entry.load()


def _info(found: _Found) -> PluginInfo:
    meta = found.dist.metadata
    return PluginInfo(found.name, found.value, meta["Name"], meta["Version"])


def _replaced(info: PluginInfo, **changes: Any) -> PluginInfo:
    from dataclasses import replace

    return replace(info, **changes)
