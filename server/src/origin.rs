//! Web origins (`scheme://host[:port]`), normalised the way browsers
//! serialise them in the `Origin` header: lower-case scheme and host, the
//! scheme's default port dropped, no path.

use std::fmt;

/// Why a string is not an origin. The message is meant for the person who
/// typed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginError {
    input: String,
    reason: &'static str,
}

impl fmt::Display for OriginError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid origin {:?}: {} (expected scheme://host[:port], e.g. https://shop.example)",
            self.input, self.reason
        )
    }
}

impl std::error::Error for OriginError {}

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
    use super::normalize;

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
