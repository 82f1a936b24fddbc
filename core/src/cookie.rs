//! `document.cookie` parsing. Values are handed out only as borrowed slices
//! for in-page consent decoding; evidence ever keeps just the name.

/// Iterates `(name, value)` pairs of a `Cookie:`-style string
/// (`a=1; b=2`). Pairs without `=` are a name with an empty value, as
/// browsers treat them. Never panics, never allocates.
pub fn pairs(header: &str) -> impl Iterator<Item = (&str, &str)> {
    header.split([';']).filter_map(|pair| {
        let pair = pair.trim();
        if pair.is_empty() {
            return None;
        }
        Some(match pair.split_once(['=']) {
            Some((name, value)) => (name.trim(), value.trim()),
            None => ("", pair),
        })
    })
}

/// Cookie names present in `header`, without values, empty values skipped:
/// Intercom leaves `intercom-session-<id>=` behind after `shutdown`, which is
/// a cleared session, not a live one.
pub fn live_names(header: &str) -> impl Iterator<Item = &str> {
    pairs(header)
        .filter(|(name, value)| !name.is_empty() && !value.is_empty())
        .map(|(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pairs() {
        let v: Vec<_> = pairs("a=1; b = two ;c=; flag;=x;; d=e=f").collect();
        assert_eq!(
            v,
            vec![
                ("a", "1"),
                ("b", "two"),
                ("c", ""),
                ("", "flag"),
                ("", "x"),
                ("d", "e=f")
            ]
        );
    }

    #[test]
    fn live_names_skip_empty() {
        let v: Vec<_> = live_names("intercom-session-x=; intercom-id-x=abc").collect();
        assert_eq!(v, vec!["intercom-id-x"]);
    }
}
