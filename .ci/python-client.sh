#!/usr/bin/env bash
# Proves that a Python grpcio client generated from proto/ alone calls the gateway over
# mutual TLS: dev PKI, a gateway on a free loopback port with SQLite in a temp dir,
# then tests/python/whoami_client.py against it.
#
# Usage: .ci/python-client.sh SAFEGATE_BINARY VENV_DIR
#   SAFEGATE_BINARY  e.g. target/debug/safegate
#   VENV_DIR         Python virtual environment; created if absent (PYTHON picks the
#                    interpreter, default python3)
# Exits with the client's status; prints the gateway's log when anything failed.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SAFEGATE_BINARY VENV_DIR" >&2
    exit 2
fi

# Both arguments may be relative to the caller's directory.
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
venv="$(mkdir -p "$(dirname "$2")" && cd "$(dirname "$2")" && pwd)/$(basename "$2")"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"

if [ ! -x "$binary" ]; then
    echo "python-client: $binary is not an executable safegate binary" >&2
    exit 2
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "${PYTHON:-python3}" -m venv "$venv"; then
        echo "python-client: cannot create a venv in $venv (on Debian: apt-get install python3-venv)" >&2
        exit 2
    fi
fi
"$venv/bin/python" -m pip install --quiet --only-binary=:all: -r tests/python/requirements.txt

tmp="$(mktemp -d "${TMPDIR:-/tmp}/safegate-pyclient.XXXXXX")"
server_pid=""
server_log="$tmp/server.log"

cleanup() {
    local status=$?
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$server_log" ]; then
        echo "---- gateway log ($server_log) ----" >&2
        cat "$server_log" >&2
        echo "---- end of gateway log ----" >&2
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

"$binary" pki init --dir "$tmp/pki" >/dev/null

port="$("$venv/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"
target="127.0.0.1:$port"

# NO_COLOR: plain log lines in the file the failure path prints.
NO_COLOR=1 "$binary" serve \
    --listen "$target" \
    --pki-dir "$tmp/pki" \
    --data-dir "$tmp/data" \
    --registry policies/registry.toml \
    >"$server_log" 2>&1 &
server_pid=$!

# Wait (at most 30 s) until the gateway accepts TCP connections.
deadline=$((SECONDS + 30))
until "$venv/bin/python" -c 'import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1).close()' "$port" 2>/dev/null; do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        echo "python-client: the gateway exited before listening on $target" >&2
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "python-client: the gateway did not listen on $target within 30 s" >&2
        exit 1
    fi
    sleep 0.2
done

status=0
"$venv/bin/python" tests/python/whoami_client.py --target "$target" --pki "$tmp/pki" || status=$?
exit "$status"
