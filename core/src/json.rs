//! Minimal JSON for the in-page monitor: a writer for report batches and a
//! tolerant reader (JSON, or a JS object literal): walked path by path for
//! the site's policy (no tree in the page), as a tree for the CMP cookies
//! that hold JSON (the on-demand cookie reader).
//!
//! The monitor ships in every page view, and serde_json with its number
//! tables costs several KB of wasm, while a report is a few flat objects of
//! strings, integers and booleans. `report`'s tests check that this writer
//! and the types' `Serialize` derives produce the same JSON; the reader
//! takes untrusted input (no indexing, depth bounded, linear work).

use alloc::{string::String, vec::Vec};

/// Appends JSON to a `String`. Members are separated automatically: a value
/// right after `key` takes none, any other value (an array element or the
/// next key) is preceded by a comma unless it is the first in its container.
pub(crate) struct Writer {
    out: String,
    /// Per open container, whether it already has a member: one bit each,
    /// the innermost in bit 0 (a `begin_*` shifts a clear bit in, an
    /// `end_*` shifts it out). A bit stack, not a `Vec<bool>`: the
    /// module had a `push` and a `pop` instance and the vector's growth for
    /// this alone (docs/benchmarks.md, fifteenth round). It keeps 32
    /// containers apart, past which an outer one would lose its commas: a
    /// report batch nests six (the batch, a report, its body, the
    /// inventory's vendors, a vendor, its hosts), and only the page's own
    /// writers nest, never input.
    nonempty: u32,
    after_key: bool,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer {
            out: String::with_capacity(2048),
            nonempty: 0,
            after_key: false,
        }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    fn member(&mut self) {
        if core::mem::take(&mut self.after_key) {
            return;
        }
        // At the top level (no container) the bit is set too, unread: a
        // writer writes one top-level value.
        if self.nonempty & 1 == 1 {
            self.out.push_str(",");
        }
        self.nonempty |= 1;
    }

    pub(crate) fn begin_object(&mut self) {
        self.member();
        self.out.push_str("{");
        self.nonempty <<= 1;
    }

    pub(crate) fn end_object(&mut self) {
        self.nonempty >>= 1;
        self.out.push_str("}");
    }

    pub(crate) fn begin_array(&mut self) {
        self.member();
        self.out.push_str("[");
        self.nonempty <<= 1;
    }

    pub(crate) fn end_array(&mut self) {
        self.nonempty >>= 1;
        self.out.push_str("]");
    }

    /// `"key":`; the value follows.
    pub(crate) fn key(&mut self, key: &str) {
        self.member();
        self.quoted(key);
        self.out.push_str(":");
        self.after_key = true;
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.member();
        self.quoted(s);
    }

    pub(crate) fn u64(&mut self, mut n: u64) {
        self.member();
        let mut digits = [0u8; 20];
        let mut i = digits.len();
        loop {
            i -= 1;
            if let Some(d) = digits.get_mut(i) {
                *d = b'0' + (n % 10) as u8;
            }
            n /= 10;
            if n == 0 || i == 0 {
                break;
            }
        }
        // The digits are ASCII: pushed as the text they are (`push` of a
        // `char` from a byte keeps core's UTF-8 encoder for the other 128).
        for d in digits.get(i..).unwrap_or(&[]) {
            let d = usize::from(d.wrapping_sub(b'0'));
            self.out.push_str(HEX.get(d..=d).unwrap_or("0"));
        }
    }

    pub(crate) fn opt_bool(&mut self, v: Option<bool>) {
        self.member();
        self.out.push_str(match v {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
    }

    /// `"key":"value"`.
    pub(crate) fn field(&mut self, key: &str, value: &str) {
        self.key(key);
        self.str(value);
    }

    /// `"key":n`.
    pub(crate) fn field_u64(&mut self, key: &str, value: u64) {
        self.key(key);
        self.u64(value);
    }

    /// `"key":[…strings]`.
    pub(crate) fn field_strs<'a>(&mut self, key: &str, values: impl IntoIterator<Item = &'a str>) {
        self.key(key);
        self.begin_array();
        for v in values {
            self.str(v);
        }
        self.end_array();
    }

    /// `s` as a JSON string. By bytes: what is escaped is ASCII, and
    /// every other byte (a multi-byte character's too) is copied as it is,
    /// in runs (a `chars()` loop pushing each `char` kept core's UTF-8
    /// decoder and encoder in the page's wasm).
    fn quoted(&mut self, s: &str) {
        self.out.push_str("\"");
        let mut rest = s;
        while let Some(i) = rest
            .as_bytes()
            .iter()
            .position(|b| *b < 0x20 || *b == b'"' || *b == b'\\')
        {
            // `i` is at an ASCII byte: a character boundary.
            self.out.push_str(rest.get(..i).unwrap_or(""));
            let b = rest.as_bytes().get(i).copied().unwrap_or(0);
            rest = rest.get(i + 1..).unwrap_or("");
            let at = usize::from(b) * 6;
            self.out.push_str(match b {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                _ => CONTROL.get(at..at + 6).unwrap_or(""),
            });
        }
        self.out.push_str(rest);
        self.out.push_str("\"");
    }
}

/// A value of the tolerant JSON / JS-object-literal scanner.
#[cfg(any(feature = "cmp-cookies", test))]
#[derive(Debug, PartialEq)]
pub(crate) enum Val {
    Bool(bool),
    Null,
    /// A quoted string.
    Str(String),
    /// A number or a bare identifier, as written.
    Atom(String),
    Arr(Vec<Val>),
    Obj(Vec<(String, Val)>),
}

#[cfg(any(feature = "cmp-cookies", test))]
impl Val {
    pub(crate) fn member(&self, key: &str) -> Option<&Val> {
        match self {
            Val::Obj(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub(crate) fn text(&self) -> Option<&str> {
        match self {
            Val::Str(s) | Val::Atom(s) => Some(s),
            _ => None,
        }
    }
}

/// The escapes of U+0000 to U+001F, six characters each.
const CONTROL: &str = concat!(
    "\\u0000\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007",
    "\\u0008\\u0009\\u000a\\u000b\\u000c\\u000d\\u000e\\u000f",
    "\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017",
    "\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d\\u001e\\u001f",
);

/// Hex digits (the decimal ones first): `\u00XX` escapes and integers.
const HEX: &str = "0123456789abcdef";

/// Most nested containers the scanner follows.
const MAX_DEPTH: usize = 16;

/// Parses JSON, or a JS object literal (single-quoted strings, bare keys),
/// leniently: trailing text is ignored. `None` when no value can be read.
#[cfg(any(feature = "cmp-cookies", test))]
pub(crate) fn parse_value(s: &str) -> Option<Val> {
    let mut p = Scanner {
        s: s.as_bytes(),
        i: 0,
    };
    p.value(0)
}

/// What [`walk`] meets at a path: a scalar as written (a string's text, a
/// number or a bare word), `true` / `false`, `null`, or an array about to
/// be walked.
#[derive(Clone, Copy)]
pub(crate) enum Leaf<'a> {
    Text(&'a str),
    Bool,
    Null,
    Array,
}

/// Walks a document as [`parse_value`] reads it, without building the
/// tree: `visit` gets the path (object keys; `None` for an array's item)
/// of each scalar and each array, in document order. `false`, after some
/// calls, when the text is not one value. A reader that takes a few paths
/// of a small document (the site's policy) needs no `Val` tree, its
/// lookups or its drop code in the page.
pub(crate) fn walk(s: &str, visit: &mut dyn FnMut(&[Option<String>], Leaf<'_>)) -> bool {
    let mut p = Scanner {
        s: s.as_bytes(),
        i: 0,
    };
    p.walk(&mut Vec::new(), visit).is_some()
}

struct Scanner<'a> {
    s: &'a [u8],
    i: usize,
}

impl Scanner<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.skip_ws();
        if self.peek() == Some(b) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    #[cfg(any(feature = "cmp-cookies", test))]
    fn value(&mut self, depth: usize) -> Option<Val> {
        self.skip_ws();
        match self.peek()? {
            b'{' if depth < MAX_DEPTH => {
                self.i += 1;
                let mut members = Vec::new();
                loop {
                    if self.eat(b'}') {
                        return Some(Val::Obj(members));
                    }
                    self.skip_ws();
                    let key = match self.peek()? {
                        q @ (b'"' | b'\'') => self.string(q)?,
                        _ => self.atom()?,
                    };
                    if !self.eat(b':') {
                        return None;
                    }
                    let value = self.value(depth + 1)?;
                    members.push((key, value));
                    if !self.eat(b',') {
                        return self.eat(b'}').then_some(Val::Obj(members));
                    }
                }
            }
            b'[' if depth < MAX_DEPTH => {
                self.i += 1;
                let mut items = Vec::new();
                loop {
                    if self.eat(b']') {
                        return Some(Val::Arr(items));
                    }
                    items.push(self.value(depth + 1)?);
                    if !self.eat(b',') {
                        return self.eat(b']').then_some(Val::Arr(items));
                    }
                }
            }
            q @ (b'"' | b'\'') => self.string(q).map(Val::Str),
            _ => {
                let atom = self.atom()?;
                Some(match atom.as_str() {
                    "true" => Val::Bool(true),
                    "false" => Val::Bool(false),
                    "null" => Val::Null,
                    _ => Val::Atom(atom),
                })
            }
        }
    }

    fn walk(
        &mut self,
        path: &mut Vec<Option<String>>,
        visit: &mut dyn FnMut(&[Option<String>], Leaf<'_>),
    ) -> Option<()> {
        self.skip_ws();
        let open = self.peek()?;
        if matches!(open, b'{' | b'[') {
            if path.len() >= MAX_DEPTH {
                return None;
            }
            self.i += 1;
        }
        match open {
            b'{' => loop {
                if self.eat(b'}') {
                    return Some(());
                }
                self.skip_ws();
                let key = match self.peek()? {
                    q @ (b'"' | b'\'') => self.string(q)?,
                    _ => self.atom()?,
                };
                if !self.eat(b':') {
                    return None;
                }
                path.push(Some(key));
                self.walk(path, visit)?;
                path.pop();
                if !self.eat(b',') {
                    return self.eat(b'}').then_some(());
                }
            },
            b'[' => {
                visit(path, Leaf::Array);
                path.push(None);
                loop {
                    if self.eat(b']') {
                        break;
                    }
                    self.walk(path, visit)?;
                    if !self.eat(b',') {
                        if !self.eat(b']') {
                            return None;
                        }
                        break;
                    }
                }
                path.pop();
                Some(())
            }
            q @ (b'"' | b'\'') => {
                let text = self.string(q)?;
                visit(path, Leaf::Text(&text));
                Some(())
            }
            _ => {
                let atom = self.atom()?;
                visit(
                    path,
                    match atom.as_str() {
                        "true" | "false" => Leaf::Bool,
                        "null" => Leaf::Null,
                        _ => Leaf::Text(&atom),
                    },
                );
                Some(())
            }
        }
    }

    /// A bare word or number: `[A-Za-z0-9_$.+-]+`.
    fn atom(&mut self) -> Option<String> {
        let start = self.i;
        while self
            .peek()
            .is_some_and(|b| b.is_ascii_alphanumeric() || b"_$.+-".contains(&b))
        {
            self.i += 1;
        }
        let word = self.s.get(start..self.i)?;
        if word.is_empty() {
            return None;
        }
        // ASCII only: always UTF-8.
        core::str::from_utf8(word).ok().map(String::from)
    }

    /// A string quoted by `q`, the scanner on the opening quote.
    fn string(&mut self, q: u8) -> Option<String> {
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let b = self.peek()?;
            self.i += 1;
            if b == q {
                // UTF-8 by construction: the input is, a quote or a
                // backslash is never inside a multi-byte character, and
                // `\u` escapes are encoded. (Not `from_utf8_lossy`, whose
                // repair code would ship for nothing.)
                return String::from_utf8(out).ok();
            }
            if b != b'\\' {
                out.push(b);
                continue;
            }
            let e = self.peek()?;
            self.i += 1;
            match e {
                b'n' => out.push(b'\n'),
                b't' => out.push(b'\t'),
                b'r' => out.push(b'\r'),
                b'b' => out.push(8),
                b'f' => out.push(12),
                b'u' => {
                    let code = self
                        .s
                        .get(self.i..self.i + 4)
                        .and_then(|h| core::str::from_utf8(h).ok())
                        .and_then(|h| u32::from_str_radix(h, 16).ok());
                    let c = code
                        .and_then(char::from_u32)
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    if code.is_some() {
                        self.i += 4;
                    }
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
                }
                other => out.push(other),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_valid_json() {
        let mut w = Writer::new();
        w.begin_array();
        w.begin_object();
        w.field("a", "q\"\\\n\u{1}é");
        w.field_u64("n", 0);
        w.field_u64("m", u64::MAX);
        w.key("b");
        w.opt_bool(None);
        w.field_strs("l", ["x", "y"]);
        w.key("o");
        w.begin_object();
        w.end_object();
        w.end_object();
        w.begin_object();
        w.end_object();
        w.end_array();
        let out = w.finish();
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v[0]["a"], "q\"\\\n\u{1}é");
        assert_eq!(v[0]["m"], u64::MAX);
        assert_eq!(v[0]["n"], 0);
        assert_eq!(v[0]["l"][1], "y");
        assert_eq!(v.as_array().unwrap().len(), 2);
    }

    /// The bit stack keeps 32 nested containers apart: each level's two
    /// members get their comma, at every depth up to 32.
    #[test]
    fn nested_containers_keep_their_commas() {
        for depth in 1..=32 {
            let mut w = Writer::new();
            for _ in 0..depth {
                w.begin_array();
                w.str("a");
            }
            for _ in 0..depth {
                w.str("b");
                w.end_array();
            }
            let out = w.finish();
            let mut v: &serde_json::Value = &serde_json::from_str(&out).unwrap();
            for level in 0..depth {
                let items = v.as_array().unwrap();
                let inner = usize::from(level + 1 < depth);
                assert_eq!(items.len(), 2 + inner, "{out}");
                assert_eq!(items[0], "a");
                assert_eq!(items[1 + inner], "b");
                if inner == 1 {
                    v = &items[1];
                }
            }
        }
    }

    /// The byte loops write strings and integers as the former `chars()`
    /// and `char` pushes did: every control character, quotes,
    /// backslashes and multi-byte characters, at the ends and in runs.
    #[test]
    fn strings_and_integers_as_before() {
        fn former(s: &str) -> String {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let mut out = String::from("\"");
            for ch in s.chars() {
                match ch {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    '\n' => out.push_str("\\n"),
                    '\r' => out.push_str("\\r"),
                    '\t' => out.push_str("\\t"),
                    c if u32::from(c) < 0x20 => {
                        let b = u32::from(c) as usize;
                        out.push_str("\\u00");
                        for nibble in [b >> 4, b & 15] {
                            out.push(char::from(HEX[nibble]));
                        }
                    }
                    c => out.push(c),
                }
            }
            out.push('"');
            out
        }
        let mut parts: Vec<String> = (0u8..0x20).map(|b| char::from(b).to_string()).collect();
        parts.extend(["\"", "\\", "a", "é", "€😀", "\u{7f}", "\u{80}", "/", ""].map(String::from));
        for text in crate::testing::texts(&parts, 12, 5_000) {
            let mut w = Writer::new();
            w.str(&text);
            assert_eq!(w.finish(), former(&text), "{text:?}");
        }
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            12_345,
            u64::from(u32::MAX),
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut w = Writer::new();
            w.u64(n);
            assert_eq!(w.finish(), n.to_string());
        }
    }

    #[test]
    fn scanner_reads_js_literals_and_json() {
        let v = parse_value("{stamp:'a\\'b',necessary:true,ver:1,x:[1,\"y\",null]}").unwrap();
        assert_eq!(v.member("stamp"), Some(&Val::Str("a'b".into())));
        assert_eq!(v.member("necessary"), Some(&Val::Bool(true)));
        assert_eq!(v.member("ver"), Some(&Val::Atom("1".into())));
        assert_eq!(
            parse_value("{\"a\":\"\\u00e9\"}").unwrap().member("a"),
            Some(&Val::Str("é".into()))
        );
        assert_eq!(parse_value("{a:"), None);
        let deep = "[".repeat(10_000);
        assert_eq!(parse_value(&deep), None);
    }

    /// Strings come out whole whatever characters they hold, escaped or not
    /// (the scanner builds them bytewise and takes them as UTF-8 as is).
    #[test]
    fn scanner_keeps_every_character() {
        for c in [
            'a',
            'é',
            '€',
            '😀',
            '\u{7f}',
            '\u{80}',
            '\u{7ff}',
            '\u{800}',
            '\u{ffff}',
            '\u{10000}',
            '\u{10ffff}',
        ] {
            for text in [
                format!("'{c}x{c}'"),
                format!("\"\\{c}{c}\""),
                format!("{{k:\"{c}\"}}"),
            ] {
                let v = parse_value(&text).unwrap_or_else(|| panic!("{text:?}"));
                let got = v
                    .text()
                    .or_else(|| v.member("k").and_then(Val::text))
                    .unwrap();
                assert!(
                    got.chars().all(|g| g == c || g == 'x'),
                    "{text:?} -> {got:?}"
                );
                assert_eq!(
                    got.chars().filter(|g| *g == c).count(),
                    if text.starts_with(['{']) { 1 } else { 2 },
                    "{text:?}"
                );
            }
        }
    }
}
