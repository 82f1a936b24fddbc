//! The bundle in tests/fixtures/evidence (made by `tagwatch evidence`, the
//! fuzz target's seed) still verifies with its key: the format and the
//! chain's canonical forms have not changed under it. If this fails after
//! a deliberate format change, make a new fixture and bump
//! `bundle::FORMAT` (docs/evidence.md).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // A test fails by panicking.

use std::path::PathBuf;

use tagwatch_evidence::bundle::verify;
use tagwatch_evidence::keys::load_public;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/evidence")
        .join(name)
}

#[test]
fn the_fixture_bundle_verifies_with_its_key() {
    let key = load_public(fixture("bundle.pub").to_str().unwrap()).unwrap();
    let file = std::fs::File::open(fixture("bundle.zip")).unwrap();
    let v = verify(file, Some(&key));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert!(
        v.notes
            .iter()
            .any(|n| n.contains("2 findings, chain seq 1..2")),
        "{:?}",
        v.notes
    );
}

#[test]
fn every_single_byte_flip_of_the_fixture_fails() {
    let key = load_public(fixture("bundle.pub").to_str().unwrap()).unwrap();
    let bytes = std::fs::read(fixture("bundle.zip")).unwrap();
    // Every 7th byte (the whole file would take minutes in a debug build).
    for at in (0..bytes.len()).step_by(7) {
        let mut b = bytes.clone();
        b[at] ^= 0x20;
        let v = verify(std::io::Cursor::new(b), Some(&key));
        assert!(
            !v.problems.is_empty(),
            "byte {at} flipped and still verified"
        );
    }
}
