//! The precompressed twins of what a site serves from `dist/` (README,
//! "Serve `dist/`"): beside each file named on the command line,
//! `FILE.gz` (gzip made by zopfli: the format every browser reads, a few
//! per cent smaller than zlib's `-9`) and `FILE.br` (brotli at quality 11,
//! the maximum). A server that sends a file's twin when the browser accepts
//! its encoding (nginx `gzip_static` / `brotli_static`, Caddy's
//! `file_server { precompressed br gzip }`) sends those bytes instead of
//! compressing on the fly at its own, lower level. Which files a site
//! serves is `tools/sizes.mjs`'s rule (`node tools/sizes.mjs --served`);
//! `./build.sh build` runs this on them, and `tests/e2e/size.test.mjs`
//! checks that every twin decompresses to its file.
//!
//!   tagwatch-precompress FILE...
//!
//! A twin is written beside its file under a temporary name and renamed
//! over the old one, so a server never sends half a twin.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// zopfli's iterations: its default. 50 made the shipped wasm 3 bytes
/// smaller for three times the time.
const ZOPFLI_ITERATIONS: u64 = 15;

/// Brotli's window: 2^22 bytes, larger than any served file, so a file
/// is one window (what `node:zlib`'s default and the `brotli` tool use).
const BROTLI_WINDOW_BITS: i32 = 22;

/// The largest file it compresses: the served files are tens of KB; a file
/// of megabytes in `dist/` is not one of them, and its twin would be refused
/// rather than made over minutes (zopfli's time grows with the input).
const MAX_FILE_BYTES: u64 = 4 << 20;

fn main() -> ExitCode {
    let files: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if files.is_empty() {
        eprintln!("usage: tagwatch-precompress FILE... (writes FILE.gz and FILE.br beside each)");
        return ExitCode::from(2);
    }
    for file in &files {
        if let Err(e) = precompress(file) {
            eprintln!("tagwatch-precompress: {}: {e}", file.display());
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn precompress(file: &Path) -> io::Result<()> {
    let mut bytes = Vec::new();
    #[allow(clippy::disallowed_methods)] // Bounded: MAX_FILE_BYTES + 1 bytes.
    fs::File::open(file)?
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(io::Error::other(format!(
            "larger than {MAX_FILE_BYTES} bytes: not a file of the monitor's build"
        )));
    }
    write_twin(file, "gz", &gzip(&bytes)?)?;
    write_twin(file, "br", &brotli(&bytes, is_text(file))?)
}

/// gzip by zopfli, no file name or time in the header (the same bytes on
/// every build of the same file).
fn gzip(bytes: &[u8]) -> io::Result<Vec<u8>> {
    let options = zopfli::Options {
        iteration_count: NonZeroU64::new(ZOPFLI_ITERATIONS).unwrap_or(NonZeroU64::MIN),
        ..zopfli::Options::default()
    };
    let mut out = Vec::with_capacity(bytes.len() / 2);
    zopfli::compress(options, zopfli::Format::Gzip, bytes, &mut out)?;
    Ok(out)
}

fn brotli(bytes: &[u8], text: bool) -> io::Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: 11,
        lgwin: BROTLI_WINDOW_BITS,
        size_hint: bytes.len(),
        mode: if text {
            brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_TEXT
        } else {
            brotli::enc::backward_references::BrotliEncoderMode::BROTLI_MODE_GENERIC
        },
        ..brotli::enc::BrotliEncoderParams::default()
    };
    let mut out = Vec::with_capacity(bytes.len() / 2);
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

/// Text files get brotli's text mode, as `tools/sizes.mjs` measures them.
fn is_text(file: &Path) -> bool {
    matches!(
        file.extension().and_then(|e| e.to_str()),
        Some("js" | "mjs" | "json" | "css" | "html")
    )
}

fn write_twin(file: &Path, ext: &str, bytes: &[u8]) -> io::Result<()> {
    let mut name = file.as_os_str().to_owned();
    name.push(".");
    name.push(ext);
    let twin = PathBuf::from(name);
    let mut tmp_name = twin.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    fs::File::create(&tmp)?.write_all(bytes)?;
    fs::rename(&tmp, &twin)
}
