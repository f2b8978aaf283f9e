"""The option table's entries for the user's settings: ``lmstrix config set|get|unset|list``.

Part of the one table of :mod:`lmstrix.cli._options` (which takes these in), kept apart
to keep modules short; implemented in :mod:`lmstrix.cli._cmd_config`.
"""

from __future__ import annotations

from typing import Dict, Tuple

from ._params import Argument, Command

__all__ = ["CONFIG_COMMANDS", "CONFIG_GROUPS"]

CONFIG_GROUPS: Dict[str, str] = {
    "config": "user settings (default-model), kept in settings.json beside the registry"
}

_NAME = Argument("name", "NAME", help="a setting: default-model")

CONFIG_COMMANDS: Tuple[Command, ...] = (
    Command(
        "config set",
        "set a setting (lmstrix config set default-model KEY)",
        "_cmd_config",
        "cmd_config_set",
        (_NAME, Argument("value", "VALUE")),
    ),
    Command(
        "config get",
        "print a setting's value (exit 1 when it is not set)",
        "_cmd_config",
        "cmd_config_get",
        (_NAME,),
    ),
    Command(
        "config unset",
        "forget a setting",
        "_cmd_config",
        "cmd_config_unset",
        (_NAME,),
    ),
    Command(
        "config list",
        "every setting, its value and what it does",
        "_cmd_config",
        "cmd_config_list",
    ),
)
