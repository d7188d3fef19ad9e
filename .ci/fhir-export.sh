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

# Starts and stops the demo, and prints its log when anything failed.
. "$repo_root/.ci/demo-lib.sh"
tmp="$demo_tmp"

port="$("$venv/bin/python" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()')"
target="127.0.0.1:$port"
data="$tmp/data"

# The demo runs in the temp dir; the registry and policy come from the repository.
demo_start "$binary" "$tmp" \
    --listen "$target" \
    --data-dir "$data" \
    --registry "$repo_root/policies/registry.toml" \
    --policy-dir "$repo_root/policies"
demo_wait

"$venv/bin/python" "$repo_root/tests/python/make_disclosures.py" --target "$target" --pki "$data/pki"

# The CLI reads the demo's database directly (SQLite, WAL: alongside the running demo)
# and writes its own use of the log as an entry, signed with the demo's checkpoint key.
"$binary" audit export --format fhir --data-dir "$data" --out "$tmp/audit.ndjson"
"$venv/bin/python" "$repo_root/tests/python/validate_fhir.py" "$tmp/audit.ndjson" --min-events 5

"$binary" audit export --format jsonl --data-dir "$data" --out "$tmp/audit.jsonl"
"$binary" audit verify --export "$tmp/audit.jsonl" --public-key "$data/pki/checkpoint.pub"
