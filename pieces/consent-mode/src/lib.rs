//! On-demand piece of the page's monitor: Google Consent Mode commands
//! (`gtag('consent', 'default' | 'update', {…})` in `dataLayer`) folded
//! into the state Google's tags claim (`tagwatch_core::consent_mode`). The
//! main module does not fold them (the shell hands the commands here,
//! `src/pieces.rs`); a page fetches this module only when its `dataLayer`
//! has a Consent Mode command. The `gcs` parameter of Google's hits is read
//! by the main module itself.
//!
//! A plain wasm module: no imports, no JS glue. Instantiate it with an
//! empty import object; one instance per page view, which keeps the state
//! of the commands folded so far. Exports (all numbers are wasm `i32`):
//!
//! - `memory`.
//! - `input(len) -> ptr`: room for `len` bytes; write UTF-8 there (e.g.
//!   `TextEncoder.encodeInto`) before the call that reads it.
//! - `fold(len) -> u32`: `len` bytes of input are one command in the form
//!   of `tagwatch_core::consent_mode::command_to_text`; it is folded into
//!   the state and the answer is what `ConsentMode::fold` gives, in the
//!   form of `consent_mode::Fold::to_bits` (0: the command is not
//!   recognised). Read as a JS number: `>>> 0` keeps it unsigned.
//!
//! The main module takes the answer as is (`Fold::from_bits`, then
//! `Engine::consent_mode_fold` with the time of the command), for every
//! command in order. The visitor's region is unknown in the page, as in
//! the engine: region-scoped defaults are skipped. Nothing here panics or
//! grows without bound on any input (the state is seven types and one
//! number).
#![cfg_attr(target_arch = "wasm32", no_std)]
// A raw wasm ABI: exports named by `no_mangle`, and buffers shared with the
// caller (see `wasm.rs`).
#![allow(unsafe_code)]

extern crate alloc;

#[path = "../../wasm.rs"]
mod wasm;

use tagwatch_core::consent_mode::{self, ConsentMode, Fold};
pub use wasm::input;

/// The commands folded so far in this page view.
static mut STATE: Option<ConsentMode> = None;

/// Export `fold(len) -> u32`: the command in the input folded into the
/// state, in the compact form (0: not recognised).
#[no_mangle]
pub extern "C" fn fold(len: usize) -> u32 {
    let (command, params) = consent_mode::command_from_text(wasm::text(len));
    // One module instance, one thread, never re-entrant (see `wasm.rs`).
    let state = unsafe { &mut *core::ptr::addr_of_mut!(STATE) };
    state
        .get_or_insert_with(ConsentMode::default)
        .fold(command, &params)
        .map_or(0, Fold::to_bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The caller's side of the ABI: writes the command where `input` says.
    fn call(command: &str, params: &[(&str, &str)]) -> Option<Fold> {
        let text = consent_mode::command_to_text(command, params);
        let ptr = input(text.len());
        unsafe { core::ptr::copy_nonoverlapping(text.as_ptr(), ptr, text.len()) };
        Fold::from_bits(fold(text.len()))
    }

    #[test]
    fn folds_as_the_engine_does() {
        let mut engine = ConsentMode::default();
        let script: [(&str, &[(&str, &str)]); 6] = [
            (
                "default",
                &[
                    ("ad_storage", "denied"),
                    ("analytics_storage", "granted"),
                    ("wait_for_update", "500"),
                ],
            ),
            ("default", &[("ad_storage", "granted"), ("region", "DE")]),
            ("bogus", &[("ad_storage", "granted")]),
            ("update", &[("ad_storage", "GRANTED")]),
            // A forged parameter inside a value stays inside that value.
            ("update", &[("region", "x\nanalytics_storage\tdenied")]),
            ("default", &[("wait_for_update", "99999999999")]),
        ];
        for (command, params) in script {
            assert_eq!(
                call(command, params),
                engine.fold(command, params),
                "{command} {params:?}"
            );
        }
        let last = call("update", &[]).unwrap();
        assert!(last.ad_storage && last.analytics_storage && !last.default);
        assert_eq!(last.wait_ms, consent_mode::MAX_WAIT_MS);
        assert_eq!(call("", &[]), None);
        assert_eq!(
            fold(usize::MAX),
            0,
            "more than was written reads as nothing"
        );
    }
}
