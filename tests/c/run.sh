#!/bin/sh
# run.sh SERVER COMMAND [ARGS...]
#
# Starts the fastreq test server, waits for the JSON line it prints when
# ready, exports its URLs as FASTREQ_TEST_URL (plain HTTP),
# FASTREQ_TEST_TLS_URL and FASTREQ_TEST_H3_URL (HTTP/3, with a TCP twin
# advertising it) and its CA as FASTREQ_TEST_CA_FILE, runs COMMAND, and always stops the server: on
# success, on failure, on Ctrl-C, and (through -exit-on-stdin-close and a
# fifo only this shell writes) even if this shell is killed outright.
# Exits with COMMAND's status.
set -eu

if [ $# -lt 2 ]; then
    echo "usage: $0 SERVER COMMAND [ARGS...]" >&2
    exit 2
fi
server=$1
shift
[ -x "$server" ] || { echo "run.sh: test server $server is not executable" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/fastreq-c.XXXXXX")
pid=
cleanup() {
    if [ -n "$pid" ]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

mkfifo "$tmp/stdin"
"$server" -exit-on-stdin-close <"$tmp/stdin" >"$tmp/info" 2>"$tmp/server.log" &
pid=$!
exec 3>"$tmp/stdin" # the server's stdin: it exits when this shell goes away

# Wait (up to 30 s) for the one JSON line.
i=0
until grep -q '"http_url"' "$tmp/info" 2>/dev/null; do
    if ! kill -0 "$pid" 2>/dev/null; then
        echo "run.sh: the test server exited before it was ready:" >&2
        cat "$tmp/server.log" >&2
        exit 1
    fi
    i=$((i + 1))
    if [ $i -gt 300 ]; then
        echo "run.sh: the test server did not print its URLs within 30 s" >&2
        exit 1
    fi
    sleep 0.1
done

field() { sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" "$tmp/info" | head -n 1; }
FASTREQ_TEST_URL=$(field http_url)
FASTREQ_TEST_TLS_URL=$(field tls_url)
FASTREQ_TEST_H3_URL=$(field h3_url)
FASTREQ_TEST_CA_FILE=$(field ca_file)
export FASTREQ_TEST_URL FASTREQ_TEST_TLS_URL FASTREQ_TEST_H3_URL FASTREQ_TEST_CA_FILE
echo "run.sh: test server pid $pid at $FASTREQ_TEST_URL"

status=0
"$@" 3>&- || status=$?
exit $status
