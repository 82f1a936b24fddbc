//! Text that is not a URL, scrubbed of personal identifiers before it is
//! kept: free text (a cookie name, a user agent, a field a newer or forged
//! client added) and error names.
//!
//! URLs and paths have their own functions ([`crate::url::page_url`],
//! [`crate::url::redact_path`]); this module applies the same identifier
//! test ([`crate::url`]'s: e-mail addresses, runs of 6+ digits, UUIDs,
//! 16+ hex characters, tokens and JWTs) to the words of a text, and replaces each one found
//! with [`PLACEHOLDER`]. The collector runs every stored string of a report
//! through one of these (defence in depth), so a report from an old or
//! forged client cannot store an e-mail or a user id either.

use alloc::{borrow::Cow, string::String};

use crate::url::{looks_like_id, TOKEN_MIN};

/// What an identifier is replaced with (as in redacted paths).
pub const PLACEHOLDER: &str = ":id";

/// Longest error name kept: the names the platform throws
/// (`CompileError`, `SecurityError`) are far shorter.
const MAX_ERROR_NAME: usize = 64;

/// Characters that belong to a word: letters and digits of any script, and
/// the punctuation found inside e-mail addresses, UUIDs and tokens. Anything
/// else (space, `/`, `;`, `(`, `=`, quotes…) separates words.
fn in_word(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '+' | '%' | '@')
}

/// `text` with every identifier-like word replaced by [`PLACEHOLDER`]:
///
/// - a word with an `@` (or `%40`) between a local part and a dotted
///   domain is an e-mail address, replaced whole;
/// - otherwise each piece of the word between `.`, `_`, `+` and `%` is
///   tested (a piece with an `@` is an identifier, as in paths), then each
///   part of it between `-` (so a UUID is caught whole and `user-12345678`
///   loses only its number).
///
/// Anything that is not an identifier is kept as it is, separators
/// included: `_hjSessionUser_3456789` → `_hjSessionUser_:id`. A text with
/// nothing to replace (the usual case) is returned as it is, unallocated.
pub fn redact_text(text: &str) -> Cow<'_, str> {
    if !may_hold_id(text) || !words(text).any(word_has_id) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(in_word) {
        let (gap, tail) = rest.split_at(start);
        out.push_str(gap);
        let end = tail.find(|c: char| !in_word(c)).unwrap_or(tail.len());
        let (word, after) = tail.split_at(end);
        redact_word(word, &mut out);
        rest = after;
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Whether `text` can hold an identifier at all: every kind of one has an
/// `@` (or `%40`), a run of 6 or more hex digits (a run of digits, a
/// UUID's parts, a hex token) or a run of [`TOKEN_MIN`] ASCII letters,
/// digits and `-` (a token: [`crate::url`]'s rule; a word's pieces are cut
/// at `.`, `_`, `+` and `%`, so a token piece is such a run). One pass over
/// the bytes, for the many texts (user agents, cookie names) that hold none.
fn may_hold_id(text: &str) -> bool {
    let bytes = text.as_bytes();
    let (mut hex, mut token) = (0, 0);
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'@' => return true,
            b'%' if bytes.get(i + 1..i + 3).is_some_and(|w| w == b"40") => return true,
            _ => {}
        }
        hex = if b.is_ascii_hexdigit() { hex + 1 } else { 0 };
        token = if b.is_ascii_alphanumeric() || *b == b'-' {
            token + 1
        } else {
            0
        };
        if hex >= 6 || token >= TOKEN_MIN {
            return true;
        }
    }
    false
}

/// The words of a text (see [`in_word`]).
fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !in_word(c)).filter(|w| !w.is_empty())
}

/// Whether [`redact_word`] would change `word`.
fn word_has_id(word: &str) -> bool {
    is_email(word)
        || word
            .split(['.', '_', '+', '%'])
            .any(|piece| looks_like_id(piece) || piece.split(['-']).any(looks_like_id))
}

/// A cookie name as it may be kept. A name the catalog knows is evidence
/// as it is (`intercom-id-k9x2m4qa`, `_hjSessionUser_3456789`: app and site
/// ids the reader needs), and the monitor reports no other; any other name
/// (a forged report's) is free text ([`redact_text`]), and so is a known
/// prefix followed by an e-mail address (`intercom-id-jane@example.com`: no
/// app id has an `@`).
pub fn redact_cookie_name(name: &str) -> Cow<'_, str> {
    redact_cookie_name_with(name, |n| crate::catalog::classify_cookie(n).is_some())
}

/// [`redact_cookie_name`] with `known` telling whether the catalog knows a
/// name (`catalog::classify_cookie(name).is_some()`, or an index of it: the
/// collector's, `report::read`).
pub fn redact_cookie_name_with(name: &str, known: impl FnOnce(&str) -> bool) -> Cow<'_, str> {
    let has_at = |s: &str| {
        s.contains(['@'])
            || s.as_bytes()
                .windows(3)
                .any(|w| w.eq_ignore_ascii_case(b"%40"))
    };
    if !has_at(name) && known(name) {
        Cow::Borrowed(name)
    } else {
        redact_text(name)
    }
}

fn redact_word(word: &str, out: &mut String) {
    if is_email(word) {
        out.push_str(PLACEHOLDER);
        return;
    }
    let mut rest = word;
    loop {
        let end = rest.find(['.', '_', '+', '%']).unwrap_or(rest.len());
        let (piece, tail) = rest.split_at(end);
        if looks_like_id(piece) {
            out.push_str(PLACEHOLDER);
        } else {
            for (j, part) in piece.split(['-']).enumerate() {
                if j > 0 {
                    out.push('-');
                }
                out.push_str(if looks_like_id(part) {
                    PLACEHOLDER
                } else {
                    part
                });
            }
        }
        let mut tail = tail.chars();
        match tail.next() {
            Some(separator) => out.push(separator),
            None => return,
        }
        rest = tail.as_str();
    }
}

/// `local@domain.tld`, with `%40` read as `@`.
fn is_email(word: &str) -> bool {
    let bytes = word.as_bytes();
    if !bytes.contains(&b'@') && !bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%40")) {
        return false;
    }
    let lower = word.to_ascii_lowercase();
    let at = lower
        .find(['@'])
        .map(|i| (i, 1))
        .or_else(|| lower.find("%40").map(|i| (i, 3)));
    let Some((i, len)) = at else {
        return false;
    };
    let (local, domain) = (
        lower.get(..i).unwrap_or(""),
        lower.get(i + len..).unwrap_or(""),
    );
    !local.is_empty() && domain.trim_matches(['.']).contains(['.'])
}

/// An error's name as a report may carry it (`CompileError`): a JavaScript
/// identifier of at most 64 characters that does not look like an
/// identifier of a person. Anything else (a message, an e-mail, a number)
/// is `None`: not kept.
pub fn error_name(name: &str) -> Option<&str> {
    let mut chars = name.chars();
    let first = chars.next()?;
    let valid = name.len() <= MAX_ERROR_NAME
        && (first.is_ascii_alphabetic() || first == '_' || first == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$');
    (valid && !looks_like_id(name)).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_that_are_identifiers_go() {
        let cases = [
            ("jane.doe@example.com", ":id"),
            ("mail: Jane.Doe+tag@Example.co.uk.", "mail: :id"),
            ("jane.doe%40example.com", ":id"),
            ("6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978", ":id"),
            ("id=6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978;x", "id=:id;x"),
            ("user 12345678", "user :id"),
            ("user-12345678", "user-:id"),
            ("_hjSessionUser_3456789", "_hjSessionUser_:id"),
            ("tok deadbeefdeadbeef0123", "tok :id"),
            ("AMCV_0123456789ABCDEF0123@AdobeOrg", "AMCV_:id"),
            ("a@b", ":id"),
            ("hi @handle", "hi :id"),
            ("a.12345678.b", "a.:id.b"),
            // Tokens: no hex run, no `@` (the shortcut must not skip them).
            ("reset zQxRwPzQ7kTmNqYvLs2B done", "reset :id done"),
            (
                "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2ln",
                "Bearer :id.:id.c2ln",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(redact_text(input), want, "{input}");
        }
    }

    #[test]
    fn cookie_names_the_catalog_knows_are_kept_others_are_text() {
        let cases = [
            ("intercom-id-k9x2m4qa", "intercom-id-k9x2m4qa"),
            ("intercom-session-k9x2m4qa", "intercom-session-k9x2m4qa"),
            ("uid_12345678", "uid_:id"),
            ("pref_jane.doe@example.com", ":id"),
            ("intercom-id-jane.doe@example.com", ":id"),
            ("intercom-id-jane.doe%40example.com", ":id"),
        ];
        for (input, want) in cases {
            assert_eq!(redact_cookie_name(input), want, "{input}");
        }
    }

    /// The shortcut never skips a text the full rule would change.
    #[test]
    fn texts_the_shortcut_skips_hold_no_identifier() {
        let alphabet = [
            "a", "F", "g", "0", "9", "@", "%", "4", "-", ".", "_", " ", "é", "x", "Q", "z", "7",
        ];
        for s in crate::testing::texts(&alphabet, 48, 50_000) {
            if !may_hold_id(&s) {
                assert!(!words(&s).any(word_has_id), "{s}");
            }
        }
    }

    #[test]
    fn never_panics_and_is_idempotent() {
        for s in [
            "%", "%4", "@", "@.", "a@.", "é@é.é", "--", "..", "\u{0}", "%40%40.x",
        ] {
            let once = redact_text(s);
            assert_eq!(redact_text(&once), once, "{s}");
        }
    }

    #[test]
    fn error_names() {
        assert_eq!(error_name("CompileError"), Some("CompileError"));
        assert_eq!(error_name("NoWebAssembly"), Some("NoWebAssembly"));
        for bad in [
            "",
            "jane.doe@example.com",
            "12345678",
            "6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978",
            "deadbeefdeadbeef",
            "Type Error",
            "Error: wasm at /account/jane",
            &"E".repeat(65),
        ] {
            assert_eq!(error_name(bad), None, "{bad}");
        }
    }
}
