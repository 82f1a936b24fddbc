//! The bundles in tests/fixtures/evidence (made by `tagwatch evidence`)
//! still verify with their keys: the format and the chain's canonical
//! forms have not changed under them. `bundle.zip` (the fuzz target's
//! seed) was made before inventories and health reports were chained;
//! `bundle-page-views.zip` after, with a page view's inventory and health
//! report whose chain entries it carries. If this fails after a deliberate
//! format change, do not replace the fixtures: old bundles must keep
//! verifying (add a new fixture, and bump `bundle::FORMAT` only for a
//! format older readers cannot read; docs/evidence.md).

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
    // Said, not claimed: its page views are not proven.
    assert!(
        v.notes.iter().any(|n| n.contains(
            "page_views.json carries no chain mark (made before inventories and health reports were chained, or from an events store before it chained them): they are not proven"
        )),
        "{:?}",
        v.notes
    );
}

#[test]
fn the_fixture_bundle_with_page_views_verifies_them_too() {
    let key = load_public(fixture("bundle-page-views.pub").to_str().unwrap()).unwrap();
    let file = std::fs::File::open(fixture("bundle-page-views.zip")).unwrap();
    let v = verify(file, Some(&key));
    assert!(v.problems.is_empty(), "{:?}", v.problems);
    assert!(
        v.notes.iter().any(|n| n.contains(
            "1 inventories and 1 health reports of the findings' page views, checked against the chain"
        )),
        "{:?}",
        v.notes
    );
}

/// Every file of a zip, unpacked.
fn contents(zip: &[u8]) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::io::Cursor::new(zip)).unwrap();
    (0..z.len())
        .map(|i| {
            let mut f = z.by_index(i).unwrap();
            let mut data = Vec::new();
            std::io::Read::read_to_end(&mut f, &mut data).unwrap();
            (f.name().to_owned(), data)
        })
        .collect()
}

/// Any byte of any file's stored data flipped fails verification. (The
/// zip's framing — timestamps, version and attribute fields — is not
/// signed and not evidence: docs/evidence.md says so.)
#[test]
fn a_flipped_byte_in_any_file_of_the_fixture_fails() {
    let key = load_public(fixture("bundle.pub").to_str().unwrap()).unwrap();
    let bytes = std::fs::read(fixture("bundle.zip")).unwrap();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.clone())).unwrap();
    let mut ranges = Vec::new();
    for i in 0..zip.len() {
        let f = zip.by_index_raw(i).unwrap();
        let start = usize::try_from(f.data_start()).unwrap();
        ranges.push((
            f.name().to_owned(),
            start..start + usize::try_from(f.compressed_size()).unwrap(),
        ));
    }
    assert_eq!(ranges.len(), 9);
    for (name, range) in ranges {
        // Every 5th byte (all of them would take minutes in a debug build).
        for at in range.step_by(5) {
            let mut b = bytes.clone();
            b[at] ^= 0x20;
            let v = verify(std::io::Cursor::new(b.clone()), Some(&key));
            // A flip of the deflate stream's unused last bits changes no
            // file: then, and only then, it verifies.
            assert!(
                !v.problems.is_empty() || contents(&b) == contents(&bytes),
                "byte {at} of {name} flipped, a file changed, and it still verified"
            );
        }
    }
}
