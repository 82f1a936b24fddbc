//! On-demand piece of the page's monitor: the consent a CMP's cookies
//! record, for pages whose CMP has no live API the monitor can read yet
//! (and for the re-check after a withdrawal). The main module has no
//! cookie readers (`tagwatch-core` without feature `cmp-cookies`); a page
//! fetches this module only when `tagwatch_core::cmp::in_cookies` finds a
//! CMP cookie in `document.cookie`.
//!
//! A plain wasm module: no imports, no JS glue. Instantiate it with an
//! empty import object. Exports (all numbers are wasm `i32`):
//!
//! - `memory`.
//! - `input(len) -> ptr`: room for `len` bytes; write UTF-8 there (e.g.
//!   `TextEncoder.encodeInto`) before the call that reads it.
//! - `names(len)`: the site's meaning of its CMP's names (the policy's
//!   `cmp` key), `len` bytes of input in the form of
//!   `tagwatch_core::consent::ConsentNames::to_text` (one name a line,
//!   `source<TAB>name<TAB>categories`, comma-separated wire names). Kept
//!   for the following `read` calls; none set means the defaults.
//! - `read(len) -> u32`: `len` bytes of input are a `Cookie:` header or
//!   `document.cookie`; the answer is what
//!   `tagwatch_core::cmp::from_cookies_with` finds, in the form of
//!   `CmpConsent::to_bits` (bits 0–7 the categories, 2 bits each in
//!   `necessary, functional, analytics, marketing` order: 0 unknown,
//!   1 refused, 2 granted; bit 8 decided; bit 9 implied (decided by the
//!   CMP without a choice); bits 16–23 the CMP's place in
//!   `cmp::PRECEDENCE` plus one), or 0 when no CMP cookie is there. Read
//!   as a JS number: `>>> 0` keeps it unsigned.
//! - `vendors(len, which) -> u32`: the choices about single vendors the
//!   last `read` found (`CmpConsent::vendors`, a CMP's per-service
//!   choices: Klaro's): `which` 0 the vendors granted, else those refused,
//!   bit `i` the vendor in slot `i` of `tagwatch_core::cmp::SERVICES`;
//!   `len` (no input read) is there because every call passes it first.
//!
//! The main module takes the answer as is (`CmpConsent::from_bits`, then
//! `Engine::cmp_cookie_consent` with the time the snapshot was read), for
//! every snapshot in order, the first one included: its consent counts from
//! page start. Nothing here panics or grows without bound on any input.
#![cfg_attr(target_arch = "wasm32", no_std)]
// A raw wasm ABI: exports named by `no_mangle`, and buffers shared with the
// caller (see `wasm.rs`).
#![allow(unsafe_code)]

extern crate alloc;

#[path = "../../wasm.rs"]
mod wasm;

use tagwatch_core::cmp;
use tagwatch_core::consent::{ConsentNames, Vendors};
pub use wasm::input;

/// The site's names, set by `names`.
static mut NAMES: Option<ConsentNames> = None;

/// The vendor choices the last `read` found.
static mut VENDORS: Vendors = Vendors {
    granted: 0,
    refused: 0,
};

/// Export `names(len)`: the site's CMP names from the input.
#[no_mangle]
pub extern "C" fn names(len: usize) {
    let names = ConsentNames::from_text(wasm::text(len));
    // One module instance, one thread, never re-entrant (see `wasm.rs`).
    unsafe { *core::ptr::addr_of_mut!(NAMES) = Some(names) };
}

/// Export `read(len) -> u32`: the CMP consent in the cookie header in the
/// input, in the compact form (0: none).
#[no_mangle]
pub extern "C" fn read(len: usize) -> u32 {
    // As in `names`.
    let names = unsafe { (*core::ptr::addr_of!(NAMES)).as_ref() };
    let default = ConsentNames::default();
    let found = cmp::from_cookies_with(wasm::text(len), names.unwrap_or(&default));
    // As in `names`.
    unsafe { *core::ptr::addr_of_mut!(VENDORS) = found.map(|c| c.vendors).unwrap_or_default() };
    found.map_or(0, cmp::CmpConsent::to_bits)
}

/// Export `vendors(len, which) -> u32`: of the last `read`, the vendors
/// granted (`which` 0) or refused (else); `len` unused.
#[no_mangle]
pub extern "C" fn vendors(_len: usize, which: u32) -> u32 {
    // As in `names`.
    let v = unsafe { *core::ptr::addr_of!(VENDORS) };
    if which == 0 {
        v.granted
    } else {
        v.refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::cmp::CmpConsent;
    use tagwatch_core::consent::Category;

    /// The caller's side of the ABI: writes `text` where `input` says.
    fn put(text: &str) -> usize {
        let ptr = input(text.len());
        unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len()) };
        text.len()
    }

    #[test]
    fn reads_a_header_with_the_sites_names() {
        let header = "OptanonAlertBoxClosed=2024-01-01; OptanonConsent=isGpcEnabled=0&groups=C0001%3A1%2CC0005%3A1";
        let found = CmpConsent::from_bits(read(put(header))).unwrap();
        assert_eq!((found.cmp, found.decided), ("onetrust", true));
        assert_eq!(found.categories.get(Category::Functional), None);
        names(put("onetrust\tC0005\tfunctional\n"));
        let found = CmpConsent::from_bits(read(put(header))).unwrap();
        assert_eq!(found.categories.get(Category::Functional), Some(true));
        assert_eq!(read(put("a=1; b=2")), 0);
        assert_eq!(read(put("")), 0);
        assert_eq!((vendors(0, 0), vendors(0, 1)), (0, 0));
        // Klaro's per-service choices: GA4 (slot 0) granted, Hotjar (slot 3) refused.
        let found = read(put(
            "klaro=%7B%22google-analytics%22%3Atrue%2C%22hotjar%22%3Afalse%7D",
        ));
        assert_eq!(CmpConsent::from_bits(found).unwrap().cmp, "klaro");
        assert_eq!((vendors(0, 0), vendors(0, 1)), (1, 1 << 3));
    }
}
