#!/usr/bin/env bash
# Fetches the Compose Specification JSON schema for .ci/validate-compose.py and prints
# the path of the schema file on stdout (everything else goes to stderr).
#
#   schema=$(bash .ci/fetch-compose-schema.sh /tmp/compose-schema)
#
# Source: the npm package dclint (a Docker Compose linter), pinned below, ships a copy
# of the upstream compose-spec/compose-spec schema/compose-spec.json
# ("$id": "compose_spec.json", draft-07) as schemas/compose.schema.json. It comes through
# the npm registry with npm's own client; both the tarball and the schema file are
# checked against pinned SHA-256 sums, so a republished or altered package fails here.
# To move to a newer schema: bump the version, run this with the sums emptied to see the
# new ones, review the schema diff, and pin the new sums.
set -euo pipefail

PACKAGE=dclint
VERSION=3.1.0
SCHEMA_IN_PACKAGE=package/schemas/compose.schema.json
TARBALL_SHA256=73fc6079a0408c80c7ccea9e9e5c21c40551afaf15e8c1ee25a5ad6af1ec0414
SCHEMA_SHA256=46b7d35f19dd93a05f8fea530291bf84d881c1791ec167ecf0e6fb94e639d496

if [ "$#" -ne 1 ] || [ -z "$1" ]; then
    echo "usage: $0 DIR   (downloads ${PACKAGE}@${VERSION} into DIR, prints the schema path)" >&2
    exit 2
fi
dir=$1
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

tarball="$dir/${PACKAGE}-${VERSION}.tgz"
if [ ! -f "$tarball" ]; then
    # npm pack of a registry spec downloads the published tarball (integrity-checked by
    # npm against the registry metadata) and runs no package scripts.
    npm pack "${PACKAGE}@${VERSION}" --pack-destination "$dir" --ignore-scripts --loglevel=error >&2
fi

check_sha256() { # FILE EXPECTED WHAT
    local actual
    actual=$(sha256sum "$1" | cut -d' ' -f1)
    if [ -z "$2" ]; then
        echo "fetch-compose-schema: no pinned sum for $3; it is $actual" >&2
        exit 1
    fi
    if [ "$actual" != "$2" ]; then
        echo "fetch-compose-schema: SHA-256 mismatch for $3 ($1): expected $2, got $actual" >&2
        exit 1
    fi
}

check_sha256 "$tarball" "$TARBALL_SHA256" "${PACKAGE}-${VERSION}.tgz"

extract="$dir/${PACKAGE}-${VERSION}"
rm -rf "$extract"
mkdir -p "$extract"
# package.json too: validate-compose.py names the package and version it came from.
tar -xzf "$tarball" -C "$extract" "$SCHEMA_IN_PACKAGE" package/package.json
schema="$extract/$SCHEMA_IN_PACKAGE"
check_sha256 "$schema" "$SCHEMA_SHA256" "$SCHEMA_IN_PACKAGE"

echo "$schema"
