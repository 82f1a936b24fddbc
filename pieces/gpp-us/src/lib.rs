//! On-demand piece of the page's monitor: the consent categories of a GPP
//! string's US sections (national and state: `usnat`, `usca`, `usva`,
//! `usco`, `usut`, `usct`). The main module has no GPP decoder
//! (`tagwatch-core` without feature `gpp`); a page fetches this module only
//! when its CMP's `__gpp` API reports a GPP string (`signalStatus`
//! `ready`). The TCF EU section is not read here: `__tcfapi`, which every
//! TCF CMP must offer, reports it already decoded.
//!
//! A plain wasm module: no imports, no JS glue. Instantiate it with an
//! empty import object. Exports (all numbers are wasm `i32`):
//!
//! - `memory`.
//! - `input(len) -> ptr`: room for `len` bytes; write UTF-8 there (e.g.
//!   `TextEncoder.encodeInto`) before the call that reads it.
//! - `categories(len, sections) -> u32`: `len` bytes of input are the GPP
//!   string; `sections` the CMP's `applicableSections` as a bit set (bit
//!   `id` set for each id from 0 to 31; the US sections are ids 7–12, and
//!   `-1`, "none applies", sets no bit). The answer is what
//!   `tagwatch_core::gpp::us_categories` gives, in the form of
//!   `Categories::to_bits` (2 bits per category in `necessary, functional,
//!   analytics, marketing` order: 0 unknown, 1 refused, 2 granted); 0 when
//!   nothing is known (no US section applies, or the string does not
//!   decode).
//!
//! The main module takes the answer as is (`Categories::from_bits`, then
//! `Engine::gpp_categories`). Nothing here panics on any input.
#![cfg_attr(target_arch = "wasm32", no_std)]
// A raw wasm ABI: exports named by `no_mangle`, and buffers shared with the
// caller (see `wasm.rs`).
#![allow(unsafe_code)]

extern crate alloc;

#[path = "../../wasm.rs"]
mod wasm;

use alloc::vec::Vec;
use tagwatch_core::gpp;
pub use wasm::input;

/// Export `categories(len, sections) -> u32`: the categories of the GPP
/// string in the input for the applicable sections.
#[no_mangle]
pub extern "C" fn categories(len: usize, sections: u32) -> u32 {
    let applicable: Vec<i32> = (0..32).filter(|id| sections >> id & 1 == 1).collect();
    u32::from(gpp::us_categories(wasm::text(len), &applicable).to_bits())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::consent::{Categories, Category};

    fn call(gpp: &str, sections: u32) -> Categories {
        let ptr = input(gpp.len());
        // The caller's side of the ABI: write the bytes where `input` said.
        unsafe { core::ptr::copy_nonoverlapping(gpp.as_ptr(), ptr, gpp.len()) };
        let bits = categories(gpp.len(), sections);
        Categories::from_bits(u8::try_from(bits).unwrap())
    }

    #[test]
    fn us_sections_as_the_core_reads_them() {
        // Header [7], usnat v1: notices given, did not opt out, GPC set.
        let s = "DBABL~BVQqAAAAAa.Y";
        assert_eq!(call(s, 1 << 7), gpp::us_categories(s, &[7]));
        assert_eq!(call(s, 1 << 7).get(Category::Marketing), Some(false));
        assert_eq!(
            call(s, 1 << 8),
            Categories::default(),
            "usnat does not apply"
        );
        assert_eq!(call(s, 0), Categories::default());
        assert_eq!(
            call("DBABM", 1 << 7),
            Categories::default(),
            "does not decode"
        );
    }
}
