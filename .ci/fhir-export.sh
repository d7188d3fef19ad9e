#!/usr/bin/env bash
# Proves the disclosure log's FHIR export is valid FHIR R4: runs `safegate demo` (dev PKI,
# SQLite, the synthetic case loaded through the API) in a temp dir on a free loopback
# port, makes queries and refusals with a grpcio client generated from proto/, exports
# the log with the CLI straight from the demo's database (`safegate audit export --format
# fhir`), and validates every AuditEvent with the `fhir.resources` package
# (tests/python/validate_fhir.py). Also exports JSON lines and verifies them offline with
# the public key alone.
#
# Usage: .ci/fhir-export.sh SAFEGATE_BINARY VENV_DIR
#   SAFEGATE_BINARY  e.g. target/debug/safegate
#   VENV_DIR         Python virtual environment; created if absent (PYTHON picks the
#                    interpreter, default python3); tests/python/requirements.txt is
#                    installed into it as wheels
# Prints the demo's log when anything failed.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SAFEGATE_BINARY VENV_DIR" >&2
    exit 2
fi

# Both arguments may be relative to the caller's directory.
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
venv="$(mkdir -p "$(dirname "$2")" && cd "$(dirname "$2")" && pwd)/$(basename "$2")"

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ ! -x "$binary" ]; then
    echo "fhir-export: $binary is not an executable safegate binary" >&2
    exit 2
fi

if [ ! -x "$venv/bin/python" ]; then
    if ! "${PYTHON:-python3}" -m venv "$venv"; then
        echo "fhir-export: cannot create a venv in $venv (on Debian: apt-get install python3-venv)" >&2
        exit 2
    fi
fi
"$venv/bin/python" -m pip install --quiet --only-binary=:all: -r "$repo_root/tests/python/requirements.txt"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/safegate-fhir.XXXXXX")"
demo_pid=""
demo_log="$tmp/demo.log"

cleanup() {
    local status=$?
    if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
        kill "$demo_pid" 2>/dev/null || true
        wait "$demo_pid" 2>/dev/null || true
    fi
    if [ "$status" -ne 0 ] && [ -f "$demo_log" ]; then
        echo "---- demo log ($demo_log) ----" >&2
        cat "$demo_log" >&2
        echo "---- end of demo log ----" >&2
    fi
    rm -rf "$tmp"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port="$("$venv/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"
target="127.0.0.1:$port"
data="$tmp/data"

# The demo runs in the temp dir; the registry and policy come from the repository.
# NO_COLOR: plain log lines in the file the failure path prints.
(cd "$tmp" && NO_COLOR=1 exec "$binary" demo \
    --listen "$target" \
    --data-dir "$data" \
    --registry "$repo_root/policies/registry.toml" \
    --policy-dir "$repo_root/policies") >"$demo_log" 2>&1 &
demo_pid=$!

# The demo prints how to connect once the case is loaded; wait (at most 60 s) for that.
deadline=$((SECONDS + 60))
until grep -q "grpcurl" "$demo_log" 2>/dev/null; do
    if ! kill -0 "$demo_pid" 2>/dev/null; then
        echo "fhir-export: the demo exited before loading the case" >&2
        exit 1
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "fhir-export: the demo did not load the case within 60 s" >&2
        exit 1
    fi
    sleep 0.2
done

"$venv/bin/python" "$repo_root/tests/python/make_disclosures.py" --target "$target" --pki "$data/pki"

# The CLI reads the demo's database directly (SQLite, WAL: alongside the running demo)
# and writes its own use of the log as an entry, signed with the demo's checkpoint key.
"$binary" audit export --format fhir --data-dir "$data" --out "$tmp/audit.ndjson"
"$venv/bin/python" "$repo_root/tests/python/validate_fhir.py" "$tmp/audit.ndjson" --min-events 5

"$binary" audit export --format jsonl --data-dir "$data" --out "$tmp/audit.jsonl"
"$binary" audit verify --export "$tmp/audit.jsonl" --public-key "$data/pki/checkpoint.pub"
