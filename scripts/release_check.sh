#!/usr/bin/env bash
# Check that lmstrix builds into a sound release, without publishing anything:
#
#   1. `python -m build`: the sdist, and the wheel built from that sdist;
#   2. `twine check --strict` on both (metadata, README rendering);
#   3. the wheel's contents: lmstrix/py.typed, nothing but the lmstrix package (no
#      tests), the version of lmstrix/_version.py, every Requires-Dist under an extra;
#      the sdist has no tests/ either;
#   4. a clean virtual environment: `pip install` the wheel (dependencies allowed), then
#      check that nothing but lmstrix was installed, that `import lmstrix` works with
#      nothing else on the path, and that `python -m lmstrix --help` runs.
#
# build and twine come from PyPI, into a temporary virtual environment; everything
# else is local. Exits non-zero with a message naming the failed check.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PIP_DISABLE_PIP_VERSION_CHECK=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

step() { printf '\n--- release check: %s\n' "$*"; }
fail() { printf 'release check FAILED: %s\n' "$*" >&2; exit 1; }

version=$("$PYTHON" -c 'import runpy; print(runpy.run_path("lmstrix/_version.py")["__version__"])')
echo "lmstrix $version (lmstrix/_version.py)"

step "tools: build and twine into a temporary virtual environment"
"$PYTHON" -m venv "$tmp/tools"
"$tmp/tools/bin/python" -m pip install -q build twine >"$tmp/pip-tools.log" 2>&1 ||
  { tail -n 20 "$tmp/pip-tools.log" >&2; fail "cannot install build and twine from PyPI"; }

step "python -m build (sdist, then the wheel from the sdist)"
"$tmp/tools/bin/python" -m build --outdir "$tmp/dist" . >"$tmp/build.log" 2>&1 ||
  { tail -n 40 "$tmp/build.log" >&2; fail "python -m build failed (log above)"; }
wheel=$(ls "$tmp"/dist/*.whl 2>/dev/null | head -n 1)
sdist=$(ls "$tmp"/dist/*.tar.gz 2>/dev/null | head -n 1)
[ -n "$wheel" ] || fail "no wheel was built"
[ -n "$sdist" ] || fail "no sdist was built"
ls -l "$tmp/dist"

step "twine check --strict"
"$tmp/tools/bin/twine" check --strict "$tmp"/dist/* || fail "twine check found problems"

step "contents of $(basename "$wheel") and $(basename "$sdist")"
"$PYTHON" - "$wheel" "$sdist" "$version" <<'PY' || fail "the wheel or sdist is not as it should be (see above)"
import email
import sys
import tarfile
import zipfile

wheel, sdist, version = sys.argv[1:]
problems = []
with zipfile.ZipFile(wheel) as zf:
    names = zf.namelist()
    meta_name = next((n for n in names if n.endswith(".dist-info/METADATA")), None)
    metadata = email.message_from_bytes(zf.read(meta_name)) if meta_name else None
dist_info = {n.split("/")[0] for n in names if ".dist-info/" in n}
tops = {n.split("/")[0] for n in names} - dist_info
if tops != {"lmstrix"}:
    problems.append(f"the wheel holds more than the lmstrix package: {sorted(tops)}")
if "lmstrix/py.typed" not in names:
    problems.append("the wheel has no lmstrix/py.typed (type hints would be ignored)")
tests = [n for n in names if "tests/" in n or n.split("/")[-1].startswith("test_")]
if tests:
    problems.append(f"the wheel holds tests: {tests[:5]}")
if metadata is None:
    problems.append("the wheel has no METADATA")
else:
    if metadata["Version"] != version:
        problems.append(f"wheel version {metadata['Version']} != lmstrix/_version.py {version}")
    requires = metadata.get_all("Requires-Dist") or []
    core = [r for r in requires if "extra ==" not in r]
    if core:
        problems.append(f"the wheel requires packages outside any extra: {core}")
    extras = metadata.get_all("Provides-Extra") or []
    print(f"Requires-Python: {metadata['Requires-Python']}; extras: {', '.join(extras)}")
    print(f"Requires-Dist (all under extras): {len(requires)}")
with tarfile.open(sdist) as tf:
    snames = tf.getnames()
stests = [n for n in snames if "/tests/" in n]
if stests:
    problems.append(f"the sdist holds tests: {stests[:5]}")
if not any(n.endswith("/lmstrix/py.typed") for n in snames):
    problems.append("the sdist has no lmstrix/py.typed")
modules = [n for n in names if n.endswith(".py")]
print(f"wheel: {len(names)} files, {len(modules)} Python modules; sdist: {len(snames)} entries")
for problem in problems:
    print(f"problem: {problem}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY

step "install the wheel into a clean virtual environment"
"$PYTHON" -m venv "$tmp/clean"
clean=$tmp/clean/bin/python
"$clean" -m pip list --format=freeze 2>/dev/null | sed 's/==.*//' | sort >"$tmp/before"
"$clean" -m pip install -q "$wheel" >"$tmp/pip-install.log" 2>&1 ||
  { tail -n 20 "$tmp/pip-install.log" >&2; fail "pip could not install $(basename "$wheel")"; }
"$clean" -m pip list --format=freeze 2>/dev/null | sed 's/==.*//' | sort >"$tmp/after"
added=$(comm -13 "$tmp/before" "$tmp/after" | tr '\n' ' ' | sed 's/ $//')
echo "installed: $added (the environment had: $(tr '\n' ' ' <"$tmp/before"))"
[ "$added" = "lmstrix" ] || fail "installing the wheel added '$added'; expected lmstrix alone"

step "import lmstrix and run the lite CLI from the clean environment"
# From an empty folder, with no PYTHONPATH, so the checkout cannot be imported instead.
mkdir "$tmp/empty"
got=$(cd "$tmp/empty" && env -u PYTHONPATH "$clean" -c \
  'import lmstrix, lmstrix.testing, lmstrix.batch; print(lmstrix.__version__, lmstrix.__file__)') ||
  fail "import lmstrix failed in the clean environment"
echo "$got"
case "$got" in
  "$version $tmp/clean/"*) ;;
  *) fail "imported the wrong lmstrix: $got" ;;
esac
(cd "$tmp/empty" && env -u PYTHONPATH "$clean" -m lmstrix --help >"$tmp/help.txt") ||
  fail "python -m lmstrix --help failed"
head -n 1 "$tmp/help.txt"
[ -x "$tmp/clean/bin/lmstrix" ] || fail "the lmstrix console script was not installed"
(cd "$tmp/empty" && env -u PYTHONPATH "$tmp/clean/bin/lmstrix" --help >/dev/null) ||
  fail "the lmstrix console script failed (without click it must fall back to the lite CLI)"

size=$(wc -c <"$wheel" | tr -d ' ')
printf '\nrelease check: ok: %s (%s bytes), %s\n' "$(basename "$wheel")" "$size" "$(basename "$sdist")"
