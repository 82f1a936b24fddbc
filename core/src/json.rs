//! A minimal JSON writer for report batches.
//!
//! The monitor ships in every page view, and serde_json's serializer with its
//! number tables costs several KB of wasm, while a report is a few flat
//! objects of strings, integers and booleans. `report`'s tests check that
//! this writer and the types' `Serialize` derives produce the same JSON.

use alloc::{string::String, vec::Vec};

/// Appends JSON to a `String`. Members are separated automatically: a value
/// right after `key` takes none, any other value (an array element or the
/// next key) is preceded by a comma unless it is the first in its container.
pub(crate) struct Writer {
    out: String,
    /// Per open container: it already has a member.
    nonempty: Vec<bool>,
    after_key: bool,
}

impl Writer {
    pub(crate) fn new() -> Self {
        Writer { out: String::with_capacity(2048), nonempty: Vec::new(), after_key: false }
    }

    pub(crate) fn finish(self) -> String {
        self.out
    }

    fn member(&mut self) {
        if core::mem::take(&mut self.after_key) {
            return;
        }
        if let Some(nonempty) = self.nonempty.last_mut() {
            if *nonempty {
                self.out.push(',');
            }
            *nonempty = true;
        }
    }

    pub(crate) fn begin_object(&mut self) {
        self.member();
        self.out.push('{');
        self.nonempty.push(false);
    }

    pub(crate) fn end_object(&mut self) {
        self.nonempty.pop();
        self.out.push('}');
    }

    pub(crate) fn begin_array(&mut self) {
        self.member();
        self.out.push('[');
        self.nonempty.push(false);
    }

    pub(crate) fn end_array(&mut self) {
        self.nonempty.pop();
        self.out.push(']');
    }

    /// `"key":`; the value follows.
    pub(crate) fn key(&mut self, key: &str) {
        self.member();
        self.quoted(key);
        self.out.push(':');
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
        for d in digits.get(i..).unwrap_or(&[]) {
            self.out.push(char::from(*d));
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

    fn quoted(&mut self, s: &str) {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        self.out.push('"');
        for ch in s.chars() {
            match ch {
                '"' => self.out.push_str("\\\""),
                '\\' => self.out.push_str("\\\\"),
                '\n' => self.out.push_str("\\n"),
                '\r' => self.out.push_str("\\r"),
                '\t' => self.out.push_str("\\t"),
                c if u32::from(c) < 0x20 => {
                    let b = u32::from(c) as usize;
                    self.out.push_str("\\u00");
                    for nibble in [b >> 4, b & 15] {
                        self.out.push(char::from(HEX.get(nibble).copied().unwrap_or(b'0')));
                    }
                }
                c => self.out.push(c),
            }
        }
        self.out.push('"');
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
}
