//! Web origins (`scheme://host[:port]`), normalised the way browsers
//! serialise them in the `Origin` header: lower-case scheme and host, the
//! scheme's default port dropped, no path.
//!
//! A site may also register an origin *pattern* for any subdomain:
//! `https://*.shop.example` matches `https://a.shop.example` and
//! `https://b.a.shop.example` (same scheme and port), not `https://shop.example`
//! itself. A pattern never covers a public suffix (`https://*.co.uk`,
//! `https://*.github.io`): the Public Suffix List is compiled in (`psl`).
//!
//! A report without an `Origin` header is checked against the origin of
//! its page URL, read the way a browser reads it ([`page_origin`], the
//! WHATWG URL parser of the `url` crate): a backslash is a path separator,
//! hosts are IDNA-normalised and lower-cased, percent-encoded host bytes
//! decoded, the default port dropped and `user:pass@` ignored. So the
//! origin checked is the origin the page really had.

/// Why a string is not an origin. The message is meant for the person who
/// typed it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid origin {input:?}: {reason} (expected scheme://host[:port], e.g. https://shop.example)"
)]
pub struct OriginError {
    input: String,
    reason: &'static str,
}

const MAX_INPUT: usize = 300;

/// Normalises an origin: `HTTPS://Shop.Example:443/` → `https://shop.example`.
///
/// Accepts `http` and `https` only, an optional single trailing `/`, and
/// rejects paths, queries, fragments, user info, non-ASCII hosts (use the
/// `xn--` form) and out-of-range ports.
pub fn normalize(input: &str) -> Result<String, OriginError> {
    let err = |reason| OriginError {
        input: input.chars().take(80).collect(),
        reason,
    };
    let s = input.trim();
    if s.is_empty() {
        return Err(err("empty"));
    }
    if s.len() > MAX_INPUT {
        return Err(err("too long"));
    }
    let (scheme, rest) = s
        .split_once("://")
        .ok_or_else(|| err("missing scheme; origins start with http:// or https://"))?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return Err(err("only http and https origins can send reports")),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#']) {
        return Err(err("an origin has no path, query or fragment"));
    }
    if rest.contains('@') {
        return Err(err("an origin has no user info"));
    }
    let (host, port) = split_host_port(rest).map_err(err)?;
    let host = normalize_host(host).map_err(err)?;
    let port = match port {
        None => None,
        Some(p) => {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return Err(err("the port must be a number from 1 to 65535"));
            }
            match p.parse::<u16>() {
                Ok(0) | Err(_) => return Err(err("the port must be a number from 1 to 65535")),
                Ok(n) if n == default_port => None,
                Ok(n) => Some(n),
            }
        }
    };
    Ok(match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    })
}

/// Normalises an origin or an "any subdomain" pattern
/// (`https://*.Shop.Example` → `https://*.shop.example`). The part after
/// `*.` must have at least two labels and not be an IP address, so that a
/// pattern never covers a whole top-level domain.
pub fn normalize_pattern(input: &str) -> Result<String, OriginError> {
    let s = input.trim();
    let Some((scheme, rest)) = s.split_once("://") else {
        return normalize(input);
    };
    let Some(base) = rest.strip_prefix("*.") else {
        return normalize(input);
    };
    let err = |reason| OriginError {
        input: input.chars().take(80).collect(),
        reason,
    };
    if base.contains('*') {
        return Err(err(
            "only one leading `*.` is allowed (https://*.shop.example)",
        ));
    }
    let normal = normalize(&format!("{scheme}://{base}"))?;
    let (scheme, hostport) = normal
        .split_once("://")
        .ok_or_else(|| err("missing scheme"))?;
    let host = split_host_port(hostport)
        .map(|(h, _)| h)
        .unwrap_or(hostport);
    if host.starts_with('[') || host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return Err(err("`*.` needs a domain name, not an IP address"));
    }
    if !host.contains('.') {
        return Err(err(
            "`*.` must be followed by at least two labels (https://*.shop.example)",
        ));
    }
    if is_public_suffix(host) {
        return Err(err(
            "`*.` would cover every site under a public suffix (https://*.co.uk, \
             https://*.github.io); register the site's own domain (https://*.shop.example.co.uk)",
        ));
    }
    Ok(format!("{scheme}://*.{hostport}"))
}

/// Whether `host` (lower-case ASCII) is on the Public Suffix List, ICANN or
/// private section (`co.uk`, `github.io`): names under it belong to
/// different owners.
fn is_public_suffix(host: &str) -> bool {
    psl::suffix(host.as_bytes()).is_some_and(|s| s.is_known() && s.as_bytes() == host.as_bytes())
}

/// A page URL read as a browser reads it (the WHATWG URL Standard):
/// `None` unless it is an `http(s)` URL with a host.
pub fn parse_page(input: &str) -> Option<url::Url> {
    let url = url::Url::parse(input).ok()?;
    (matches!(url.scheme(), "http" | "https") && url.host().is_some()).then_some(url)
}

/// The origin of a page URL as the browser serialises it in `Origin`
/// (`https://Shop.Example:443/a` → `https://shop.example`,
/// `https://evil.example\.shop.example` → `https://evil.example`), or
/// `None` when it is not an `http(s)` URL with a host.
pub fn page_origin(input: &str) -> Option<String> {
    parse_page(input).map(|url| url.origin().ascii_serialization())
}

/// Whether a normalised `origin` is allowed by a registered origin or
/// pattern (both as [`normalize_pattern`] writes them).
pub fn matches(registered: &str, origin: &str) -> bool {
    if registered == origin {
        return true;
    }
    let Some((scheme, pattern)) = registered.split_once("://*.") else {
        return false;
    };
    let Some(rest) = origin
        .strip_prefix(scheme)
        .and_then(|r| r.strip_prefix("://"))
    else {
        return false;
    };
    // `rest` is `sub.shop.example[:port]`; the pattern `shop.example[:port]`.
    rest.len() > pattern.len() + 1
        && rest.ends_with(pattern)
        && rest.as_bytes().get(rest.len() - pattern.len() - 1) == Some(&b'.')
        && !rest.starts_with('[')
}

/// Every registered form that would allow `origin`: itself and one pattern
/// per parent domain with at least two labels (`https://a.b.shop.example` →
/// `https://*.b.shop.example`, `https://*.shop.example`), for an indexed
/// look-up.
pub fn candidates(origin: &str) -> Vec<String> {
    let mut out = vec![origin.to_owned()];
    let Some((scheme, hostport)) = origin.split_once("://") else {
        return out;
    };
    if hostport.starts_with('[') {
        return out;
    }
    let (host, port) = match hostport.rsplit_once(':') {
        Some((h, p)) => (h, format!(":{p}")),
        None => (hostport, String::new()),
    };
    if host.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return out;
    }
    let mut parent = host;
    while let Some((_, rest)) = parent.split_once('.') {
        if !rest.contains('.') {
            break;
        }
        out.push(format!("{scheme}://*.{rest}{port}"));
        parent = rest;
    }
    out
}

fn split_host_port(s: &str) -> Result<(&str, Option<&str>), &'static str> {
    if let Some(after_bracket) = s.strip_prefix('[') {
        let end = after_bracket.find(']').ok_or("unterminated IPv6 address")?;
        let host = s.get(..end + 2).ok_or("unterminated IPv6 address")?;
        let tail = s.get(end + 2..).unwrap_or("");
        if tail.is_empty() {
            return Ok((host, None));
        }
        let port = tail
            .strip_prefix(':')
            .ok_or("unexpected text after the IPv6 address")?;
        return Ok((host, Some(port)));
    }
    match s.rsplit_once(':') {
        Some((h, p)) => Ok((h, Some(p))),
        None => Ok((s, None)),
    }
}

fn normalize_host(host: &str) -> Result<String, &'static str> {
    if host.is_empty() {
        return Err("missing host");
    }
    if !host.is_ascii() {
        return Err("non-ASCII host; use its punycode (xn--) form");
    }
    let host = host.to_ascii_lowercase();
    if let Some(inner) = host.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or("unterminated IPv6 address")?;
        if inner.is_empty()
            || !inner.contains(':')
            || !inner
                .bytes()
                .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.')
        {
            return Err("malformed IPv6 address");
        }
        return Ok(host);
    }
    if host.len() > 253 {
        return Err("host longer than 253 characters");
    }
    for label in host.split('.') {
        if label.is_empty() {
            return Err("empty label in host (two dots, or a leading or trailing dot)");
        }
        if label.len() > 63 {
            return Err("host label longer than 63 characters");
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err("host may contain only letters, digits, '-', '_' and '.'");
        }
    }
    Ok(host)
}

#[cfg(test)]
mod tests {
    use super::{candidates, matches, normalize, normalize_pattern, page_origin};

    /// Spoofing attempts read as a browser reads them: the origin checked is
    /// the one the page really had.
    #[test]
    fn page_origins_as_a_browser_reads_them() {
        let cases: [(&str, Option<&str>); 14] = [
            ("https://Shop.Example:443/a/b", Some("https://shop.example")),
            ("HTTPS://SHOP.EXAMPLE/", Some("https://shop.example")),
            ("http://localhost:3000", Some("http://localhost:3000")),
            (
                "https://shop.example\\@evil.example/",
                Some("https://shop.example"),
            ),
            (
                "https://evil.example\\.shop.example",
                Some("https://evil.example"),
            ),
            (
                "https://evil.example\\@shop.example/",
                Some("https://evil.example"),
            ),
            (
                "https://user:pw@shop.example/",
                Some("https://shop.example"),
            ),
            ("https://shop\u{3002}example/", Some("https://shop.example")),
            ("https://shop\u{ff0e}example/", Some("https://shop.example")),
            ("https://shop%2Eexample/", Some("https://shop.example")),
            ("https://shop.example./", Some("https://shop.example.")),
            (
                "https://b\u{fc}cher.example/",
                Some("https://xn--bcher-kva.example"),
            ),
            ("https://a b/x", None),
            ("https://", None),
        ];
        for (url, want) in cases {
            assert_eq!(page_origin(url).as_deref(), want, "{url}");
        }
        // A wildcard registration is not fooled by a backslash.
        let evil = page_origin("https://evil.example\\.shop.example").unwrap();
        assert!(!matches("https://*.shop.example", &evil));
    }

    #[test]
    fn subdomain_patterns() {
        assert_eq!(
            normalize_pattern("HTTPS://*.Shop.Example:443/").as_deref(),
            Ok("https://*.shop.example")
        );
        assert_eq!(
            normalize_pattern("http://*.shop.example:8080").as_deref(),
            Ok("http://*.shop.example:8080")
        );
        assert_eq!(
            normalize_pattern("https://shop.example").as_deref(),
            Ok("https://shop.example")
        );
        for bad in [
            "https://*.example",
            "https://*.*.shop.example",
            "https://*.127.0.0.1",
            "https://*.[::1]",
            "https://*shop.example",
            "https://a.*.example",
            "https://*.",
            "https://*.co.uk",
            "https://*.CO.UK.",
            "https://*.github.io",
            "https://*.com",
            "https://*.uk",
            "https://*.s3.amazonaws.com",
            "https://*.192.168.0.1",
            "https://*.[2001:db8::1]",
        ] {
            assert!(normalize_pattern(bad).is_err(), "{bad}");
        }
        for ok in [
            "https://*.shop.example.co.uk",
            "https://*.example.co.uk",
            "https://*.jane.github.io",
        ] {
            assert!(normalize_pattern(ok).is_ok(), "{ok}");
        }
        let p = "https://*.shop.example";
        assert!(matches(p, "https://a.shop.example"));
        assert!(matches(p, "https://b.a.shop.example"));
        assert!(!matches(p, "https://shop.example"));
        assert!(!matches(p, "https://evilshop.example"));
        assert!(!matches(p, "http://a.shop.example"));
        assert!(!matches(p, "https://a.shop.example:8443"));
        assert!(!matches(p, "https://a.shop.example.evil.example"));
        assert!(matches(
            "https://*.shop.example:8443",
            "https://a.shop.example:8443"
        ));
        assert!(matches("https://shop.example", "https://shop.example"));
        assert_eq!(
            candidates("https://a.b.shop.example:8443"),
            [
                "https://a.b.shop.example:8443",
                "https://*.b.shop.example:8443",
                "https://*.shop.example:8443"
            ]
        );
        assert_eq!(candidates("https://shop.example"), ["https://shop.example"]);
        assert_eq!(
            candidates("http://127.0.0.1:3000"),
            ["http://127.0.0.1:3000"]
        );
        assert_eq!(candidates("http://[::1]:3000"), ["http://[::1]:3000"]);
        for o in candidates("https://x.y.shop.example") {
            assert!(matches(&o, "https://x.y.shop.example"), "{o}");
        }
    }

    #[test]
    fn normalises() {
        let ok = [
            ("https://shop.example", "https://shop.example"),
            ("HTTPS://Shop.Example:443/", "https://shop.example"),
            ("http://shop.example:80", "http://shop.example"),
            ("http://shop.example:443", "http://shop.example:443"),
            ("https://shop.example:8443", "https://shop.example:8443"),
            ("  http://127.0.0.1:3000 ", "http://127.0.0.1:3000"),
            ("http://localhost", "http://localhost"),
            ("http://[::1]:8080", "http://[::1]:8080"),
            ("https://[2001:DB8::1]", "https://[2001:db8::1]"),
            (
                "https://xn--bcher-kva.example",
                "https://xn--bcher-kva.example",
            ),
        ];
        for (input, want) in ok {
            assert_eq!(normalize(input).as_deref(), Ok(want), "{input}");
        }
    }

    #[test]
    fn rejects() {
        let bad = [
            "",
            "shop.example",
            "ftp://shop.example",
            "https://",
            "https://shop.example/path",
            "https://shop.example/?q=1",
            "https://shop.example#x",
            "https://user@shop.example",
            "https://shop.example:0",
            "https://shop.example:65536",
            "https://shop.example:",
            "https://shop.example:12a",
            "https://shop..example",
            "https://.shop.example",
            "https://bücher.example",
            "https://sh op.example",
            "https://[::1",
            "https://[zz::1]",
            "https://[::1]x",
            "null",
        ];
        for input in bad {
            let e = normalize(input).expect_err(input);
            assert!(e.to_string().contains("invalid origin"), "{e}");
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        for input in [
            "https://[",
            "https://[]",
            "https://]",
            "https://:80",
            "https://[::1]:",
            "://",
            "https://\u{0}",
        ] {
            let _ = normalize(input);
        }
    }
}
