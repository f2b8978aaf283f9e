"""Plugins: extensions other packages install, loaded only when asked.

``import lmstrix`` never loads a plugin. :func:`load` imports those installed under the
``lmstrix.plugins`` entry-point group and gathers what they provide (:class:`Plugins`);
the CLI calls it at start-up unless ``LMSTRIX_NO_PLUGINS`` is set. See
``docs/user-guide/plugins.md`` for writing one, and ``examples/plugins/`` for an example.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._load import (
    HOOKS,
    NO_PLUGINS_ENV,
    PLUGIN_GROUP,
    PluginInfo,
    Plugins,
    PluginWarning,
    installed,
    load,
)

if TYPE_CHECKING:
    from ._post import (
        BUILTIN_POST_PROCESSORS,
        PostProcessError,
        PostProcessingClient,
        PostProcessor,
        post_process,
    )

__all__ = [
    "BUILTIN_POST_PROCESSORS",
    "HOOKS",
    "NO_PLUGINS_ENV",
    "PLUGIN_GROUP",
    "PluginInfo",
    "PluginWarning",
    "Plugins",
    "PostProcessError",
    "PostProcessingClient",
    "PostProcessor",
    "installed",
    "load",
    "post_process",
]

# The post-processors' module is imported on first use (the CLI loads plugins at start).
_LAZY = frozenset(
    ("BUILTIN_POST_PROCESSORS", "PostProcessError", "PostProcessingClient", "PostProcessor")
) | {"post_process"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'lmstrix.plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module("._post", __name__), name)
    globals()[name] = value
    return value
