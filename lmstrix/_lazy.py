"""Public names imported on first use: one ``__getattr__``/``__dir__`` pair for a package.

``__getattr__, __dir__ = lazy_names(__name__, {"Name": ".module"}, __all__)`` in a
package's ``__init__`` makes ``package.Name`` import ``package.module`` the first time it
is read (and keep it), so importing the package stays light.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Callable, List, Mapping, Sequence, Tuple

__all__ = ["lazy_names"]


def lazy_names(
    package: str, where: Mapping[str, str], public: Sequence[str]
) -> Tuple[Callable[[str], Any], Callable[[], List[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of ``package`` for the names in ``where``
    (name -> module, relative to ``package``)."""

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        setattr(sys.modules[package], name, value)  # later look-ups skip this function
        return value

    def __dir__() -> List[str]:
        return sorted(set(vars(sys.modules[package])) | set(public))

    return __getattr__, __dir__
