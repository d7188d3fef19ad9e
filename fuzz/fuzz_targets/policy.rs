//! The policy loader's own reading of `sharing.csv`: every line parsed and checked, then
//! compiled (`safegate::domain::policy::check_rules_text`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // The loader refuses a file that is not UTF-8 before it parses anything.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = safegate::domain::policy::check_rules_text(text);
    }
});
