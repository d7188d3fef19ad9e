#!/usr/bin/env bash
# Proves that a Node client built from proto/ alone (@grpc/grpc-js, @grpc/proto-loader
# with keepCase) calls the gateway over mutual TLS: the demo (dev PKI, SQLite, the case
# loaded) on a free loopback port in a temp dir, then tests/node/client.js against it:
# WhoAmI, Subscribe, Publish (the notice arriving on the open stream) and Query.
#
# Usage: .ci/node-client.sh SAFEGATE_BINARY
# Installs tests/node's locked dependencies with `npm ci`; exits with the client's status.
set -euo pipefail

if [ "$#" -ne 1 ]; then
    echo "usage: $0 SAFEGATE_BINARY" >&2
    exit 2
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
if [ ! -x "$binary" ]; then
    echo "node-client: $binary is not an executable safegate binary" >&2
    exit 2
fi
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    echo "node-client: node and npm are needed (on Debian: apt-get install nodejs npm)" >&2
    exit 2
fi

# Exactly the versions in package-lock.json; no install scripts are needed.
(cd tests/node && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)

. .ci/demo-lib.sh

port="$(node -e 'const s = require("node:net").createServer();
s.listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')"
target="127.0.0.1:$port"
demo_start "$binary" "$repo_root" \
    --listen "$target" \
    --data-dir "$demo_tmp/data" \
    --registry policies/registry.toml \
    --policy-dir policies
demo_wait

node tests/node/client.js --target "$target" --pki "$demo_tmp/data/pki"
