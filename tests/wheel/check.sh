#!/usr/bin/env bash
# The wheel and the sdist of dist/ (`make wheel`), as a user gets them:
#
# 1. the wheel, installed into a fresh venv and tested there with a PATH
#    that holds only that venv's bin/ (so no go, no cc), without
#    FASTREQ_LIBRARY or PYTHONPATH, from a copy of tests/python outside the
#    source tree: the smoke test (tests/wheel/smoke.py) and the Python suite;
# 2. the sdist without Go: pip fails, and the reason is the first line;
# 3. the sdist with Go: pip builds and installs it (the progress lines are
#    in pip -v's output), and the smoke test passes.
#
# Needs the test server (build/fastreq-testserver, or FASTREQ_TESTSERVER).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD
PYTHON=${PYTHON:-python3}
server=$(realpath "${FASTREQ_TESTSERVER:-build/fastreq-testserver}")
[ -x "$server" ] || { echo "check.sh: no test server at $server (make build/fastreq-testserver)" >&2; exit 1; }

wheels=(dist/fastreq-*-py3-none-manylinux*.whl)
sdists=(dist/fastreq-*.tar.gz)
[ ${#wheels[@]} -eq 1 ] && [ -f "${wheels[0]}" ] || { echo "check.sh: want one wheel in dist/ (make wheel): ${wheels[*]}" >&2; exit 1; }
[ ${#sdists[@]} -eq 1 ] && [ -f "${sdists[0]}" ] || { echo "check.sh: want one sdist in dist/ (make wheel): ${sdists[*]}" >&2; exit 1; }
wheel=$(realpath "${wheels[0]}")
sdist=$(realpath "${sdists[0]}")

work=$(mktemp -d /tmp/fastreq-wheel-check.XXXXXX)
trap 'rm -rf "$work"' EXIT
step() { printf '== wheel check: %s\n' "$*" >&2; }

# Runs a command of venv $1 with only that venv's bin/ on PATH and nothing
# that points at the source tree or at a toolchain.
bare() {
  local venv=$1; shift
  env -u FASTREQ_LIBRARY -u PYTHONPATH -u PYTHONHOME -u VIRTUAL_ENV -u CC -u CXX -u CGO_ENABLED \
      -u GOROOT -u GOTOOLCHAIN -u FASTREQ_GO -u FASTREQ_GO_MODULE_ROOT -u FASTREQ_PREBUILT_LIBRARY \
      PATH="$venv/bin" "$@"
}

# -- 1. the wheel, without go and cc ----------------------------------------
venv=$work/wheel-venv
"$PYTHON" -m venv "$venv"
step "PATH=$venv/bin"
bare "$venv" python -c '
import shutil, sys
found = {t: shutil.which(t) for t in ("go", "cc", "gcc", "clang", "zig")}
assert not any(found.values()), found
print("no go, cc, gcc, clang or zig on PATH:", found, file=sys.stderr)'
step "pip install $(basename "$wheel") pytest orjson"
bare "$venv" python -m pip install -q "$wheel" pytest 'orjson>=3.9.15'
(cd "$work" && bare "$venv" python "$repo/tests/wheel/smoke.py" "$server" --no-toolchain)

# The suite from a copy outside the source tree: its conftest finds no
# python/fastreq and no build/libfastreq.so there, so the installed package
# and its own library are what the tests use. The examples come along.
tree=$work/tree
mkdir -p "$tree/tests" "$tree/python"
cp -r tests/python "$tree/tests/python"
cp -r python/examples "$tree/python/examples"
find "$tree" -name __pycache__ -prune -exec rm -rf {} +
step "the Python suite against the installed wheel"
# test_library_is_loaded_from_fastreq_library needs FASTREQ_LIBRARY set;
# test_packaging's installed-wheel test checks the bundled library instead.
(cd "$tree" && bare "$venv" FASTREQ_TESTSERVER="$server" FASTREQ_TEST_INSTALLED_WHEEL=1 \
  python -m pytest -q -rs -p no:cacheprovider tests/python \
  --deselect tests/python/test_process.py::test_library_is_loaded_from_fastreq_library)

# -- 2. the sdist without go: the reason comes first -------------------------
step "pip install $(basename "$sdist") without go (must fail)"
if bare "$venv" python -m pip install --no-deps "$sdist" > "$work/nogo.log" 2>&1; then
  cat "$work/nogo.log" >&2
  echo "check.sh: the sdist installed without go?" >&2
  exit 1
fi
need=$(sed -n 's/^go \([0-9.]*\).*/\1/p' go.mod)
want="fastreq: building from source needs Go >= $need (found none); install a wheel instead or install Go"
first=$(grep -A1 'lines of output\]' "$work/nogo.log" | sed -n '2s/^ *//p')
if [ "$first" != "$want" ]; then
  cat "$work/nogo.log" >&2
  echo "check.sh: the first line of the failed build is not: $want" >&2
  exit 1
fi
echo "$first" >&2

# -- 3. the sdist with go ------------------------------------------------------
venv2=$work/sdist-venv
"$PYTHON" -m venv "$venv2"
step "pip install -v $(basename "$sdist") with $(go version)"
start=$SECONDS
if ! env -u FASTREQ_LIBRARY -u PYTHONPATH "$venv2/bin/python" -m pip install -v --no-deps "$sdist" \
    > "$work/sdist.log" 2>&1; then
  cat "$work/sdist.log" >&2
  exit 1
fi
grep -E '^ *fastreq: (compiling|still|compiled)' "$work/sdist.log" >&2 \
  || { cat "$work/sdist.log" >&2; echo "check.sh: no progress line in pip -v's output" >&2; exit 1; }
echo "sdist built and installed in $((SECONDS - start)) s" >&2
(cd "$work" && env -u FASTREQ_LIBRARY -u PYTHONPATH "$venv2/bin/python" "$repo/tests/wheel/smoke.py" "$server")
step "OK"
