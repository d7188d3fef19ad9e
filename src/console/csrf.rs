//! Cross-site request forgery defence for the forms that change state or write to the
//! log. A browser presents the officer's certificate on a cross-site request as it would
//! send a cookie, so the certificate alone proves nothing about who made the form. Each
//! form carries a token bound to the officer's certificate (an HMAC under a key made at
//! start), and the request must come from the console's own pages by the browser's own
//! account (`Sec-Fetch-Site`, else `Origin`). Neither needs JavaScript.

use axum::http::HeaderMap;
use axum::http::header::{HOST, ORIGIN};
use ring::hmac;

/// The rule a forged or stale form is refused under.
pub const CSRF_RULE: &str = "console.csrf";

/// Makes and checks the forms' tokens.
pub struct Csrf {
    key: hmac::Key,
}

impl Csrf {
    /// A new key: tokens of an earlier process no longer verify.
    pub fn new() -> Self {
        let rng = ring::rand::SystemRandom::new();
        // Generating a key only fails when the OS has no randomness; then a key derived
        // from a random UUID (itself from the OS) is the best there is.
        let key = hmac::Key::generate(hmac::HMAC_SHA256, &rng)
            .unwrap_or_else(|_| hmac::Key::new(hmac::HMAC_SHA256, uuid::Uuid::new_v4().as_bytes()));
        Csrf { key }
    }

    /// The token for forms shown to the holder of the certificate with this fingerprint.
    pub fn token(&self, certificate_sha256: &str) -> String {
        hex::encode(hmac::sign(&self.key, certificate_sha256.as_bytes()).as_ref())
    }

    /// Whether a form's `token` and the request's headers show it came from the
    /// console's own page, shown to this certificate's holder.
    pub fn check(&self, certificate_sha256: &str, headers: &HeaderMap, token: &str) -> bool {
        let Ok(tag) = hex::decode(token.trim()) else {
            return false;
        };
        let bound = hmac::verify(&self.key, certificate_sha256.as_bytes(), &tag).is_ok();
        bound && same_origin(headers)
    }
}

/// The browser says the request came from this origin: `Sec-Fetch-Site` of
/// `same-origin` (or `none`, typed by the user), or without it an `Origin` naming this
/// host. A request with neither is accepted on the token alone (older browsers).
fn same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match (header(ORIGIN.as_str()), header(HOST.as_str())) {
        (Some(origin), Some(host)) => origin == format!("https://{host}"),
        (Some(_), None) => false,
        (None, _) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn a_token_is_bound_to_its_certificate() {
        let csrf = Csrf::new();
        let token = csrf.token("aa11");
        let same = headers(&[("sec-fetch-site", "same-origin")]);
        assert!(csrf.check("aa11", &same, &token));
        assert!(
            !csrf.check("bb22", &same, &token),
            "another officer's token"
        );
        assert!(!csrf.check("aa11", &same, "not hex"));
        assert!(
            !Csrf::new().check("aa11", &same, &token),
            "another process's key"
        );
    }

    #[test]
    fn cross_site_requests_are_refused_even_with_the_token() {
        let csrf = Csrf::new();
        let token = csrf.token("aa11");
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(!csrf.check("aa11", &cross, &token));
        let other_origin = headers(&[
            ("origin", "https://evil.example"),
            ("host", "localhost:8443"),
        ]);
        assert!(!csrf.check("aa11", &other_origin, &token));
        let own_origin = headers(&[
            ("origin", "https://localhost:8443"),
            ("host", "localhost:8443"),
        ]);
        assert!(csrf.check("aa11", &own_origin, &token));
    }
}
