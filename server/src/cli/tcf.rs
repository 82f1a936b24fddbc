//! `tagwatch tcf`: stdin, one TC string a line; stdout, one JSON object a
//! line (the contract in design.md): the decoded string with the field names
//! of the IAB reference decoder (`cmpId`, `purposeConsents`, … as sorted id
//! lists, `created` / `lastUpdated` as ISO 8601), or `{"error":"…"}`.
//!
//! Lines are trimmed; blank lines are skipped (no output). A line longer
//! than [`MAX_LINE`] bytes is not decoded: `{"error":"line longer than 65536
//! bytes"}`, the rest of the line discarded. Exit 0 whatever the lines hold.
//! The decoder is [`tagwatch_core::tcf`], the one the monitor runs.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use serde::Serialize;
use tagwatch_core::tcf;

use super::{finish_output, WriteFailure};
use crate::Failure;

/// Longest line decoded, in bytes (a TC string with a disclosed-vendors
/// bitfield of every GVL vendor is about 1 KB).
pub const MAX_LINE: usize = 65_536;

const OVERLONG: &str = "line longer than 65536 bytes";

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
}

/// Runs the command on the process's stdin and stdout.
pub fn run() -> Result<(), Failure> {
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match stream(&mut input, &mut out) {
        Ok(()) => finish_output(out.flush().map_err(WriteFailure::from)),
        Err(StreamError::Read(e)) => Err(Failure::Runtime(format!("cannot read stdin: {e}"))),
        Err(StreamError::Write(w)) => finish_output(Err(w)),
    }
}

enum StreamError {
    Read(io::Error),
    Write(WriteFailure),
}

/// One output line (without the newline) for one trimmed, non-empty input.
fn answer(text: &str, json: &mut Vec<u8>) {
    let written = match tcf::decode(text) {
        Ok(tc) => serde_json::to_writer(&mut *json, &tc),
        Err(e) => serde_json::to_writer(
            &mut *json,
            &ErrorLine {
                error: &e.to_string(),
            },
        ),
    };
    if written.is_err() {
        // Plain numbers, booleans and ASCII strings: cannot fail; stay one
        // line per input anyway.
        json.clear();
        json.extend_from_slice(br#"{"error":"cannot encode the result"}"#);
    }
}

/// Decodes every line of `input` onto `out`.
fn stream<R: Read, W: Write>(input: &mut BufReader<R>, out: &mut W) -> Result<(), StreamError> {
    let mut line = Vec::with_capacity(1024);
    let mut json = Vec::with_capacity(4096);
    loop {
        if input.buffer().is_empty() {
            // About to block on stdin: let the caller see every answer so far.
            out.flush().map_err(|e| StreamError::Write(e.into()))?;
        }
        let Some(overlong) =
            read_line_bounded(input, &mut line, MAX_LINE).map_err(StreamError::Read)?
        else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        json.clear();
        if overlong {
            json.extend_from_slice(format!(r#"{{"error":"{OVERLONG}"}}"#).as_bytes());
        } else {
            answer(text, &mut json);
        }
        json.push(b'\n');
        out.write_all(&json)
            .map_err(|e| StreamError::Write(e.into()))?;
    }
}

/// Reads one line into `buf` without its line ending, keeping at most `max`
/// bytes and discarding the rest. `Ok(None)` at end of input; `Ok(Some(true))`
/// when the line was longer than `max`.
fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    loop {
        let avail = match r.fill_buf() {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if avail.is_empty() {
            if !any {
                return Ok(None);
            }
            break;
        }
        any = true;
        let newline = avail.iter().position(|b| *b == b'\n');
        let chunk = avail.get(..newline.unwrap_or(avail.len())).unwrap_or(&[]);
        total = total.saturating_add(chunk.len());
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or(&[]));
        let used = chunk.len() + usize::from(newline.is_some());
        r.consume(used);
        if newline.is_some() {
            break;
        }
    }
    Ok(Some(total > max))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::noise;

    fn run_on(input: &[u8]) -> String {
        let mut reader = BufReader::with_capacity(16, input);
        let mut out = Vec::new();
        assert!(stream(&mut reader, &mut out).is_ok());
        String::from_utf8(out).unwrap()
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
            let mut reader = BufReader::with_capacity(7, &bytes[..]);
            let mut out = Vec::new();
            assert!(stream(&mut reader, &mut out).is_ok());
            for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let _: serde_json::Value = serde_json::from_slice(line).unwrap();
            }
        }
    }
}
