//! `tagwatch classify`: stdin, one URL or cookie name a line; stdout, one
//! JSON object a line (the contract in design.md):
//! `{"input","kind":"url"|"cookie","vendor":id|null,"purpose":name|null,"region":r|null}`.
//!
//! A line that parses as an absolute `http(s)` URL (or `ws(s)`, classified
//! as its `http(s)` equivalent) is a URL; anything else is a cookie name. Lines are trimmed; blank lines are skipped (no output).
//! A line longer than [`MAX_LINE`] bytes is not classified: its output echoes
//! the first [`MAX_LINE`] bytes with every classification `null` and
//! `"error":"line longer than 8192 bytes"`, so outputs stay one per input line.
//!
//! Streaming in constant memory: one bounded line buffer, output through a
//! `BufWriter` that is flushed whenever stdin has nothing buffered, so an
//! interactive caller gets each answer before it writes the next line.

use serde::Serialize;
use tagwatch_core::{catalog, url};

use super::{http_equivalent, lines};
use crate::Failure;

/// Longest line classified, in bytes (after removing the line ending).
pub const MAX_LINE: usize = 8192;

const OVERLONG: &str = "line longer than 8192 bytes";

/// One output line.
#[derive(Serialize)]
struct Answer<'a> {
    input: &'a str,
    kind: &'static str,
    vendor: Option<&'static str>,
    purpose: Option<&'static str>,
    region: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
}

/// Classifies one (trimmed, non-empty) input.
fn classify(input: &str) -> Answer<'_> {
    match url::parse(&http_equivalent(input)) {
        Some(parts) => {
            let hit = catalog::classify_request(&parts.host, &parts.path, "other");
            Answer {
                input,
                kind: "url",
                vendor: hit.map(|m| m.vendor.id),
                purpose: hit.map(|m| m.purpose.name),
                region: hit.and_then(|m| m.vendor.region(&parts.host)),
                error: None,
            }
        }
        None => {
            let hit = catalog::classify_cookie(input);
            Answer {
                input,
                kind: "cookie",
                vendor: hit.map(|(v, _)| v.id),
                purpose: hit.map(|(_, p)| p.name),
                region: None,
                error: None,
            }
        }
    }
}

/// Runs the command on the process's stdin and stdout.
pub fn run() -> Result<(), Failure> {
    lines::run(MAX_LINE, respond)
}

/// One output line for a trimmed input line.
fn respond(text: &str, overlong: bool, json: &mut Vec<u8>) {
    let answer = if overlong {
        Answer {
            input: text,
            kind: if url::parse(&http_equivalent(text)).is_some() {
                "url"
            } else {
                "cookie"
            },
            vendor: None,
            purpose: None,
            region: None,
            error: Some(OVERLONG),
        }
    } else {
        classify(text)
    };
    lines::write_json(json, &answer);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise;
    use std::io::BufReader;

    fn run_on(input: &[u8]) -> String {
        String::from_utf8(lines::run_on(input, 16, MAX_LINE, respond)).unwrap()
    }

    #[test]
    fn classifies_urls_and_cookies() {
        let out = run_on(b"https://api-iam.eu.intercom.io/messenger/web/ping?x=1\r\n\n  intercom-id-abc  \nnope\n");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines,
            [
                r#"{"input":"https://api-iam.eu.intercom.io/messenger/web/ping?x=1","kind":"url","vendor":"intercom","purpose":"tracking","region":"eu"}"#,
                r#"{"input":"intercom-id-abc","kind":"cookie","vendor":"intercom","purpose":"messenger","region":null}"#,
                r#"{"input":"nope","kind":"cookie","vendor":null,"purpose":null,"region":null}"#,
            ]
        );
    }

    #[test]
    fn last_line_without_newline_and_blank_input() {
        assert_eq!(run_on(b""), "");
        assert_eq!(run_on(b"\n\r\n   \n"), "");
        assert!(run_on(b"intercom-session-x").contains(r#""vendor":"intercom""#));
    }

    #[test]
    fn overlong_lines_are_reported_not_classified() {
        let mut input = b"https://widget.intercom.io/widget/".to_vec();
        input.extend(std::iter::repeat_n(b'a', 9000));
        input.extend_from_slice(b"\nintercom-id-x\n");
        let out = run_on(&input);
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["kind"], "url");
        assert_eq!(lines[0]["vendor"], serde_json::Value::Null);
        assert_eq!(lines[0]["error"], OVERLONG);
        assert_eq!(lines[0]["input"].as_str().unwrap().len(), MAX_LINE);
        assert_eq!(lines[1]["vendor"], "intercom");
    }

    #[test]
    fn bounded_reader_edges() {
        let mut buf = Vec::new();
        let mut r = BufReader::with_capacity(4, &b"abcd\r\nab\xc3\xa9cd\n"[..]);
        assert_eq!(
            lines::read_line_bounded(&mut r, &mut buf, 4).unwrap(),
            Some(false)
        );
        assert_eq!(buf, b"abcd");
        // 6 bytes, max 3: the cut would split 'é', so it falls back to "ab".
        assert_eq!(
            lines::read_line_bounded(&mut r, &mut buf, 3).unwrap(),
            Some(true)
        );
        assert_eq!(buf, b"ab");
        assert_eq!(lines::read_line_bounded(&mut r, &mut buf, 3).unwrap(), None);
    }

    #[test]
    fn invalid_utf8_is_replaced_not_fatal() {
        let out = run_on(b"\xff\xfeintercom-id-x\n");
        assert!(out.contains(r#""kind":"cookie""#));
    }

    #[test]
    fn stream_never_panics_on_noise() {
        for seed in 0..150 {
            let bytes = noise(
                seed,
                (seed * 131 % 17_000) as usize,
                b"\r\nhttps://a.b/c?x intercom-id-",
            );
            for cap in [1, 7, 64] {
                let out = lines::run_on(&bytes, cap, MAX_LINE, respond);
                for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                    let v: serde_json::Value = serde_json::from_slice(line).unwrap();
                    assert!(v["input"].as_str().unwrap().len() <= MAX_LINE);
                }
            }
        }
    }
}
