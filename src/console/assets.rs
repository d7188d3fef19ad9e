//! The stylesheets, built into the binary so the console needs no files beside it:
//! GOV.UK Frontend's, compiled by `scripts/vendor-govuk-frontend.sh` from the pinned npm
//! package (checked in CI against a fresh build), and the console's own few rules.

use axum::http::header;
use axum::response::IntoResponse;

/// Where GOV.UK Frontend's stylesheet is served: the path names its version, so a new
/// version is never read from a browser's cache of the old one.
pub const GOVUK_CSS_PATH: &str = "/assets/govuk-frontend/6.6.0/govuk-frontend.min.css";
/// Where the console's own stylesheet is served.
pub const CONSOLE_CSS_PATH: &str = "/assets/console-1.css";

const GOVUK_CSS: &str = include_str!("../../assets/govuk-frontend/govuk-frontend.min.css");
const CONSOLE_CSS: &str = include_str!("../../assets/console.css");

fn stylesheet(css: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=31536000, immutable"),
        ],
        css,
    )
}

/// GOV.UK Frontend's compiled stylesheet (system fonts, no GDS Transport).
pub async fn govuk_css() -> impl IntoResponse {
    stylesheet(GOVUK_CSS)
}

/// The console's own rules: the charts' colours and the proof's monospace hashes.
pub async fn console_css() -> impl IntoResponse {
    stylesheet(CONSOLE_CSS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_served_version_is_the_vendored_one() {
        let vendored = include_str!("../../assets/govuk-frontend/VERSION");
        let version = vendored.split_whitespace().nth(1).unwrap_or_default();
        assert!(
            super::GOVUK_CSS_PATH.contains(&format!("/{version}/")),
            "{} does not name govuk-frontend {version}",
            super::GOVUK_CSS_PATH
        );
    }
}
