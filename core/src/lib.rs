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
// Strings are pushed as `&str`, one character too (the JSON writer's
// punctuation): `String::push` of a `char` kept core's UTF-8 encoder in
// the page's wasm (docs/benchmarks.md, eleventh round; the shell does the
// same).
#![allow(clippy::single_char_add_str)]

// No std (the unit tests aside): the page's wasm gets no std panic
// machinery from the core, and nothing here needs an OS
// (`core::error::Error` is in core).
//
// A text is split at an ASCII byte by [`fields`], not `str::split`, and
// searched for one by bytes (`url::find_ascii`), here and in the shell:
// a `char` pattern searches with core's `CharSearcher` (`memchr`,
// `memrchr` and a slice-index check whose panic formats its numbers), 401
// bytes of the page's wasm gzip for patterns that are ASCII
// (tests/e2e/size.test.mjs checks the shipped module for it); a `[c]`
// pattern decodes and compares char by char through core's generic
// searchers and `Split` (docs/benchmarks.md, eleventh round). White
// space is cut by [`trim`] (exactly what `str::trim` cuts, found by
// bytes), whose own decoding of each end character and table lookup were
// more code; characters are counted by their lead bytes ([`prefix`]) and
// numbers read by [`parse_u64`], for the same reason.
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
#[cfg(test)]
mod testing;
pub mod url;

/// The first `n` characters of `s` (all of it when shorter): bounded
/// evidence and page fields, cut on a character boundary. Not
/// `s.chars().take(n).collect()`, whose char-by-char re-encoding is code the
/// page's wasm would carry for nothing.
pub fn prefix(s: &str, n: usize) -> &str {
    // By bytes: a character starts at each byte that is not a UTF-8
    // continuation byte (`char_indices` decodes each character: core's
    // UTF-8 decoder in the page's wasm for this alone).
    let mut count = 0;
    for (i, b) in s.bytes().enumerate() {
        if b & 0xc0 != 0x80 {
            if count == n {
                return s.get(..i).unwrap_or(s);
            }
            count += 1;
        }
    }
    s
}

/// `s` as a `u64` where `s.parse::<u64>()` reads one (decimal digits, an
/// optional leading `+`, no overflow), else `None`. By bytes: `parse`
/// is generic code with a digit decoder per character, and every number
/// the page reads is one of these.
pub(crate) fn parse_u64(s: &str) -> Option<u64> {
    let digits = s.strip_prefix("+").unwrap_or(s);
    if digits.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return None;
        }
        // Not `checked_mul`: a `u64` multiply's overflow check is a 128-bit
        // multiply in wasm32 (`__multi3`); `n` at most `u64::MAX / 10`
        // cannot overflow times ten.
        if n > u64::MAX / 10 {
            return None;
        }
        n = (n * 10).checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// `s` split at each `sep`, an ASCII byte: what `s.split([sep as char])`
/// gives (empty pieces kept; `s` itself when it has no `sep`), by bytes
/// (a UTF-8 text has an ASCII byte only where it has that character).
pub fn fields(s: &str, sep: u8) -> Fields<'_> {
    Fields { rest: Some(s), sep }
}

/// The iterator of [`fields`].
#[derive(Debug, Clone)]
pub struct Fields<'a> {
    rest: Option<&'a str>,
    sep: u8,
}

impl<'a> Iterator for Fields<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        let rest = self.rest?;
        match rest.as_bytes().iter().position(|b| *b == self.sep) {
            Some(i) => {
                self.rest = rest.get(i + 1..);
                rest.get(..i)
            }
            None => {
                self.rest = None;
                Some(rest)
            }
        }
    }
}

/// `s` without white space around it: what `str::trim` cuts (Unicode's
/// `White_Space`), found by its UTF-8 bytes at each end. `trim` decodes
/// characters from both ends and looks each up in a table: core's UTF-8
/// decoding and that table in the page's wasm, for texts whose white
/// space, when they have any, is ASCII's.
pub fn trim(s: &str) -> &str {
    let bytes = s.as_bytes();
    let (mut from, mut to) = (0, bytes.len());
    loop {
        let n = white(bytes.get(from..to).unwrap_or(&[]));
        if n == 0 {
            break;
        }
        from += n;
    }
    while to > from {
        // The last character starts at the last byte that is not a UTF-8
        // continuation byte.
        let mut start = to - 1;
        while start > from && bytes.get(start).is_some_and(|b| b & 0xc0 == 0x80) {
            start -= 1;
        }
        if start + white(bytes.get(start..to).unwrap_or(&[])) != to {
            break;
        }
        to = start;
    }
    // Each cut was a whole character: both ends are boundaries.
    s.get(from..to).unwrap_or("")
}

/// The white space beyond ASCII's (`char::is_whitespace`), as UTF-8.
const WHITE: &[u8] = concat!(
    "\u{85}\u{a0}\u{1680}",
    "\u{2000}\u{2001}\u{2002}\u{2003}\u{2004}\u{2005}\u{2006}\u{2007}\u{2008}\u{2009}\u{200a}",
    "\u{2028}\u{2029}\u{202f}\u{205f}\u{3000}",
)
.as_bytes();

/// The length of the white-space character `b` starts with, 0 for none.
/// By bytes: one of [`WHITE`] is found where its lead byte is, so a
/// window of the character's length that equals it is that character.
#[inline(never)]
fn white(b: &[u8]) -> usize {
    let n = match b.first() {
        Some(9..=13 | b' ') => return 1,
        Some(0xc0..=0xdf) => 2,
        Some(0xe0..=0xef) => 3,
        _ => return 0,
    };
    match b.get(..n) {
        Some(c) if WHITE.windows(n).any(|w| w == c) => n,
        _ => 0,
    }
}

/// `s` split at its first `sep`, an ASCII byte, as
/// `s.split_once([sep as char])` splits it, by bytes (see [`fields`]).
pub(crate) fn split_once(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.as_bytes().iter().position(|b| *b == sep)?;
    Some((s.get(..i)?, s.get(i + 1..)?))
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

/// `item` put into `list` (in order of `at`) after every item at or before
/// its time: what `list.insert(list.partition_point(|x| at(x) <= at(&item)),
/// item)` does, by a push and swaps from the end (updates arrive nearly
/// in time order, so it seldom swaps). `Vec::insert` and `partition_point`
/// were generic code in the page's wasm for the two timelines alone. Each
/// swap is of the pair `get_mut(before..=i)` gives, not `swap(before, i)`:
/// its bounds check on `i` was the page's wasm's only call of
/// `panic_bounds_check` (with its message: 104 bytes of gzip,
/// docs/benchmarks.md, sixteenth round).
pub(crate) fn insert_by_time<T>(list: &mut alloc::vec::Vec<T>, item: T, at: fn(&T) -> u64) {
    let t = at(&item);
    list.push(item);
    let mut i = list.len().saturating_sub(1);
    while let Some(before) = i.checked_sub(1) {
        match list.get_mut(before..=i) {
            Some([x, y]) if at(x) > t => core::mem::swap(x, y),
            _ => break,
        }
        i = before;
    }
}

#[cfg(test)]
mod tests {
    /// `insert_by_time` puts each item where `partition_point` and `insert`
    /// put it (equal times: after the ones there).
    #[test]
    fn insert_by_time_is_partition_point_insert() {
        use super::insert_by_time;
        use alloc::vec::Vec;
        let mut draws = crate::testing::Draws::new();
        for round in 0..500u64 {
            let mut ours: Vec<(u64, u64)> = Vec::new();
            let mut std = ours.clone();
            for k in 0..round % 24 {
                let x = draws.next();
                // Few distinct times (ties), mostly rising (the common case).
                let t = if x.is_multiple_of(3) {
                    x % 5
                } else {
                    k + x % 2
                };
                let item = (t, k);
                insert_by_time(&mut ours, item, |i| i.0);
                let pos = std.partition_point(|i| i.0 <= t);
                std.insert(pos, item);
                assert_eq!(ours, std, "round {round}");
            }
        }
    }

    /// `fields` splits as `str::split` with the one-character pattern,
    /// on texts of ASCII and multi-byte characters and of separators
    /// only, at their ends and side by side.
    #[test]
    fn fields_split_as_str_split() {
        use super::fields;
        use alloc::vec::Vec;
        let parts = ["", ",", "a", "é", "€😀", ",,", "\t", "\n", "|", "ab", "="];
        for text in crate::testing::texts(&parts, 9, 5_000) {
            for sep in [b',', b'\t', b'\n', b'|', b'='] {
                let want: Vec<&str> = text.split([char::from(sep)]).collect();
                assert_eq!(fields(&text, sep).collect::<Vec<_>>(), want, "{text:?}");
            }
        }
    }

    /// `trim` cuts what `str::trim` cuts: every white-space character
    /// (and the characters next to them in code, which are not), alone,
    /// repeated, at either end and inside, among multi-byte characters.
    #[test]
    fn trim_is_str_trim() {
        use super::trim;
        let white: alloc::vec::Vec<char> = (0..=0x3001u32)
            .filter_map(char::from_u32)
            .filter(|c| c.is_whitespace())
            .collect();
        assert_eq!(white.len(), 25, "Unicode's White_Space: {white:?}");
        let mut parts: alloc::vec::Vec<alloc::string::String> = [
            "", "a", "é", "€", "😀", "x y", "\u{84}", "\u{86}", "\u{9f}", "\u{1681}", "\u{200b}",
            "\u{2027}", "\u{202a}", "\u{2030}", "\u{205e}", "\u{3001}", "\u{feff}", "\u{8}",
            "\u{e}", "\u{1f}",
        ]
        .iter()
        .map(|s| (*s).into())
        .collect();
        parts.extend(white.iter().map(|c| c.to_string()));
        for c in &white {
            for p in &parts {
                for t in [
                    alloc::format!("{c}{p}"),
                    alloc::format!("{p}{c}"),
                    alloc::format!("{c}{c}{p}{c}x{c}{p}{c}"),
                ] {
                    assert_eq!(trim(&t), t.trim(), "{t:?}");
                }
            }
        }
        for t in crate::testing::texts(&parts, 8, 5_000) {
            assert_eq!(trim(&t), t.trim(), "{t:?}");
        }
    }

    /// `parse_u64` reads what `str::parse::<u64>` reads.
    #[test]
    fn parse_u64_is_str_parse() {
        use super::parse_u64;
        use alloc::format;
        let mut texts: alloc::vec::Vec<alloc::string::String> = [
            "",
            "+",
            "-",
            "0",
            "+0",
            "-0",
            "00",
            "7",
            "+7",
            "-7",
            "1.5",
            " 1",
            "1 ",
            "1e3",
            "18446744073709551615",
            "18446744073709551616",
            "+18446744073709551615",
            "99999999999999999999",
            "١",
            "1١",
            "++1",
            "0x10",
            "٣",
        ]
        .iter()
        .map(|s| (*s).into())
        .collect();
        for n in [
            1u64,
            9,
            10,
            255,
            65_535,
            1 << 32,
            u64::MAX / 10,
            u64::MAX - 1,
        ] {
            texts.push(format!("{n}"));
            texts.push(format!("{n}0"));
            texts.push(format!("0{n}"));
        }
        for t in &texts {
            assert_eq!(parse_u64(t), t.parse::<u64>().ok(), "{t:?}");
        }
    }

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
