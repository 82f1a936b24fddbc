//! tagwatch core: the sans-IO engine shared by the in-page monitor (wasm),
//! the browser extension, the collector and the CLI, so that a finding means
//! the same thing everywhere.
//!
//! Data flows one way: observation (URL, cookie names, globals) →
//! [`catalog`] match → [`engine`] judges it against the [`consent`] timeline
//! and the [`policy`] → [`report`] batch. Nothing here touches a browser API.
//!
//! ```
//! use tagwatch_core::{engine::{Engine, Request}, policy::Policy};
//! let mut engine = Engine::new(Policy::default(), "https://shop.example/");
//! engine.request(Request { url: "https://widget.intercom.io/widget/abc12345",
//!     start: 120.0, initiator: "script", frame: "top", ..Default::default() });
//! assert_eq!(engine.findings()[0].kind.as_str(), "script_before_consent");
//! ```
#![cfg_attr(not(test), no_std)]
#![deny(missing_docs)]

// No std (the unit tests aside): the page's wasm gets no std panic
// machinery from the core, and nothing here needs an OS
// (`core::error::Error` is in core).
//
// A one-character pattern is written `[c]` (`s.split([','])`), not `c`,
// here and in the shell: a `char` pattern searches with core's
// `CharSearcher` (`memchr`, `memrchr` and a slice-index check whose panic
// formats its numbers), 401 bytes of the page's wasm gzip for patterns
// that are ASCII; `[c]` compares char by char and has no panic path.
// tests/e2e/size.test.mjs checks the shipped module for it.
extern crate alloc;
// The collector's typed reader (feature `read`) is not on the page: it may
// use std.
#[cfg(feature = "read")]
extern crate std;

#[cfg(any(feature = "gpp", feature = "tcf"))]
mod bits;
pub mod catalog;
pub mod cmp;
pub mod consent;
pub mod consent_mode;
pub mod cookie;
pub mod engine;
#[cfg(feature = "gpp")]
pub mod gpp;
pub mod inventory;
mod json;
pub mod policy;
pub mod redact;
pub mod report;
#[cfg(feature = "tcf")]
pub mod tcf;
pub mod url;

/// The first `n` characters of `s` (all of it when shorter): bounded
/// evidence and page fields, cut on a character boundary. Not
/// `s.chars().take(n).collect()`, whose char-by-char re-encoding is code the
/// page's wasm would carry for nothing.
pub fn prefix(s: &str, n: usize) -> &str {
    s.char_indices()
        .nth(n)
        .and_then(|(i, _)| s.get(..i))
        .unwrap_or(s)
}

/// The longest start of `s` of at most `max` bytes that ends on a
/// character boundary.
pub(crate) fn floor(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

#[cfg(test)]
mod tests {
    #[test]
    fn prefix_counts_characters() {
        use super::prefix;
        assert_eq!(prefix("héllo", 2), "hé");
        assert_eq!(prefix("€😀x", 2), "€😀");
        assert_eq!(prefix("ab", 5), "ab");
        assert_eq!(prefix("ab", 2), "ab");
        assert_eq!(prefix("abc", 0), "");
        assert_eq!(prefix("", 3), "");
        let long = "é".repeat(600);
        assert_eq!(
            prefix(&long, 512),
            long.chars().take(512).collect::<alloc::string::String>()
        );
    }
}
