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
use tagwatch_core::consent::ConsentNames;
pub use wasm::input;

/// The site's names, set by `names`.
static mut NAMES: Option<ConsentNames> = None;

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
    cmp::from_cookies_with(wasm::text(len), names.unwrap_or(&default))
        .map_or(0, cmp::CmpConsent::to_bits)
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
    }
}
