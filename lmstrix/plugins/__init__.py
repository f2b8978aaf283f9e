"""Plugins: extensions other packages install, loaded only when asked.

``import lmstrix`` never loads a plugin. :func:`load` imports those installed under the
``lmstrix.plugins`` entry-point group and gathers what they provide (:class:`Plugins`);
the CLI calls it at start-up unless ``LMSTRIX_NO_PLUGINS`` is set. See
``docs/user-guide/plugins.md`` for writing one, and ``examples/plugins/`` for an example.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._lazy import lazy_names
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
_POST = ("BUILTIN_POST_PROCESSORS", "PostProcessError", "PostProcessingClient", "PostProcessor")
__getattr__, __dir__ = lazy_names(__name__, dict.fromkeys((*_POST, "post_process"), "_post"))
del lazy_names
