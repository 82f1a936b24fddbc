//! What the collector's targets share: the encoding byte, and the check
//! that an accepted body kept no identifier.

use std::io::Write as _;

use http::{header::CONTENT_ENCODING, HeaderMap, HeaderValue};
use tagwatch_collector::Parsed;

/// `Content-Encoding` values by the low 3 bits of the selector byte (`None`:
/// no header). `compress` is refused with 415.
const ENCODINGS: [Option<&str>; 8] = [
    None,
    Some("identity"),
    Some("gzip"),
    Some("x-gzip"),
    Some("deflate"),
    Some("br"),
    Some("compress"),
    Some(" GZIP "),
];

/// The headers and the body for `selector` (see the targets' docs).
pub fn encoded(selector: u8, body: &[u8]) -> (HeaderMap, Vec<u8>) {
    let encoding = ENCODINGS.get(usize::from(selector & 7)).copied().flatten();
    let mut headers = HeaderMap::new();
    if let Some(e) = encoding {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static(e));
    }
    let body = if selector & 8 == 0 {
        body.to_vec()
    } else {
        compress(encoding.map(|e| e.trim().to_ascii_lowercase()).as_deref(), body)
    };
    (headers, body)
}

fn compress(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let level = flate2::Compression::fast();
    let mut out = Vec::new();
    match encoding {
        Some("gzip" | "x-gzip") => {
            let mut w = flate2::write::GzEncoder::new(&mut out, level);
            let _ = w.write_all(body);
            let _ = w.finish();
        }
        Some("deflate") => {
            let mut w = flate2::write::ZlibEncoder::new(&mut out, level);
            let _ = w.write_all(body);
            let _ = w.finish();
        }
        Some("br") => {
            let mut w = brotli::CompressorWriter::new(&mut out, 4096, 1, 22);
            let _ = w.write_all(body);
            drop(w);
        }
        _ => out.extend_from_slice(body),
    }
    out
}

/// The e-mail canary of the seeds (fuzz/seed.py puts it in every free
/// field of a forged batch): never stored, whatever the field.
const CANARIES: [&str; 2] = ["jane.doe@example.com", "jane.doe%40example.com"];

/// No canary survives in what would be stored (the records' debug form
/// holds every field and the stored JSON).
pub fn assert_redacted(parsed: &Parsed) {
    let stored = format!("{:?}", parsed.batch);
    for canary in CANARIES {
        assert!(!stored.contains(canary), "{canary} stored: {stored}");
    }
}
