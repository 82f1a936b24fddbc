//! `tagwatch tcf`: stdin, one TC string a line; stdout, one JSON object a
//! line (the contract in design.md): the decoded string with the field names
//! of the IAB reference decoder (`cmpId`, `purposeConsents`, … as sorted id
//! lists, `created` / `lastUpdated` as ISO 8601), or `{"error":"…"}`.
//!
//! Lines are trimmed; blank lines are skipped (no output). A line longer
//! than [`MAX_LINE`] bytes is not decoded: `{"error":"line longer than 65536
//! bytes"}`, the rest of the line discarded. Exit 0 whatever the lines hold.
//! The decoder is [`tagwatch_core::tcf`], the one the monitor runs.

use tagwatch_core::tcf;

use super::lines;
use crate::Failure;

/// Longest line decoded, in bytes (a TC string with a disclosed-vendors
/// bitfield of every GVL vendor is about 1 KB).
pub const MAX_LINE: usize = 65_536;

const OVERLONG: &str = "line longer than 65536 bytes";

/// Runs the command on the process's stdin and stdout.
pub fn run() -> Result<(), Failure> {
    lines::run(MAX_LINE, respond)
}

/// One output line for a trimmed input line: the decoded TC string, or
/// `{"error":…}`.
fn respond(text: &str, overlong: bool, json: &mut Vec<u8>) {
    if overlong {
        return lines::write_error(json, OVERLONG);
    }
    lines::write_result(json, tcf::decode(text));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise;

    fn run_on(input: &[u8]) -> String {
        String::from_utf8(lines::run_on(input, 16, MAX_LINE, respond)).unwrap()
    }

    #[test]
    fn decodes_and_reports_errors() {
        let out = run_on(b"CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA\r\n\n  \nnope!\nBOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA");
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0]["cmpId"], 31);
        assert_eq!(lines[0]["created"], "2022-04-20T22:00:00.000Z");
        assert_eq!(lines[1]["error"], "segment 1: not base64url (byte 4)");
        assert_eq!(lines[2]["error"], "unsupported version 1");
    }

    #[test]
    fn overlong_lines_are_reported() {
        let mut input = vec![b'C'; MAX_LINE + 10];
        input.extend_from_slice(b"\nCPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA\n");
        let out = run_on(&input);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0], r#"{"error":"line longer than 65536 bytes"}"#);
        assert!(lines[1].contains(r#""cmpId":31"#));
    }

    #[test]
    fn stream_never_panics_on_noise() {
        for seed in 0..100 {
            let bytes = noise(
                seed,
                (seed * 131 % 9_000) as usize,
                b"\r\n.CPXxRfAPXxRfAAfKABENB-CgAAYgAAAAIB_Aa",
            );
            let out = lines::run_on(&bytes, 7, MAX_LINE, respond);
            for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let _: serde_json::Value = serde_json::from_slice(line).unwrap();
            }
        }
    }
}
