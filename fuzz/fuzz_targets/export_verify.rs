//! The offline verifier of a JSON-lines export (`safegate audit verify --export`), with the
//! public key of the seed exports in `fuzz/seeds/export_verify/`, so mutations of a valid
//! export reach every check rather than failing the signature at once.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use safegate::domain::ledger::checkpoint::public_key_from_pem;
use safegate::domain::ledger::export::verify_export;

fuzz_target!(|data: &[u8]| {
    static KEY: OnceLock<Vec<u8>> = OnceLock::new();
    let key = KEY.get_or_init(|| {
        public_key_from_pem(include_str!("../seeds/checkpoint.pub")).expect("the seeds' key")
    });
    let _ = verify_export(data, key);
});
