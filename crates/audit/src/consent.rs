//! `tagwatch consent`: stdin, one `Cookie:` header value a line; stdout, one
//! JSON object a line (the contract in design.md):
//! `{"cmp":id|null,"decided":bool,"basis":"none"|"explicit"|"implied","categories":{"necessary","functional","analytics","marketing"}}`,
//! each category `true`, `false` or `null` (unknown). `basis` tells a
//! visitor's choice (`explicit`) from consent the CMP applied without one
//! (`implied`, decided too; docs/policy.md); `none` when undecided.
//! `"vendors":{"ga4":true,"hotjar":false}` (absent when none) are the
//! CMP's choices about single vendors (a per-service CMP's services mapped
//! to catalog vendors, docs/policy.md), which decide for those vendors
//! over their categories.
//!
//! The state is read by `tagwatch_core::cmp::from_cookies`, the same parsers
//! the in-page monitor uses; CMP ids, the precedence between several CMPs
//! and the category mapping are in docs/policy.md. A header with no known
//! CMP cookie gives `"cmp":null,"decided":false` and every category `null`,
//! `necessary` included: nothing is known from that header (the consent
//! timeline grants `necessary` on its own anyway).
//!
//! Lines are trimmed (a leading `Cookie:` is dropped); blank lines are
//! skipped (no output). A line longer than [`MAX_LINE`] bytes is not read:
//! its output is the no-CMP answer plus `"error":"line longer than 65536
//! bytes"`, so outputs stay one per input line. Streaming in constant
//! memory; output is flushed whenever stdin has nothing buffered, so an
//! interactive caller gets each answer before it writes the next line.
//! Exit 0 on any input.

use serde::Serialize;
use std::collections::BTreeMap;
use tagwatch_core::cmp;
use tagwatch_core::consent::{Basis, Category};

use super::lines;
use crate::Failure;

/// Longest line read, in bytes (after removing the line ending). Browsers
/// send at most a few tens of KB of cookies.
pub const MAX_LINE: usize = 64 * 1024;

const OVERLONG: &str = "line longer than 65536 bytes";

/// One output line.
#[derive(Serialize)]
struct Answer {
    cmp: Option<&'static str>,
    decided: bool,
    basis: &'static str,
    categories: Cats,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    vendors: BTreeMap<&'static str, bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

impl Default for Answer {
    /// No CMP: nothing known, nothing decided.
    fn default() -> Self {
        Answer {
            cmp: None,
            decided: false,
            basis: Basis::None.as_str(),
            categories: Cats::default(),
            vendors: BTreeMap::new(),
            error: None,
        }
    }
}

#[derive(Serialize, Default)]
struct Cats {
    necessary: Option<bool>,
    functional: Option<bool>,
    analytics: Option<bool>,
    marketing: Option<bool>,
}

/// Reads one (trimmed, non-empty) header value.
fn answer(header: &str) -> Answer {
    let header = strip_cookie_prefix(header);
    match cmp::from_cookies(header) {
        Some(found) => {
            let c = found.categories;
            Answer {
                cmp: Some(found.cmp),
                decided: found.decided,
                basis: found.basis().as_str(),
                categories: Cats {
                    necessary: c.get(Category::Necessary),
                    functional: c.get(Category::Functional),
                    analytics: c.get(Category::Analytics),
                    marketing: c.get(Category::Marketing),
                },
                vendors: found.vendors.iter().collect(),
                error: None,
            }
        }
        None => Answer::default(),
    }
}

/// `Cookie: a=1` → `a=1` (case-insensitive), so pasted request headers work.
fn strip_cookie_prefix(line: &str) -> &str {
    match line.get(..7) {
        Some(p) if p.eq_ignore_ascii_case("cookie:") => line.get(7..).unwrap_or("").trim_start(),
        _ => line,
    }
}

/// Runs the command on the process's stdin and stdout.
pub fn run() -> Result<(), Failure> {
    lines::run(MAX_LINE, respond)
}

/// One output line for a trimmed input line.
fn respond(text: &str, overlong: bool, json: &mut Vec<u8>) {
    let line = if overlong {
        Answer {
            error: Some(OVERLONG),
            ..Answer::default()
        }
    } else {
        answer(text)
    };
    lines::write_json(json, &line);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise;

    fn run_on(input: &[u8]) -> String {
        String::from_utf8(lines::run_on(input, 16, MAX_LINE, respond)).unwrap()
    }

    const NONE: &str = r#"{"cmp":null,"decided":false,"basis":"none","categories":{"necessary":null,"functional":null,"analytics":null,"marketing":null}}"#;

    #[test]
    fn one_answer_per_non_empty_line() {
        let out = run_on(b"cookieyes-consent=consent:yes,action:yes,necessary:yes,functional:no,analytics:yes,performance:yes,advertisement:no\r\n\n   \nCookie: cmplz_marketing=deny; cmplz_banner-status=dismissed\n_ga=GA1.1.1.1");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"cmp":"cookieyes","decided":true,"basis":"explicit","categories":{"necessary":true,"functional":false,"analytics":true,"marketing":false}}"#,
                r#"{"cmp":"complianz","decided":true,"basis":"explicit","categories":{"necessary":true,"functional":null,"analytics":null,"marketing":false}}"#,
                NONE,
            ]
        );
    }

    #[test]
    fn per_service_choices_are_their_vendors() {
        // Klaro: Google Analytics accepted, Hotjar refused, a site's own
        // service refused.
        let out = run_on(b"klaro=%7B%22google-analytics%22%3Atrue%2C%22hotjar%22%3Afalse%2C%22my-widget%22%3Afalse%7D\n");
        assert_eq!(
            out.trim_end(),
            r#"{"cmp":"klaro","decided":true,"basis":"explicit","categories":{"necessary":true,"functional":null,"analytics":false,"marketing":null},"vendors":{"ga4":true,"hotjar":false}}"#
        );
    }

    #[test]
    fn overlong_lines_keep_the_count() {
        let mut input = b"OptanonConsent=".to_vec();
        input.extend(std::iter::repeat_n(b'a', MAX_LINE + 10));
        input.extend_from_slice(b"\nklaro=%7B%22a%22%3Atrue%7D\n");
        let out = run_on(&input);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["cmp"], serde_json::Value::Null);
        assert_eq!(lines[0]["error"], OVERLONG);
        assert_eq!(lines[1]["cmp"], "klaro");
    }

    #[test]
    fn exactly_max_line_is_read() {
        let mut input = b"klaro=%7B%22a%22%3Atrue%7D; x=".to_vec();
        input.resize(MAX_LINE, b'b');
        input.extend_from_slice(b"\r\n");
        let out = run_on(&input);
        assert!(out.contains(r#""cmp":"klaro""#), "{out}");
        assert!(!out.contains("error"));
    }

    #[test]
    fn stream_never_panics_on_noise() {
        for seed in 0..100 {
            let bytes = noise(
                seed,
                (seed * 977 % 90_000) as usize,
                b"\r\n;=%:,{}'\"OptanonConsent=groups C0002:1 cookieyes-consent didomi_token cc_cookie",
            );
            for cap in [1, 7, 4096] {
                let out = lines::run_on(&bytes, cap, MAX_LINE, respond);
                for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    assert!(v["categories"].is_object());
                }
            }
        }
    }
}
