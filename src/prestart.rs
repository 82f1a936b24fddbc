//! When a consent state the monitor found as it started took effect.
//!
//! The brain starts after the page's `load`; a CMP (or TCF, GPP) state it
//! reads then may have been restored from storage at page start, or chosen
//! by the visitor in the meantime. The loader kept the evidence: the
//! cookies at its start, each Cookie Store change with its time, and the
//! times of trusted clicks and key presses. A choice needs a gesture, and a
//! CMP writes its cookie in the task of the click that made it:
//!
//! 1. no trusted gesture before the start: restored (page start, 0);
//! 2. the CMP's consent cookie changed after the first gesture: the last
//!    gesture at or before that change (the click that made the choice);
//! 3. else, its consent cookie was there when the loader started: restored;
//! 4. else (a choice kept outside cookies, made after a gesture): the first
//!    gesture — the earliest the choice can have been made, so nothing the
//!    tags did after it is judged against a state not yet in force.

use alloc::string::String;
use alloc::vec::Vec;

/// Trusted gestures kept before the start: the first and the latest ones
/// are what the rules read, a page view has a handful.
const MAX_GESTURES: usize = 64;

/// A snapshot's consent cookies: `(cmp, name=value)`.
pub(crate) type Consent = Vec<(&'static str, String)>;

/// The consent cookies of `header` (the page's shell reads them in its one
/// pass over a snapshot, `CookieNames::read`).
#[cfg(any(feature = "parsers", test))]
pub(crate) fn consent_cookies(header: &str) -> Consent {
    let mut now = Vec::new();
    for (name, value) in tagwatch_core::cookie::pairs(header) {
        if let Some(cmp) = tagwatch_core::cmp::consent_cookie(name) {
            now.push((cmp, crate::cat(&[name, "=", value])));
        }
    }
    now
}

/// The evidence kept until the monitor starts.
pub(crate) struct Prestart {
    gestures: Vec<u64>,
    /// `(time, cmp)` of each change of a consent cookie.
    changes: Vec<(u64, &'static str)>,
    /// CMPs with a consent cookie in the first snapshot.
    restored: Vec<&'static str>,
    /// The last snapshot's consent cookies, `name=value`.
    last: Consent,
    first_read: bool,
}

impl Prestart {
    /// Nothing kept yet.
    pub(crate) const EMPTY: Prestart = Prestart {
        gestures: Vec::new(),
        changes: Vec::new(),
        restored: Vec::new(),
        last: Vec::new(),
        first_read: false,
    };

    pub(crate) fn gesture(&mut self, at: u64) {
        if self.gestures.len() < MAX_GESTURES {
            self.gestures.push(at);
        } else if let Some(last) = self.gestures.last_mut() {
            *last = at;
        }
    }

    /// A cookie snapshot before the start, by its consent cookies
    /// ([`consent_cookies`]): against the last.
    pub(crate) fn cookies(&mut self, now: Consent, at: u64) {
        // Loops that push, not `collect` / `filter().chain().map()` into
        // `extend` (adapter instances the module carried for this alone).
        if !core::mem::replace(&mut self.first_read, true) {
            // The first read: `restored` is still empty.
            for (cmp, _) in &now {
                self.restored.push(cmp);
            }
        } else {
            for c in &now {
                if !self.last.contains(c) {
                    self.changes.push((at, c.0));
                }
            }
            for c in &self.last {
                if !now.contains(c) {
                    self.changes.push((at, c.0));
                }
            }
        }
        self.last = now;
    }

    /// When the state `cmp` had at the start took effect (module docs).
    pub(crate) fn dated(&self, cmp: &str) -> u64 {
        let Some(&first) = self.gestures.first() else {
            return 0;
        };
        if let Some(&(change, _)) = self
            .changes
            .iter()
            .rev()
            .find(|(t, c)| *c == cmp && *t >= first)
        {
            return self
                .gestures
                .iter()
                .rev()
                .find(|g| **g <= change)
                .copied()
                .unwrap_or(first);
        }
        if self.restored.contains(&cmp) {
            return 0;
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_is_dated_at_the_gesture_that_wrote_its_cookie() {
        let mut p = Prestart::EMPTY;
        p.cookies(
            consent_cookies("OptanonConsent=groups=C0003%3A1; theme=dark"),
            5,
        );
        assert_eq!(p.dated("onetrust"), 0, "no gesture: restored");
        p.gesture(1200);
        p.cookies(
            consent_cookies("OptanonConsent=groups=C0003%3A1; theme=light"),
            1300,
        );
        assert_eq!(
            p.dated("onetrust"),
            0,
            "an unrelated click; the consent cookie was there"
        );
        p.gesture(2000);
        p.cookies(
            consent_cookies("OptanonConsent=groups=C0003%3A0; theme=light"),
            2001,
        );
        p.gesture(3000);
        assert_eq!(
            p.dated("onetrust"),
            2000,
            "the click in whose task the cookie changed"
        );
        assert_eq!(
            p.dated("usercentrics"),
            1200,
            "kept outside cookies: the first gesture"
        );
    }

    #[test]
    fn a_first_cookie_written_after_a_gesture_dates_the_choice() {
        let mut p = Prestart::EMPTY;
        p.cookies(consent_cookies(""), 5);
        p.gesture(700);
        p.cookies(consent_cookies("cmplz_marketing=deny"), 701);
        assert_eq!(p.dated("complianz"), 700);
        assert_eq!(p.dated("onetrust"), 700);
    }
}
