"""The import arrows of docs/development/architecture.md hold: every module's imports are
parsed and checked against the layer table there (no upward or sideways import, no extra
outside its own module, nothing importing ``integrations``), and no module passes 500 lines."""

from __future__ import annotations

import ast
import importlib.util
import re
import sys
import sysconfig
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import lmstrix

PACKAGE = Path(lmstrix.__file__).parent
ARCHITECTURE = Path(__file__).parent.parent / "docs" / "development" / "architecture.md"
MAX_LINES = 500

# Modules allowed to import a third-party package (the extra named beside each).
EXTRA_MODULES: Dict[str, Set[str]] = {
    "lmstrix.transport._requests": {"requests", "urllib3"},
    "lmstrix.requests_transport": set(),  # re-exports lmstrix.transport._requests
    "lmstrix.cli.click_app": {"click"},
}
EXTRA_PACKAGES: Dict[str, Set[str]] = {
    "lmstrix.integrations": {"*"},  # each integration imports its own extra
    "lmstrix.observe.otel": {"opentelemetry"},
}


def layer_table() -> Dict[str, int]:
    """Unit (package, or ``base`` for the root modules) -> layer, from architecture.md."""
    text = ARCHITECTURE.read_text(encoding="utf-8")
    block = text.split("<!-- layers:start -->", 1)[1].split("<!-- layers:end -->", 1)[0]
    table: Dict[str, int] = {}
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 2 or not cells[0].isdigit():
            continue
        units = [u.rstrip("/") for u in re.findall(r"`([\w./]+)`", cells[1])]
        for unit in units[:1] if units[:1] == ["base"] else units:  # base: the root modules
            table[unit] = int(cells[0])
    return table


def modules() -> Iterator[Tuple[str, Path]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        yield ".".join(parts), path


def unit_of(module: str, table: Dict[str, int]) -> str:
    """The layer unit a module belongs to: its subpackage, its own name, or ``base``."""
    parts = module.split(".")
    if module == "lmstrix":
        return "__init__.py"
    if len(parts) >= 2 and parts[1] in table:
        return parts[1]
    if len(parts) >= 2 and f"{parts[1]}.py" in table:
        return f"{parts[1]}.py"
    return "base"


def imports_of(module: str, path: Path) -> Iterator[Tuple[int, str]]:
    """(line, absolute module name) for every import, relative ones resolved."""
    is_pkg = path.name == "__init__.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                assert node.module is not None
                yield node.lineno, node.module
                continue
            base = module.split(".") if is_pkg else module.split(".")[:-1]
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
            if node.module:
                yield node.lineno, target
            else:  # from . import a, b: each may be a module
                for alias in node.names:
                    yield node.lineno, f"{target}.{alias.name}"


_STDLIB = sysconfig.get_paths()["stdlib"]
# Standard-library modules of other platforms, which find_spec cannot see here (3.8, 3.9).
_OTHER_PLATFORMS = {"msvcrt", "winreg", "winsound", "nt", "_winapi", "_overlapped", "fcntl"}


def is_stdlib(name: str) -> bool:
    top = name.split(".", maxsplit=1)[0]
    if top == "__future__" or top in sys.builtin_module_names or top in _OTHER_PLATFORMS:
        return True
    names = getattr(sys, "stdlib_module_names", None)
    if names is not None:
        return top in names
    spec = importlib.util.find_spec(top)  # Python 3.8 and 3.9
    if spec is None or spec.origin in (None, "built-in", "frozen"):
        return spec is not None
    origin = str(spec.origin)
    return origin.startswith(_STDLIB) and "site-packages" not in origin


def test_layer_table_names_every_package() -> None:
    table = layer_table()
    assert table["base"] == 0
    for _, path in modules():
        if path.name == "__init__.py" and path.parent != PACKAGE:
            name = path.parent.name
            assert name in table, f"package lmstrix.{name} is missing from the layer table"
    for unit in table:
        if unit != "base":
            assert (PACKAGE / unit).exists(), f"the layer table names {unit}, which is not there"


def test_imports_point_down_only() -> None:
    table = layer_table()
    problems: List[str] = []
    for module, path in modules():
        unit = unit_of(module, table)
        for line, target in imports_of(module, path):
            if not target.startswith("lmstrix"):
                continue
            # `import lmstrix` from inside the package reaches the facade.
            other = "facade" if target == "lmstrix" else unit_of(target, table)
            if other == unit:
                continue
            if other == "facade" or table[other] >= table[unit]:
                problems.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {unit} (layer {table[unit]}) "
                    f"imports {target} ({other}, layer {table.get(other, '?')})"
                )
    assert not problems, "imports against the layer table:\n" + "\n".join(problems)


def test_core_imports_only_the_standard_library() -> None:
    problems: List[str] = []
    for module, path in modules():
        allowed = set(EXTRA_MODULES.get(module, set()))
        for prefix, extra in EXTRA_PACKAGES.items():
            if module == prefix or module.startswith(prefix + "."):
                allowed |= extra
        for line, target in imports_of(module, path):
            top = target.split(".")[0]
            if top == "lmstrix" or is_stdlib(target):
                continue
            if top in allowed or "*" in allowed:
                continue
            problems.append(f"{path.relative_to(PACKAGE.parent)}:{line}: imports {target}")
    assert not problems, "third-party imports outside their extra's module:\n" + "\n".join(problems)


def test_nothing_imports_integrations() -> None:
    for module, path in modules():
        if module.startswith("lmstrix.integrations"):
            continue
        for line, target in imports_of(module, path):
            assert not target.startswith("lmstrix.integrations"), f"{path}:{line}"


# Where the CLI may reach an integration by name (the user asked for its feature).
BY_NAME_IMPORTS = {
    "lmstrix.cli._cmd_batch": ["lmstrix.integrations.datasets"],
    "lmstrix.cli._cmd_models": ["lmstrix.integrations.plot"],
}


def test_integrations_are_reached_by_name_only_where_documented() -> None:
    found: Dict[str, List[str]] = {}
    for module, path in modules():
        text = path.read_text(encoding="utf-8")
        named = sorted(set(re.findall(r"[\"'](lmstrix\.integrations[\w.]*)[\"']", text)))
        if named and not module.startswith("lmstrix.integrations"):
            found[module] = named
    assert found == BY_NAME_IMPORTS


def test_modules_stay_small() -> None:
    big = []
    for _, path in modules():
        count = len(path.read_text(encoding="utf-8").splitlines())
        if count > MAX_LINES:
            big.append(f"{path.relative_to(PACKAGE.parent)}: {count} lines")
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def test_the_checker_catches_an_upward_import(tmp_path: Path) -> None:
    """The rule itself: a registry module importing the client is refused."""
    table = {"base": 0, "registry": 1, "client": 3}
    path = tmp_path / "x.py"
    path.write_text("from ..client import Client\nfrom .. import errors\n")
    found = list(imports_of("lmstrix.registry._x", path))
    assert found == [(1, "lmstrix.client"), (2, "lmstrix.errors")]
    upward = [t for _, t in found if table[unit_of(t, table)] > table["registry"]]
    assert upward == ["lmstrix.client"]
    assert not is_stdlib("requests")
    assert is_stdlib("http.client")
