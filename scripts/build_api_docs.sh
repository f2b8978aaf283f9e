#!/usr/bin/env bash
# Build the API reference (HTML) from the docstrings with pdoc.
#
#   scripts/build_api_docs.sh [OUTPUT_DIR]      # default: docs/api-reference/_build
#
# Documents `lmstrix` (the names in lmstrix.__all__) and every public submodule
# (lmstrix.testing, lmstrix.batch, lmstrix.client, ...; not the private `_*` ones or
# the CLI). Fails on any warning pdoc (or Python) prints, so an unresolvable type
# annotation or a module that does not import breaks the build instead of the page.
#
# pdoc comes from $PDOC_PYTHON (default python3) when that interpreter has pdoc and
# requests; otherwise both are installed from PyPI into a throw-away virtual
# environment. The lmstrix imported is this checkout's. Nothing outside OUTPUT_DIR is
# written.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/api-reference/_build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# pdoc imports the modules it documents (TYPE_CHECKING imports too), so the docs need the
# optional packages they name: requests (lmstrix.requests_transport), dask's distributed
# (lmstrix.integrations.dask), OpenTelemetry (lmstrix.observe.otel), pyarrow
# (lmstrix.integrations.datasets), matplotlib (lmstrix.integrations.plot) and
# langchain-core (lmstrix.integrations.langchain).
py=${PDOC_PYTHON:-python3}
if ! "$py" -c "import pdoc, requests, distributed, opentelemetry.sdk, pyarrow, matplotlib, langchain_core" >/dev/null 2>&1; then
  echo "build_api_docs: installing pdoc and the extras into a temporary virtual environment" >&2
  python3 -m venv "$tmp/venv"
  "$tmp/venv/bin/python" -m pip install -q --disable-pip-version-check pdoc requests \
    "dask[distributed]" opentelemetry-api opentelemetry-sdk pyarrow matplotlib langchain-core \
    >"$tmp/pip.log" 2>&1 || { tail -n 20 "$tmp/pip.log" >&2; exit 1; }
  py=$tmp/venv/bin/python
fi

# The folder is replaced: refuse one that holds anything but an earlier build.
if [ -d "$out" ] && [ -n "$(ls -A "$out")" ] && [ ! -f "$out/index.html" ]; then
  echo "build_api_docs: $out is not empty and holds no earlier build; not replacing it" >&2
  exit 2
fi
rm -rf "$out"
status=0
PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} "$py" -W always - "$out" >"$tmp/stdout" 2>"$tmp/stderr" <<'PY' || status=$?
import importlib
import inspect
import pkgutil
import re
import sys
import warnings
from pathlib import Path

import pdoc
import pdoc.docstrings
import pdoc.render

import lmstrix

out = Path(sys.argv[1])
modules = ["lmstrix"] + sorted(
    f"lmstrix.{info.name}"
    for info in pkgutil.iter_modules(lmstrix.__path__)
    if not info.name.startswith("_") and info.name != "cli"
)
for name in modules:
    module = importlib.import_module(name)
    # `lmstrix` imports its public names lazily, on first attribute access; pdoc looks
    # them up in the module's __dict__, so resolve them all first.
    for public in getattr(module, "__all__", ()):
        getattr(module, public)
    for obj in vars(module).values():
        # typing.NamedTuple builds __new__ in a throw-away namespace, so pdoc cannot
        # find the module to resolve its (postponed) annotations in; point it there.
        new = getattr(obj, "__new__", None)
        if inspect.isclass(obj) and hasattr(obj, "_fields") and inspect.isfunction(new):
            if new.__module__ not in sys.modules:
                new.__module__ = obj.__module__

# Sphinx's ":class:`~a.b.C`" means "show only C"; pdoc would print the "~". Drop it
# (the full dotted name is kept, so pdoc still links it).
_rst = pdoc.docstrings.rst


def _rst_without_tilde(contents, source_file):
    return _rst(re.sub(r"(:(?:py:)?[a-z]+:`)~", r"\1", contents), source_file)


pdoc.docstrings.rst = _rst_without_tilde

pdoc.render.configure(
    docformat="google",  # "Args:" / "Raises:" sections; reST roles are converted too
    footer_text=f"lmstrix {lmstrix.__version__}",
    show_source=True,
    search=True,
)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    pdoc.pdoc(*modules, output_directory=out)
for warning in caught:
    print(f"warning: {warning.message} ({warning.filename}:{warning.lineno})", file=sys.stderr)
pages = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.html"))
print(f"{len(modules)} modules, {len(pages)} pages in {out}: {', '.join(pages)}")
sys.exit(1 if caught else 0)
PY
cat "$tmp/stdout"
if [ -s "$tmp/stderr" ]; then
  echo "build_api_docs: FAILED: pdoc printed warnings or errors:" >&2
  cat "$tmp/stderr" >&2
  exit 1
fi
if [ "$status" -ne 0 ]; then
  echo "build_api_docs: FAILED: pdoc exited with status $status" >&2
  exit "$status"
fi
echo "build_api_docs: ok, no warnings; open $out/index.html"
