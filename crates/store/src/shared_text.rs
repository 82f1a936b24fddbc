//! Text that the records of one batch share: a report's site, page view,
//! page, times, user agent and release are mostly the same for every
//! report of a batch (one page view, one moment), and its findings'
//! consent states and evidence often equal the one before. Each record
//! holds a counted reference to one copy instead of a copy of its own:
//! the parse made ≈ 110 copies of such values a golden batch, a third of a
//! batch's allocations on the HTTP workers (docs/benchmarks.md, "Shared
//! record values").
//!
//! It reads, compares, orders and hashes as the text it holds (a
//! `String`'s hash: what a record hashed to before is what it hashes to
//! now).

use std::borrow::Borrow;
use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// Immutable text, cloned by a reference count's increment.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SharedText(Arc<str>);

impl SharedText {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for SharedText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for SharedText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for SharedText {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl From<&str> for SharedText {
    fn from(s: &str) -> Self {
        SharedText(Arc::from(s))
    }
}

impl From<String> for SharedText {
    fn from(s: String) -> Self {
        SharedText(Arc::from(s))
    }
}

impl From<&String> for SharedText {
    fn from(s: &String) -> Self {
        SharedText::from(s.as_str())
    }
}

impl From<SharedText> for String {
    fn from(s: SharedText) -> Self {
        s.as_str().to_owned()
    }
}

impl fmt::Debug for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SharedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

impl PartialEq<str> for SharedText {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SharedText {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl PartialEq<String> for SharedText {
    fn eq(&self, other: &String) -> bool {
        self.as_str() == other.as_str()
    }
}

impl PartialEq<SharedText> for str {
    fn eq(&self, other: &SharedText) -> bool {
        self == other.as_str()
    }
}

impl PartialEq<SharedText> for &str {
    fn eq(&self, other: &SharedText) -> bool {
        *self == other.as_str()
    }
}

impl PartialEq<SharedText> for String {
    fn eq(&self, other: &SharedText) -> bool {
        self.as_str() == other.as_str()
    }
}

#[cfg(test)]
mod tests {
    use super::SharedText;
    use std::collections::hash_map::DefaultHasher;
    use std::hash::{Hash, Hasher};

    fn hash(v: &impl Hash) -> u64 {
        let mut h = DefaultHasher::new();
        v.hash(&mut h);
        h.finish()
    }

    /// A record's fields hash, compare and order as the `String`s they
    /// were (the events store keys retried batches by such a hash).
    #[test]
    fn hashes_compares_and_orders_as_its_text() {
        let texts = ["", "a", "ab", "b", "tw_abc", "é"];
        for a in texts {
            let shared = SharedText::from(a);
            assert_eq!(hash(&shared), hash(&a.to_owned()));
            assert_eq!(hash(&Some(shared.clone())), hash(&Some(a.to_owned())));
            assert_eq!(shared, a);
            assert_eq!(format!("{shared:?}"), format!("{a:?}"));
            for b in texts {
                let other = SharedText::from(b);
                assert_eq!(shared.cmp(&other), a.cmp(b));
                assert_eq!(shared == other, a == b);
            }
        }
    }
}
