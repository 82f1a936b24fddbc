//! `document.cookie` parsing. Values are handed out only as borrowed slices
//! for in-page consent decoding; evidence ever keeps just the name.

/// Iterates `(name, value)` pairs of a `Cookie:`-style string
/// (`a=1; b=2`). Pairs without `=` are a name with an empty value, as
/// browsers treat them. Never panics, never allocates.
pub fn pairs(header: &str) -> Pairs<'_> {
    Pairs(crate::fields(header, b';'))
}

/// The iterator of [`pairs`]: one type of its own for every caller, where
/// `filter_map` / `filter` made an instance of each for each (137 bytes of
/// the shipped wasm's gzip). It splits by [`crate::fields`], as every
/// other split of the core does: once none used `str::split`, core's
/// `Split` and its searchers left the page's wasm and the cookie reader
/// piece alike (docs/benchmarks.md, eleventh round).
#[derive(Debug, Clone)]
pub struct Pairs<'a>(crate::Fields<'a>);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a str, &'a str);

    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        loop {
            let pair = crate::trim(self.0.next()?);
            if pair.is_empty() {
                continue;
            }
            return Some(match crate::split_once(pair, b'=') {
                Some((name, value)) => (crate::trim(name), crate::trim(value)),
                None => ("", pair),
            });
        }
    }
}

/// Cookie names present in `header`, without values, empty values skipped:
/// Intercom leaves `intercom-session-<id>=` behind after `shutdown`, which is
/// a cleared session, not a live one.
pub fn live_names(header: &str) -> LiveNames<'_> {
    LiveNames(pairs(header))
}

/// The iterator of [`live_names`].
#[derive(Debug, Clone)]
pub struct LiveNames<'a>(Pairs<'a>);

impl<'a> Iterator for LiveNames<'a> {
    type Item = &'a str;

    fn next(&mut self) -> Option<&'a str> {
        loop {
            let (name, value) = self.0.next()?;
            if !name.is_empty() && !value.is_empty() {
                return Some(name);
            }
        }
    }
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

    /// `Pairs` splits as the former `split` / `split_once` chain did,
    /// on random headers of separators, spaces and non-ASCII characters.
    #[test]
    fn pairs_are_the_former_split() {
        fn former(header: &str) -> Vec<(&str, &str)> {
            header
                .split([';'])
                .filter_map(|pair| {
                    let pair = pair.trim();
                    if pair.is_empty() {
                        return None;
                    }
                    Some(match pair.split_once(['=']) {
                        Some((name, value)) => (name.trim(), value.trim()),
                        None => ("", pair),
                    })
                })
                .collect()
        }
        let alphabet = [";", "=", " ", "a", "é", "\u{3000}", "\t", "_ga", "x=y"];
        for header in crate::testing::texts(&alphabet, 24, 20_000) {
            let want = former(&header);
            assert_eq!(pairs(&header).collect::<Vec<_>>(), want, "{header:?}");
            let live: Vec<&str> = want
                .iter()
                .filter(|(n, v)| !n.is_empty() && !v.is_empty())
                .map(|(n, _)| *n)
                .collect();
            assert_eq!(live_names(&header).collect::<Vec<_>>(), live, "{header:?}");
        }
    }

    #[test]
    fn live_names_skip_empty() {
        let v: Vec<_> = live_names("intercom-session-x=; intercom-id-x=abc").collect();
        assert_eq!(v, vec!["intercom-id-x"]);
    }
}
