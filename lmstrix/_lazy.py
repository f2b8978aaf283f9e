"""Public names imported on first use: one ``__getattr__``/``__dir__`` pair for a package.

``__getattr__, __dir__ = lazy_names(__name__, {"Name": "_module"})`` in a package's
``__init__`` makes ``package.Name`` import ``package._module`` the first time it is read
(and keep it), so importing the package stays light.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, List, Mapping, Tuple

__all__ = ["lazy_names"]


def lazy_names(
    package: str, where: Mapping[str, str]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for the names in ``where``
    (name -> the submodule of ``package`` that defines it)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(where))

    return __getattr__, __dir__
