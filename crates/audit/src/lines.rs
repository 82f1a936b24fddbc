//! Line in, JSON line out: the streaming shared by `classify`, `consent` and
//! `tcf`. Constant memory (one bounded line buffer); output goes through a
//! `BufWriter` flushed whenever stdin has nothing buffered, so an interactive
//! caller gets each answer before it writes the next line. Lines are trimmed;
//! blank lines give no output; every other line gives exactly one.

use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use serde::Serialize;

use super::{finish_output, WriteFailure};
use crate::Failure;

/// Why streaming stopped early.
pub(crate) enum StreamError {
    Read(io::Error),
    Write(WriteFailure),
}

/// Runs `answer` over the process's stdin and stdout. `answer(text,
/// overlong, json)` appends one JSON object (no newline) for a trimmed,
/// non-blank line; `overlong` says the line was cut at `max_line` bytes.
pub(crate) fn run(
    max_line: usize,
    answer: impl FnMut(&str, bool, &mut Vec<u8>),
) -> Result<(), Failure> {
    let mut input = BufReader::with_capacity(64 * 1024, io::stdin().lock());
    let mut out = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    match stream(&mut input, &mut out, max_line, answer) {
        Ok(()) => finish_output(out.flush().map_err(WriteFailure::from)),
        Err(StreamError::Read(e)) => Err(Failure::Runtime(format!("cannot read stdin: {e}"))),
        Err(StreamError::Write(w)) => finish_output(Err(w)),
    }
}

/// Answers every line of `input` onto `out` (see [`run`]).
pub(crate) fn stream<R: Read, W: Write>(
    input: &mut BufReader<R>,
    out: &mut W,
    max_line: usize,
    mut answer: impl FnMut(&str, bool, &mut Vec<u8>),
) -> Result<(), StreamError> {
    let mut line = Vec::with_capacity(1024);
    let mut json = Vec::with_capacity(1024);
    loop {
        if input.buffer().is_empty() {
            // About to block on stdin: let the caller see every answer so far.
            out.flush().map_err(|e| StreamError::Write(e.into()))?;
        }
        let Some(overlong) =
            read_line_bounded(input, &mut line, max_line).map_err(StreamError::Read)?
        else {
            return Ok(());
        };
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() && !overlong {
            continue;
        }
        json.clear();
        answer(text, overlong, &mut json);
        json.push(b'\n');
        out.write_all(&json)
            .map_err(|e| StreamError::Write(e.into()))?;
    }
}

/// The output of streaming `input` through `respond`, read through a buffer
/// of `capacity` bytes (small buffers split lines across reads).
#[cfg(test)]
pub(crate) fn run_on(
    input: &[u8],
    capacity: usize,
    max_line: usize,
    respond: impl FnMut(&str, bool, &mut Vec<u8>),
) -> Vec<u8> {
    let mut reader = BufReader::with_capacity(capacity, input);
    let mut out = Vec::new();
    assert!(stream(&mut reader, &mut out, max_line, respond).is_ok());
    out
}

/// Appends `value` as JSON; plain strings, numbers and options cannot fail to
/// encode, but the output stays one object per line whatever happens.
pub(crate) fn write_json(json: &mut Vec<u8>, value: &impl Serialize) {
    if serde_json::to_writer(&mut *json, value).is_err() {
        json.clear();
        json.extend_from_slice(br#"{"error":"cannot encode the result"}"#);
    }
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
}

/// Appends `{"error": message}`.
pub(crate) fn write_error(json: &mut Vec<u8>, message: &str) {
    write_json(json, &ErrorLine { error: message });
}

/// Appends a decoder's answer for one line: the decoded value, or
/// `{"error": …}` with the decoder's message.
pub(crate) fn write_result<T: Serialize, E: std::fmt::Display>(
    json: &mut Vec<u8>,
    result: Result<T, E>,
) {
    match result {
        Ok(value) => write_json(json, &value),
        Err(e) => write_error(json, &e.to_string()),
    }
}

/// Reads one line into `buf` without its `\n` / `\r\n`, keeping at most `max`
/// bytes of it (cut back to a character boundary) and discarding the rest.
/// `Ok(None)` at end of input; `Ok(Some(true))` when the line was longer
/// than `max`.
pub(crate) fn read_line_bounded<R: BufRead>(
    r: &mut R,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<Option<bool>> {
    buf.clear();
    let mut total = 0usize;
    let mut any = false;
    let mut ends_cr = false;
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
        if let Some(last) = chunk.last() {
            ends_cr = *last == b'\r';
        }
        total = total.saturating_add(chunk.len());
        // Keep one byte more than `max` so a trailing '\r' can be told apart.
        let room = (max + 1).saturating_sub(buf.len());
        buf.extend_from_slice(chunk.get(..chunk.len().min(room)).unwrap_or(&[]));
        let used = chunk.len() + usize::from(newline.is_some());
        r.consume(used);
        if newline.is_some() {
            break;
        }
    }
    if ends_cr {
        total = total.saturating_sub(1);
        if buf.len() == total + 1 {
            buf.pop();
        }
    }
    let overlong = total > max;
    if overlong {
        buf.truncate(max);
        // Do not leave half a UTF-8 sequence at the cut.
        if let Err(e) = std::str::from_utf8(buf) {
            if e.error_len().is_none() {
                buf.truncate(e.valid_up_to());
            }
        }
    }
    Ok(Some(overlong))
}
