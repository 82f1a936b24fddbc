//! Random site keys and admin tokens, and a constant-time comparison.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `n` random URL-safe characters (`[A-Za-z0-9_-]`), 6 bits of entropy each.
pub fn random_token(n: usize) -> Result<String, getrandom::Error> {
    let mut bytes = vec![0u8; n];
    getrandom::fill(&mut bytes)?;
    // 256 is a multiple of 64, so `b % 64` is uniform.
    #[allow(clippy::indexing_slicing)] // `b % 64` < 64 = ALPHABET.len().
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(b % 64)]))
        .collect())
}

/// A new site key: `tw_` and 24 random characters (144 bits), matching the
/// report schema's `^[A-Za-z0-9_-]{1,64}$`.
pub fn new_site_key() -> Result<String, getrandom::Error> {
    Ok(format!("tw_{}", random_token(24)?))
}

/// Whether `s` has the shape of a site key (the report schema's
/// `^[A-Za-z0-9_-]{1,64}$`). Anything else is an unknown key without
/// asking the store (PostgreSQL refuses some text, such as a NUL, that
/// SQLite would look up and not find).
pub fn is_site_key(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Compares two secrets in time that depends only on their lengths.
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    let mut diff = a.len() ^ b.len();
    for i in 0..a.len().max(b.len()) {
        let x = a.get(i).copied().unwrap_or(0);
        let y = b.get(i).copied().unwrap_or(0);
        diff |= usize::from(x ^ y);
    }
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn site_keys_match_the_schema_pattern() {
        for _ in 0..100 {
            let key = new_site_key().expect("random");
            assert!(is_site_key(&key), "{key}");
            assert_eq!(key.len(), 27);
            assert!(key.starts_with("tw_"));
            assert!(key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-'));
        }
        assert_ne!(new_site_key().ok(), new_site_key().ok());
    }

    #[test]
    fn compares() {
        assert!(ct_eq(b"secret", b"secret"));
        assert!(!ct_eq(b"secret", b"secreT"));
        assert!(!ct_eq(b"secret", b"secret2"));
        assert!(!ct_eq(b"", b"x"));
        assert!(ct_eq(b"", b""));
    }
}
