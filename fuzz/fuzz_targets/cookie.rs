//! `cookie::pairs` and `cookie::live_names` on an arbitrary `Cookie:` header.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tagwatch_core::cookie;

fuzz_target!(|data: &[u8]| {
    let header = String::from_utf8_lossy(data);
    let mut n = 0usize;
    for (name, value) in cookie::pairs(&header) {
        // Both are slices of the header.
        assert!(name.len() + value.len() <= header.len());
        n += 1;
    }
    assert!(cookie::live_names(&header).count() <= n);
});
