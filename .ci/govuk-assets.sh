#!/usr/bin/env bash
# The console's vendored GOV.UK Frontend stylesheet is exactly what the pinned npm
# packages build (scripts/vendor-govuk-frontend.sh): rebuilds it and compares.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
fresh="$(mktemp -d "${TMPDIR:-/tmp}/govuk-check.XXXXXX")"
trap 'rm -rf "$fresh"' EXIT
bash "$root/scripts/vendor-govuk-frontend.sh" "$fresh" >/dev/null
if ! diff -r "$fresh" "$root/assets/govuk-frontend" >/dev/null; then
    echo "assets/govuk-frontend differs from a fresh build of the pinned packages:" >&2
    diff -r "$fresh" "$root/assets/govuk-frontend" | head -20 >&2
    echo "run scripts/vendor-govuk-frontend.sh and commit the result" >&2
    exit 1
fi
echo "assets/govuk-frontend matches govuk-frontend $(cut -d' ' -f2 "$root/assets/govuk-frontend/VERSION")"
