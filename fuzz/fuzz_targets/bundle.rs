//! `tagwatch verify`'s reader of evidence bundles
//! (`tagwatch_evidence::bundle::verify`): any bytes, with and without a
//! key, answer a verdict and never panic; a verdict without problems
//! always says what it checked (a bundle with no findings never passes
//! silently).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_evidence::bundle::verify;

/// The public key of tests/fixtures/evidence/bundle.zip (bundle.pub).
const SEED_KEY: &str = include_str!("../../tests/fixtures/evidence/bundle.pub");

fuzz_target!(|data: &[u8]| {
    let _ = verify(std::io::Cursor::new(data), None);
    let key = tagwatch_store::chain::parse_public_key(SEED_KEY.trim()).ok();
    let verdict = verify(std::io::Cursor::new(data), key.as_ref());
    if verdict.problems.is_empty() {
        assert!(!verdict.notes.is_empty());
    }
});
