#!/usr/bin/env bash
# Builds the IG console's GOV.UK Frontend stylesheet from the pinned npm packages and
# writes it into assets/govuk-frontend/ (committed, so `cargo run -- demo` needs no npm).
#
# The stylesheet is compiled from govuk-frontend's Sass with the system font stack: the
# GDS Transport font is licensed for GOV.UK services only, so it is neither used nor
# shipped. The compiler is pinned too, so the output is reproducible byte for byte:
# `.ci/govuk-assets.sh` rebuilds it and fails when it differs from the committed file.
#
#   scripts/vendor-govuk-frontend.sh [OUT_DIR]    (default: assets/govuk-frontend)
set -euo pipefail

GOVUK_FRONTEND_VERSION=6.6.0
SASS_VERSION=1.108.2

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/assets/govuk-frontend}"
work="$(mktemp -d "${TMPDIR:-/tmp}/govuk-frontend.XXXXXX")"
trap 'rm -rf "$work"' EXIT

cd "$work"
npm init -y >/dev/null
npm install --silent --no-audit --no-fund --ignore-scripts \
  "govuk-frontend@$GOVUK_FRONTEND_VERSION" "sass@$SASS_VERSION" >/dev/null

cat >console.scss <<SCSS
// The system font stack instead of GDS Transport (licensed for GOV.UK only).
@use "node_modules/govuk-frontend/dist/govuk" with (
  \$govuk-font-family: (system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif),
  \$govuk-include-default-font-face: false,
  \$govuk-assets-path: "/assets/govuk-frontend/"
);
SCSS

npx --no-install sass --no-source-map --style=compressed --quiet --load-path=. console.scss console.css
if grep -q "GDS Transport" console.css; then
  echo "the compiled stylesheet still names GDS Transport" >&2
  exit 1
fi

mkdir -p "$out"
cp console.css "$out/govuk-frontend.min.css"
# No images or fonts are copied: the console uses the generic header (no crown or crest)
# and the system fonts, so the pages link to none.
printf 'govuk-frontend %s (licence: %s), compiled with sass %s\n' "$GOVUK_FRONTEND_VERSION" \
  "$(node -p 'require("./node_modules/govuk-frontend/package.json").license')" "$SASS_VERSION" \
  >"$out/VERSION"
echo "wrote $out/govuk-frontend.min.css (govuk-frontend $GOVUK_FRONTEND_VERSION, sass $SASS_VERSION)"
