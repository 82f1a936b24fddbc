//! URL pieces the monitor is allowed to keep: scheme, host and path.
//!
//! Query strings, fragments, user info and ports are dropped here, at the
//! first touch, so nothing downstream can leak them. Parsing never panics and
//! never allocates more than the host and path it returns.

use alloc::string::String;

/// The parts of an `http(s)` URL that may appear in evidence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts {
    /// Lower-case host without port; IPv6 literals keep their brackets.
    pub host: String,
    /// Path without query or fragment; `/` when empty.
    pub path: String,
}

/// Splits an absolute `http:`/`https:` URL. Anything else (data:, blob:,
/// relative, malformed) is `None`: those never carry a third party.
pub fn parse(url: &str) -> Option<UrlParts> {
    let (hostport, after) = host_port(strip_scheme(crate::trim(url))?);
    let host = if hostport.starts_with("[") {
        hostport.get(..=find_ascii(hostport, b"]")?)?
    } else {
        hostport.get(..find_ascii(hostport, b":").unwrap_or(hostport.len()))?
    };
    // Trailing dots by bytes, not `trim_end_matches(['.'])` (a reverse
    // character searcher the page's wasm would carry for this alone).
    let mut end = host.len();
    while end > 0 && matches!(host.as_bytes().get(end - 1), Some(b'.')) {
        end -= 1;
    }
    let host = host.get(..end)?;
    if host.is_empty() || !host.as_bytes().iter().all(|b| is_host_byte(*b)) {
        return None;
    }
    let path_end = find_ascii(after, b"?#").unwrap_or(after.len());
    let path = after.get(..path_end).unwrap_or("");
    Some(UrlParts {
        host: host.to_ascii_lowercase(),
        path: if path.is_empty() {
            "/".into()
        } else {
            path.into()
        },
    })
}

/// The host and port of a URL's authority (what follows `scheme://` up to
/// its path, query or fragment), without user info, which ends at the
/// authority's last `@`; and the rest of the URL after the authority.
/// [`parse`] and [`page_url`] read an authority alike through it.
fn host_port(rest: &str) -> (&str, &str) {
    let auth_end = find_ascii(rest, b"/?#").unwrap_or(rest.len());
    let (authority, after) = rest.split_at_checked(auth_end).unwrap_or((rest, ""));
    let user_end = authority
        .as_bytes()
        .iter()
        .rposition(|b| *b == b'@')
        .map_or(0, |at| at + 1);
    (authority.get(user_end..).unwrap_or(""), after)
}

/// Index of the first byte of `s` that is one of `set` (ASCII bytes, so
/// the index is a character boundary). A byte loop: `str::find` with a
/// character-array pattern decodes and compares each character through a
/// generic searcher, several times the instructions a byte, and the URL of
/// every Resource Timing entry goes through here several times.
pub(crate) fn find_ascii(s: &str, set: &[u8]) -> Option<usize> {
    s.as_bytes().iter().position(|b| set.iter().any(|c| c == b))
}

fn strip_scheme(url: &str) -> Option<&str> {
    // By reference, not by value (see `Category::ALL`).
    for scheme in &["https://", "http://"] {
        if let Some(head) = url.get(..scheme.len()) {
            if head.eq_ignore_ascii_case(scheme) {
                return url.get(scheme.len()..);
            }
        }
    }
    None
}

fn is_host_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'[' | b']' | b':')
}

/// The raw value of query parameter `name` in `url`, for consent signals
/// read in the page (`gcs`). Query strings are never reported.
pub fn query_param<'a>(url: &'a str, name: &str) -> Option<&'a str> {
    let url = url.get(..find_ascii(url, b"#").unwrap_or(url.len()))?;
    let mut query = url.get(find_ascii(url, b"?")? + 1..)?;
    loop {
        let end = find_ascii(query, b"&");
        let pair = query.get(..end.unwrap_or(query.len()))?;
        if let Some(value) = pair.strip_prefix(name).and_then(|v| v.strip_prefix("=")) {
            return Some(value);
        }
        query = query.get(end? + 1..)?;
    }
}

/// `host` is `domain` or a subdomain of it — on a dot boundary, so
/// `evilintercom.io` is not `intercom.io`.
pub fn host_within(host: &str, domain: &str) -> bool {
    match host.len().checked_sub(domain.len()) {
        Some(0) => host == domain,
        Some(n) => host.ends_with(domain) && matches!(host.as_bytes().get(n - 1), Some(b'.')),
        None => false,
    }
}

/// Two-level public suffixes under which a site's registrable domain has
/// three labels. A short list of the common ones, not the whole Public
/// Suffix List: it only decides what counts as the page's own site. One
/// text split by `|`, not a `&[&str]`: a slice of strings ships a pointer
/// and a length per item (58 bytes of the page's wasm gzip for these 31).
const TWO_LEVEL_SUFFIXES: &str =
    "co.uk|org.uk|ac.uk|gov.uk|com.au|net.au|org.au|co.nz|co.jp|ne.jp|\
    or.jp|com.br|com.mx|com.ar|com.tr|co.za|co.in|co.kr|com.cn|com.hk|\
    com.sg|com.tw|co.il|com.pl|co.id|com.my|com.ph|com.vn|com.ua|co.at|or.at";

/// The registrable domain ("site") of a host, approximately: its last two
/// labels, or three under a known two-level public suffix. IP literals and
/// single-label hosts are their own site.
pub fn site_of(host: &str) -> &str {
    if host.starts_with("[")
        || host
            .as_bytes()
            .iter()
            .all(|b| b.is_ascii_digit() || *b == b'.')
    {
        return host;
    }
    let labels_from_end = |n: usize| -> &str {
        let mut cut = host.len();
        for _ in 0..n {
            match host
                .as_bytes()
                .get(..cut)
                .and_then(|h| h.iter().rposition(|b| *b == b'.'))
            {
                Some(dot) => cut = dot,
                None => return host,
            }
        }
        host.get(cut + 1..).unwrap_or(host)
    };
    let two = labels_from_end(2);
    if crate::fields(TWO_LEVEL_SUFFIXES, b'|').any(|s| s == two) {
        labels_from_end(3)
    } else {
        two
    }
}

/// Replaces path segments that look like identifiers (e-mail addresses,
/// long numbers, UUIDs, long hex strings, tokens) with `:id`, and caps the
/// length, so a path can be reported without carrying a person's id.
///
/// This is the page's privacy contract for every URL that leaves it: the
/// loader's JavaScript twin (`www/url.js`) must give the same output, and
/// both are held to `tests/fixtures/url/page-url.json` (`core/tests/url.rs`,
/// `tests/e2e/url.test.mjs`).
pub fn redact_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len().min(MAX_PATH));
    let mut rest = Some(path);
    while let Some(r) = rest {
        let end = find_ascii(r, b"/");
        let segment = r.get(..end.unwrap_or(r.len())).unwrap_or("");
        rest = end.and_then(|e| r.get(e + 1..));
        let slash = if r.len() < path.len() { "/" } else { "" };
        let segment = if looks_like_id(segment) {
            ":id"
        } else {
            segment
        };
        // What does not fit is cut before it is pushed, on a character
        // boundary (not `String::truncate`, whose boundary assertion and
        // its message the page would carry: 28 bytes of its gzip, 36 of
        // brotli).
        for &part in &[slash, segment] {
            let room = MAX_PATH.saturating_sub(out.len());
            if part.len() > room {
                out.push_str(crate::floor(part, room));
                return out;
            }
            out.push_str(part);
        }
    }
    out
}

const MAX_PATH: usize = 256;

/// Shortest segment taken for a token (a session id, a reset or magic-link
/// token, an API key): random base64url strings of 20 characters or more.
/// Shorter ones are too often app ids and hashes the evidence needs.
pub(crate) const TOKEN_MIN: usize = 20;

/// A token switches between lower case, upper case and digits at least
/// once every `TOKEN_SWITCH_EVERY` characters (upper to lower, a capitalised
/// word, does not count): random base64url does about every 2.3 characters,
/// base36 every 2.5; words, slugs (`black-friday-2024-deals`) and CamelCase
/// names (`InternationalBusinessMachines`) far less often. Measured on
/// random strings: about 1 in 100 base64url and 1 in 25 base36 tokens of
/// 20 characters stay below it (base32 tokens, 1 in 8: fewer switches).
const TOKEN_SWITCH_EVERY: usize = 6;

/// Whether one path segment (or word) is an identifier: an e-mail address
/// (`@` or `%40`), a run of 6+ digits, a UUID, 16+ hex characters, or a
/// token (see [`TOKEN_MIN`]).
pub(crate) fn looks_like_id(segment: &str) -> bool {
    let bytes = segment.as_bytes();
    // One pass (the collector runs this on every word it stores).
    let (mut digits, mut hex, mut dashes) = (0usize, 0usize, 0usize);
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'@' => return true,
            b'%' if bytes.get(i + 1..i + 3).is_some_and(|w| w == b"40") => return true,
            b'0'..=b'9' => {
                digits += 1;
                hex += 1;
            }
            b'a'..=b'f' | b'A'..=b'F' => hex += 1,
            b'-' => dashes += 1,
            _ => {}
        }
    }
    let len = bytes.len();
    (len >= 6 && digits == len)
        || (len == 36 && dashes == 4 && hex == 32)
        || (len >= 16 && hex == len)
        || looks_like_token(bytes)
}

/// At least [`TOKEN_MIN`] base64url characters (`A-Z a-z 0-9 - _`) that
/// switch character class often (see [`TOKEN_SWITCH_EVERY`]; `-` and `_`
/// end a run without counting), or a JWT: `eyJ` (base64 of `{"`) and
/// base64url parts joined by dots.
fn looks_like_token(bytes: &[u8]) -> bool {
    let base64url = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_');
    if bytes.len() < TOKEN_MIN {
        return false;
    }
    if bytes.starts_with(b"eyJ") {
        return bytes.iter().all(|b| base64url(b) || *b == b'.');
    }
    let class = |b: u8| match b {
        b'a'..=b'z' => 1,
        b'A'..=b'Z' => 2,
        b'0'..=b'9' => 3,
        _ => 0,
    };
    let switch = |a: u8, b: u8| {
        let (a, b) = (class(a), class(b));
        a != 0 && b != 0 && a != b && (a, b) != (2, 1)
    };
    let switches = bytes
        .windows(2)
        .filter(|w| matches!(w, [a, b] if switch(*a, *b)))
        .count();
    bytes.iter().all(base64url) && switches * TOKEN_SWITCH_EVERY >= bytes.len()
}

/// The page URL as reported: scheme, host, port and redacted path; no user
/// info, query or fragment.
pub fn page_url(href: &str) -> String {
    let trimmed = crate::trim(href);
    // A byte search, not `find("://")`: the substring searcher pulls panic
    // formatting into the wasm.
    let Some(scheme_end) = trimmed.as_bytes().windows(3).position(|w| w == b"://") else {
        return String::new();
    };
    let scheme = trimmed.get(..scheme_end).unwrap_or("").to_ascii_lowercase();
    let (hostport, _) = host_port(trimmed.get(scheme_end + 3..).unwrap_or(""));
    let hostport = hostport.to_ascii_lowercase();
    let path = parse(trimmed)
        .map(|p| redact_path(&p.path))
        .unwrap_or_else(|| "/".into());
    // Pushed, not `[…].concat()`: concat's overflow `expect` pulls `&str`
    // formatting into the wasm.
    let mut url = scheme;
    for part in &["://", &hostport, &path] {
        url.push_str(part);
    }
    url
}

/// Path of a page URL (unredacted, for policy decisions that stay in the page).
pub fn page_path(href: &str) -> String {
    parse(href).map(|p| p.path).unwrap_or_else(|| "/".into())
}

/// Matches `path` against a glob where `*` stands for any run of characters,
/// `/` included (robots.txt style). The whole path must match.
pub fn glob_match(pattern: &str, path: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), path.as_bytes());
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if Some(c) == s.get(si) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|tail| tail.iter().all(|c| *c == b'*'))
}

#[cfg(test)]
mod tests {
    /// The path cut before each push is the former cut after it (push,
    /// then `truncate` at the last boundary at or below `MAX_PATH`), on
    /// long paths of multi-byte characters, ids and empty segments.
    #[test]
    fn redact_path_cuts_as_before() {
        fn former(path: &str) -> String {
            let mut out = String::new();
            let mut rest = Some(path);
            while let Some(r) = rest {
                let end = find_ascii(r, b"/");
                let segment = r.get(..end.unwrap_or(r.len())).unwrap_or("");
                rest = end.and_then(|e| r.get(e + 1..));
                if r.len() < path.len() {
                    out.push('/');
                }
                out.push_str(if looks_like_id(segment) {
                    ":id"
                } else {
                    segment
                });
                if out.len() > MAX_PATH {
                    let mut cut = MAX_PATH;
                    while !out.is_char_boundary(cut) {
                        cut -= 1;
                    }
                    out.truncate(cut);
                    break;
                }
            }
            out
        }
        let parts = ["/", "é", "€😀", "a", "1234567", "//", "ab/", "x"];
        for path in crate::testing::texts(&parts, 300, 20_000) {
            assert_eq!(redact_path(&path), former(&path), "{path}");
        }
    }

    /// The one-pass `looks_like_id` says what the three-pass one said.
    #[test]
    fn looks_like_id_is_the_counting_rule() {
        fn reference(segment: &str) -> bool {
            let bytes = segment.as_bytes();
            if bytes.contains(&b'@') || bytes.windows(3).any(|w| w.eq_ignore_ascii_case(b"%40")) {
                return true;
            }
            let digits = segment.bytes().filter(u8::is_ascii_digit).count();
            let hex = segment.bytes().filter(u8::is_ascii_hexdigit).count();
            let dashes = segment.bytes().filter(|b| *b == b'-').count();
            let len = segment.len();
            (len >= 6 && digits == len)
                || (len == 36 && dashes == 4 && hex == 32)
                || (len >= 16 && hex == len)
                || super::looks_like_token(bytes)
        }
        let alphabet = ["0", "9", "a", "F", "g", "@", "%", "4", "-", "é", "Q", "z"];
        for s in crate::testing::texts(&alphabet, 40, 20_000) {
            assert_eq!(looks_like_id(&s), reference(&s), "{s}");
        }
        for s in [
            "6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978",
            "123456",
            "12345",
            "deadbeefdeadbeef",
            "a%40b",
            "%4",
        ] {
            assert_eq!(looks_like_id(s), reference(s), "{s}");
        }
    }

    use super::*;

    #[test]
    fn keeps_host_and_path_only() {
        let p = parse("https://user:pw@API-IAM.Intercom.io:443/messenger/web/ping?x=secret#frag")
            .unwrap();
        assert_eq!(p.host, "api-iam.intercom.io");
        assert_eq!(p.path, "/messenger/web/ping");
        assert_eq!(parse("http://a.b").unwrap().path, "/");
        assert_eq!(parse("https://a.b?q=1").unwrap().path, "/");
        assert_eq!(parse("https://[::1]:8080/x").unwrap().host, "[::1]");
    }

    #[test]
    fn rejects_non_http() {
        for url in [
            "data:text/plain,hi",
            "blob:https://a/1",
            "/relative",
            "",
            "https://",
            "https://bad host/",
        ] {
            assert_eq!(parse(url), None, "{url}");
        }
    }

    #[test]
    fn dot_boundary_matching() {
        assert!(host_within("intercom.io", "intercom.io"));
        assert!(host_within("widget.intercom.io", "intercom.io"));
        assert!(!host_within("evilintercom.io", "intercom.io"));
        assert!(!host_within("intercom.io.evil.com", "intercom.io"));
        assert!(!host_within("io", "intercom.io"));
    }

    #[test]
    fn redacts_identifier_segments() {
        assert_eq!(redact_path("/users/jane@example.com/x"), "/users/:id/x");
        assert_eq!(
            redact_path("/conversations/123456789/reply"),
            "/conversations/:id/reply"
        );
        assert_eq!(
            redact_path("/u/6f1c2e3d-4b5a-4978-9f1c-2e3d4b5a6978"),
            "/u/:id"
        );
        assert_eq!(redact_path("/widget/abc12345"), "/widget/abc12345");
        assert_eq!(
            redact_path("/frame-modern.c6941a28.js"),
            "/frame-modern.c6941a28.js"
        );
        assert!(redact_path(&"/a".repeat(400)).len() <= 256);
    }

    #[test]
    fn page_url_drops_query_fragment_userinfo() {
        assert_eq!(
            page_url("https://u:p@Shop.Example:8443/cart/a@b.c?token=1#x"),
            "https://shop.example:8443/cart/:id"
        );
        assert_eq!(page_url("https://shop.example"), "https://shop.example/");
    }

    #[test]
    fn sites() {
        assert_eq!(site_of("shop.example"), "shop.example");
        assert_eq!(site_of("cdn.assets.shop.example"), "shop.example");
        assert_eq!(site_of("www.bbc.co.uk"), "bbc.co.uk");
        assert_eq!(site_of("bbc.co.uk"), "bbc.co.uk");
        assert_eq!(site_of("co.uk"), "co.uk");
        assert_eq!(site_of("localhost"), "localhost");
        assert_eq!(site_of("127.0.0.1"), "127.0.0.1");
        assert_eq!(site_of("[::1]"), "[::1]");
        // Every suffix of the list, as written (no blank or padded item
        // from the text's line breaks): 31, each keeping a third label.
        let suffixes: Vec<&str> = TWO_LEVEL_SUFFIXES.split(['|']).collect();
        assert_eq!(suffixes.len(), 31);
        for s in suffixes {
            assert!(!s.is_empty() && !s.contains(char::is_whitespace), "{s:?}");
            assert_eq!(site_of(&format!("www.shop.{s}")), format!("shop.{s}"));
        }
    }

    #[test]
    fn globs() {
        assert!(glob_match("/support/*", "/support/a/b"));
        assert!(!glob_match("/support/*", "/support"));
        assert!(glob_match(
            "/messenger/web/rulesets/*/match",
            "/messenger/web/rulesets/42/match"
        ));
        assert!(glob_match("*", "/"));
        assert!(!glob_match("/a", "/ab"));
        assert!(glob_match("/a*b*c", "/axxbyyc"));
    }
}
