//! The offline audit: the logic of the `tagwatch` commands that need no
//! collector — `classify`, `consent`, `tcf`, `gpp`, `har`, `catalog
//! list|show|import-ocd`. They run the same core (catalog, engine, consent
//! parsers) as the in-page monitor, so a finding means the same thing
//! everywhere. Reference: docs/cli.md.

pub mod catalog;
pub mod classify;
pub mod consent;
pub mod gpp;
pub mod har;
pub(crate) mod lines;
pub mod ocd;
pub mod tcf;

use std::io::{self, Write};

/// A command's failure: the message goes to stderr, the kind picks the
/// exit code.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Bad input from the user: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error("{0}")]
    Runtime(String),
}

/// Most bytes read from a small side file (`--policy`).
const MAX_SIDE_FILE: u64 = 1024 * 1024;

/// A write to stdout failed. A closed pipe (`tagwatch classify | head`) is
/// the reader's choice, not an error: the command stops quietly.
pub(crate) enum WriteFailure {
    /// The reader went away.
    Closed,
    /// Anything else.
    Other(io::Error),
}

impl From<io::Error> for WriteFailure {
    fn from(e: io::Error) -> Self {
        if e.kind() == io::ErrorKind::BrokenPipe {
            WriteFailure::Closed
        } else {
            WriteFailure::Other(e)
        }
    }
}

/// Maps the outcome of writing everything to stdout to the command's result.
pub(crate) fn finish_output(written: Result<(), WriteFailure>) -> Result<(), Failure> {
    match written {
        Ok(()) | Err(WriteFailure::Closed) => Ok(()),
        Err(WriteFailure::Other(e)) => {
            Err(Failure::Runtime(format!("cannot write to stdout: {e}")))
        }
    }
}

/// Writes `text` to stdout and flushes.
pub fn print(text: &str) -> Result<(), Failure> {
    let mut out = io::stdout().lock();
    finish_output(
        out.write_all(text.as_bytes())
            .and_then(|()| out.flush())
            .map_err(WriteFailure::from),
    )
}

/// Reads a small file whole, refusing anything over 1 MiB.
pub(crate) fn read_side_file(flag: &str, path: &str) -> Result<Vec<u8>, Failure> {
    use std::io::Read as _;
    let file =
        std::fs::File::open(path).map_err(|e| Failure::Usage(format!("{flag} {path}: {e}")))?;
    let mut buf = Vec::new();
    #[allow(clippy::disallowed_methods)] // Bounded: MAX_SIDE_FILE + 1 bytes.
    file.take(MAX_SIDE_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Failure::Usage(format!("{flag} {path}: {e}")))?;
    if buf.len() as u64 > MAX_SIDE_FILE {
        return Err(Failure::Usage(format!(
            "{flag} {path}: larger than {MAX_SIDE_FILE} bytes"
        )));
    }
    Ok(buf)
}

/// Maps `ws(s)://` to `http(s)://` (same host and path); other schemes as is.
pub(crate) fn http_equivalent(raw: &str) -> std::borrow::Cow<'_, str> {
    let lower_prefix = raw
        .get(..6)
        .map(str::to_ascii_lowercase)
        .unwrap_or_default();
    if lower_prefix.starts_with("wss://") {
        format!("https://{}", raw.get(6..).unwrap_or("")).into()
    } else if lower_prefix.starts_with("ws://") {
        format!("http://{}", raw.get(5..).unwrap_or("")).into()
    } else {
        raw.into()
    }
}

/// Pads `s` with spaces to `width` characters (never truncates).
pub(crate) fn pad(s: &str, width: usize) -> String {
    let n = s.chars().count();
    let mut out = String::with_capacity(s.len() + width.saturating_sub(n));
    out.push_str(s);
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(n)));
    out
}

/// Renders rows as left-aligned columns separated by two spaces, the last
/// column unpadded.
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let cols = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i + 1 == cols {
                text.push_str(cell);
            } else {
                text.push_str(&pad(cell, *w));
                text.push_str("  ");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    out
}

/// Human-readable byte count.
pub(crate) fn bytes(n: u64) -> String {
    match n {
        0..=9_999 => format!("{n} B"),
        10_000..=9_999_999 => format!("{:.1} KB", n as f64 / 1000.0),
        _ => format!("{:.1} MB", n as f64 / 1_000_000.0),
    }
}

/// Deterministic pseudo-random test inputs (no dependency): bytes biased
/// towards the characters a parser cares about.
#[cfg(test)]
pub(crate) fn noise(seed: u64, len: usize, alphabet: &[u8]) -> Vec<u8> {
    let step = |x: u64| {
        x.wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407)
    };
    let mut x = step(seed);
    (0..len)
        .map(|_| {
            x = step(x);
            let r = (x >> 33) as usize;
            if r.is_multiple_of(4) {
                (r >> 8) as u8
            } else {
                alphabet[(r >> 8) % alphabet.len()]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_and_trim() {
        let t = table(
            &["A", "BB"],
            &[
                vec!["xxx".into(), "y".into()],
                vec!["z".into(), String::new()],
            ],
        );
        assert_eq!(t, "A    BB\nxxx  y\nz\n");
    }

    #[test]
    fn byte_counts() {
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(48_213), "48.2 KB");
        assert_eq!(bytes(12_500_000), "12.5 MB");
    }
}
