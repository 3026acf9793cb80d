#!/usr/bin/env bash
# Installs the library into a scratch prefix with `make install`, builds a
# program with the flags pkg-config gives for fastreq, and runs it: the
# library must carry the SONAME of its ABI, and the program must load it by
# that name and see the same ABI version as the installed header.
set -euo pipefail
make_cmd=$1 soname=$2 abi=$3
prefix=$(mktemp -d)
trap 'rm -rf "$prefix"' EXIT
$make_cmd --no-print-directory install PREFIX="$prefix" >/dev/null
got=$(readelf -d "$prefix/lib/libfastreq.so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
[ "$got" = "$soname" ] || { echo "SONAME is '$got', want '$soname'" >&2; exit 1; }
cat > "$prefix/check.c" <<'C'
#include <stdio.h>
#include "fastreq.h"
int main(void) {
    if (fastreq_abi_version() != FASTREQ_ABI_VERSION) {
        fprintf(stderr, "library ABI %d, header ABI %d\n", (int)fastreq_abi_version(), FASTREQ_ABI_VERSION);
        return 1;
    }
    printf("%s ABI %d\n", fastreq_version(), (int)fastreq_abi_version());
    return 0;
}
C
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046 # pkg-config's output is a list of flags
${CC:-cc} -std=c11 -Wall -Werror -o "$prefix/check" "$prefix/check.c" $(pkg-config --cflags --libs fastreq)
needed=$(readelf -d "$prefix/check" | sed -n 's/.*(NEEDED).*\[\(libfastreq[^]]*\)\].*/\1/p')
[ "$needed" = "$soname" ] || { echo "the program needs '$needed', want '$soname'" >&2; exit 1; }
out=$(LD_LIBRARY_PATH="$prefix/lib" "$prefix/check")
echo "make install + pkg-config: $out (SONAME $soname)"
[ "$out" != "${out% ABI $abi}" ] || { echo "unexpected: $out" >&2; exit 1; }
