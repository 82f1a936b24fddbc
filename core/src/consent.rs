//! What the visitor consented to, and since when.
//!
//! Every source (the site API, GPC, later the CMP adapters) is normalised to
//! four categories and recorded as a timeline of changes, so a decision can
//! be made on the state *at the time* a behaviour happened, and a withdrawal
//! (true → false) is told apart from consent never given.

pub use crate::report::ConsentBasis as Basis;
use alloc::{string::String, vec::Vec};
use serde::{Deserialize, Serialize};

/// Normalised consent category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// Strictly necessary; always granted.
    Necessary,
    /// Preferences / functionality.
    Functional,
    /// Statistics / measurement.
    Analytics,
    /// Advertising, profiling, targeting.
    Marketing,
}

impl Category {
    /// All categories, in wire order. The page's code walks it (and every
    /// short list) by reference, `for &c in &Category::ALL`: an array's
    /// by-value iterator is a generic instance per element type and length
    /// (docs/benchmarks.md, sixteenth round).
    pub const ALL: [Category; 4] = [
        Category::Necessary,
        Category::Functional,
        Category::Analytics,
        Category::Marketing,
    ];

    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Necessary => "necessary",
            Category::Functional => "functional",
            Category::Analytics => "analytics",
            Category::Marketing => "marketing",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        // A loop: `ALL.iter().find(…).copied()` is 3 bytes of the page's
        // wasm gzip larger, 41 of brotli (docs/benchmarks.md, sixteenth
        // round).
        #[allow(clippy::manual_find)]
        for &c in &Category::ALL {
            if c.as_str() == s {
                return Some(c);
            }
        }
        None
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Where a consent change came from. Serialises as its wire name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Nothing known yet: only `necessary` is granted.
    Default,
    /// The site's `tagwatch('consent', …)` call.
    Api,
    /// The IAB TCF API (`__tcfapi`).
    Tcf,
    /// The IAB GPP API (`__gpp`).
    Gpp,
    /// A CMP's own API, events or cookies; the CMP id (`onetrust`, …).
    Cmp(&'static str),
}

impl Source {
    /// Wire name: `default`, `api`, `tcf`, `gpp` or the CMP id.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Default => "default",
            Source::Api => "api",
            Source::Tcf => "tcf",
            Source::Gpp => "gpp",
            Source::Cmp(id) => id,
        }
    }

    /// Parses a wire name: `default`, `api`, `tcf`, `gpp` or a known CMP id.
    #[cfg(feature = "consent-parsers")]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "default" => Some(Source::Default),
            "api" => Some(Source::Api),
            "tcf" => Some(Source::Tcf),
            "gpp" => Some(Source::Gpp),
            _ => crate::cmp::cmp_id(s).map(Source::Cmp),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Per category: `Some(true)` granted, `Some(false)` refused, `None` unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Categories(pub [Option<bool>; 4]);

impl Categories {
    /// Value for one category.
    pub fn get(&self, c: Category) -> Option<bool> {
        self.0.get(c.index()).copied().flatten()
    }

    /// Sets one category.
    pub fn set(&mut self, c: Category, v: Option<bool>) {
        if let Some(slot) = self.0.get_mut(c.index()) {
            *slot = v;
        }
    }

    /// Only an explicit `true` grants; unknown counts as not granted.
    pub fn granted(&self, c: Category) -> bool {
        c == Category::Necessary || self.get(c) == Some(true)
    }

    /// A compact form for crossing between wasm modules (the page's
    /// on-demand pieces hand their answers to the monitor as numbers): two
    /// bits per category in [`Category::ALL`] order, lowest first; 0
    /// unknown, 1 refused, 2 granted.
    pub fn to_bits(self) -> u8 {
        self.0
            .iter()
            .rev()
            .fold(0, |bits, v| bits << 2 | v.map_or(0, |g| 1 + u8::from(g)))
    }

    /// Categories from [`Categories::to_bits`]; a pair of 3 reads as unknown.
    pub fn from_bits(bits: u8) -> Categories {
        let mut c = Categories::default();
        for (i, slot) in c.0.iter_mut().enumerate() {
            *slot = match bits >> (2 * i) & 3 {
                1 => Some(false),
                2 => Some(true),
                _ => None,
            };
        }
        c
    }

    /// Applies a partial update: categories absent (`None`) in `update` keep
    /// their value.
    pub fn merge(mut self, update: Categories) -> Categories {
        for &c in &Category::ALL {
            if let Some(v) = update.get(c) {
                self.set(c, Some(v));
            }
        }
        self
    }
}

/// Choices a CMP recorded about single vendors (Klaro's, cookieconsent's
/// and Usercentrics' per-service choices): bit `i` of `granted` or
/// `refused` is the vendor in slot `i` of [`crate::cmp::SERVICES`]. A
/// vendor with a choice here is judged by it, every other vendor by its
/// category ([`State::allows`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Vendors {
    /// Vendors granted.
    pub granted: u32,
    /// Vendors refused.
    pub refused: u32,
}

impl Vendors {
    /// The choice about the vendor in `slot`, if one was made.
    pub fn get(self, slot: usize) -> Option<bool> {
        let bit = 1u32.checked_shl(u32::try_from(slot).ok()?)?;
        if self.refused & bit != 0 {
            Some(false)
        } else if self.granted & bit != 0 {
            Some(true)
        } else {
            None
        }
    }

    /// Adds a choice about the vendor in `slot` by the "every source must
    /// grant" rule (two services of one vendor: refused if either is).
    pub fn add(&mut self, slot: usize, granted: bool) {
        let bit = u32::try_from(slot)
            .ok()
            .and_then(|s| 1u32.checked_shl(s))
            .unwrap_or(0);
        if granted {
            self.granted |= bit;
        } else {
            self.refused |= bit;
        }
    }

    /// Whether no choice is recorded.
    pub fn is_empty(self) -> bool {
        self.granted | self.refused == 0
    }

    /// Applies an update: a vendor it has a choice about takes that choice,
    /// the others keep theirs.
    pub fn merge(self, update: Vendors) -> Vendors {
        let decided = update.granted | update.refused;
        Vendors {
            granted: self.granted & !decided | update.granted & !update.refused,
            refused: self.refused & !decided | update.refused,
        }
    }

    /// Every grant turned into a refusal (implied consent a policy does
    /// not count).
    pub fn refuse_granted(self) -> Vendors {
        Vendors {
            granted: 0,
            refused: self.refused | self.granted,
        }
    }

    /// The vendors with a choice, by catalog id, in [`crate::cmp::SERVICES`]
    /// order.
    pub fn iter(self) -> impl Iterator<Item = (&'static str, bool)> {
        crate::cmp::SERVICES
            .iter()
            .enumerate()
            .filter_map(move |(slot, (_, vendor, _))| self.get(slot).map(|v| (*vendor, v)))
    }
}

/// A consent state in force from `since` (ms after navigation start).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct State {
    /// The categories.
    pub categories: Categories,
    /// Choices about single vendors, over their categories.
    pub vendors: Vendors,
    /// Who set it last.
    pub source: Source,
    /// On what it rests.
    pub basis: Basis,
    /// When it took effect.
    pub since: u64,
}

impl State {
    /// Whether `vendor` may do what needs `c`: its own choice where the
    /// state has one ([`Vendors`]), else its category's. `necessary` is
    /// always granted.
    pub fn allows(&self, vendor: &str, c: Category) -> bool {
        if c == Category::Necessary {
            return true;
        }
        match crate::cmp::vendor_slot(vendor).and_then(|slot| self.vendors.get(slot)) {
            Some(choice) => choice,
            None => self.categories.granted(c),
        }
    }

    /// The choice about `vendor` alone, if the state has one.
    pub fn vendor(&self, vendor: &str) -> Option<bool> {
        crate::cmp::vendor_slot(vendor).and_then(|slot| self.vendors.get(slot))
    }
}

/// One partial update as it was received.
#[derive(Debug, Clone, Copy)]
struct Update {
    at: u64,
    source: Source,
    basis: Basis,
    categories: Categories,
    vendors: Vendors,
}

/// The page view's consent history. Updates are kept as received (sorted by
/// time, ties in arrival order) and states are folded from them on demand:
/// a page has a handful of updates, and an update queued before the monitor
/// loaded may arrive late with an earlier time.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    updates: Vec<Update>,
}

impl Timeline {
    /// No update yet, as a constant.
    pub(crate) const EMPTY: Timeline = Timeline {
        updates: Vec::new(),
    };

    /// Records a partial update (absent categories keep their value) taking
    /// effect at `at`, a decision ([`Basis::Explicit`]).
    pub fn update(&mut self, categories: Categories, source: Source, at: u64) {
        self.update_with(categories, Vendors::default(), source, Basis::Explicit, at);
    }

    /// [`Timeline::update`] resting on `basis`, with choices about single
    /// vendors (`vendors`: a vendor it names takes that choice, the others
    /// keep theirs).
    pub fn update_with(
        &mut self,
        categories: Categories,
        vendors: Vendors,
        source: Source,
        basis: Basis,
        at: u64,
    ) {
        crate::insert_by_time(
            &mut self.updates,
            Update {
                at,
                source,
                basis,
                categories,
                vendors,
            },
            |u| u.at,
        );
    }

    /// The state before any update: only `necessary`, from page start.
    fn initial() -> State {
        let mut necessary = Categories::default();
        necessary.set(Category::Necessary, Some(true));
        State {
            categories: necessary,
            vendors: Vendors::default(),
            source: Source::Default,
            basis: Basis::None,
            since: 0,
        }
    }

    /// The state after `u`, from `state`. States follow each other in time
    /// order (their `since` never decreases: updates are sorted). An update
    /// that changes no category (a CMP's cookie re-read after its event
    /// said the same) is not a change: the state keeps its source and its
    /// `since`, the time of the change. Plain loops over the updates call
    /// this, not an iterator chain (`once(..).chain(scan(..))` folded by
    /// `take_while`: its generic instances cost 669 bytes of the shipped
    /// wasm's gzip).
    fn after(state: State, u: &Update) -> State {
        let categories = state.categories.merge(u.categories);
        let vendors = state.vendors.merge(u.vendors);
        if categories == state.categories && vendors == state.vendors {
            return state;
        }
        State {
            categories,
            vendors,
            source: u.source,
            basis: u.basis,
            since: u.at,
        }
    }

    /// The state in force at `at`.
    pub fn at(&self, at: u64) -> State {
        let mut state = Self::initial();
        for u in &self.updates {
            let next = Self::after(state, u);
            if next.since > at {
                break;
            }
            state = next;
        }
        state
    }

    /// The current state.
    pub fn current(&self) -> State {
        self.at(u64::MAX)
    }

    /// If `vendor`'s `c` is withdrawn at `at` — not allowed now
    /// ([`State::allows`]), allowed for a time before — the time of the
    /// withdrawal (the last allowed → not allowed change). A grant that a
    /// state of the same time takes back was never in force: two readings
    /// of one stored choice, both from page start (its cookie's categories,
    /// then its live API's refusal of a service in them), are no withdrawal.
    pub fn withdrawn_since(&self, vendor: &str, c: Category, at: u64) -> Option<u64> {
        let mut allowed_since = None;
        let mut withdrawn = None;
        let mut s = Self::initial();
        let mut updates = self.updates.iter();
        while s.since <= at {
            if s.allows(vendor, c) {
                allowed_since.get_or_insert(s.since);
            } else if let Some(from) = allowed_since.take() {
                if s.since > from {
                    withdrawn = Some(s.since);
                }
            }
            match updates.next() {
                Some(u) => s = Self::after(s, u),
                None => break,
            }
        }
        withdrawn.filter(|_| allowed_since.is_none())
    }
}

/// Every category granted: a source saying consent is not required here.
pub fn all_granted() -> Categories {
    Categories([Some(true); 4])
}

/// A site's own meaning for a consent source's names (`policy.cmp`): the
/// categories a CMP group, purpose, service or category name stands for —
/// or, for source `tcf`, a TCF purpose number — replacing the default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsentNames(Vec<(String, String, Vec<Category>)>);

impl ConsentNames {
    /// No names, as a constant.
    pub(crate) const EMPTY: ConsentNames = ConsentNames(Vec::new());

    /// Maps `name` of `source` to `categories` (empty: to none).
    pub fn set(&mut self, source: &str, name: &str, categories: Vec<Category>) {
        self.0.push((source.into(), name.into(), categories));
    }

    /// Adds `category` to the name set last (a policy's list of
    /// categories, read item by item).
    pub fn add_to_last(&mut self, category: Category) {
        if let Some((_, _, categories)) = self.0.last_mut() {
            categories.push(category);
        }
    }

    /// The site's categories for `name` of `source`, if it set any.
    pub fn get(&self, source: &str, name: &str) -> Option<&[Category]> {
        self.0
            .iter()
            .rev()
            .find(|(s, n, _)| s == source && n == name)
            .map(|(_, _, c)| c.as_slice())
    }

    /// As text, one name a line: `source<TAB>name<TAB>categories`, the
    /// categories' wire names comma-separated (none: empty). How the page
    /// hands them to its CMP cookie reader (`pieces/cmp-cookies`).
    pub fn to_text(&self) -> String {
        let mut text = String::new();
        for (source, name, categories) in &self.0 {
            for part in &[source.as_str(), "\t", name, "\t"] {
                text.push_str(part);
            }
            for (i, c) in categories.iter().enumerate() {
                if i > 0 {
                    text.push_str(",");
                }
                text.push_str(c.as_str());
            }
            text.push_str("\n");
        }
        text
    }

    /// Names from [`ConsentNames::to_text`]; a line without two TABs is
    /// skipped, an unknown category name ignored.
    pub fn from_text(text: &str) -> ConsentNames {
        let mut names = ConsentNames::default();
        for line in crate::fields(text, b'\n') {
            let mut f = crate::fields(line, b'\t');
            if let (Some(source), Some(name), Some(list)) = (f.next(), f.next(), f.next()) {
                names.set(
                    source,
                    name,
                    crate::fields(list, b',')
                        .filter_map(Category::parse)
                        .collect(),
                );
            }
        }
        names
    }
}

/// The ids of the IAB GPP US sections (`usnat`, `usca`, `usva`, `usco`,
/// `usut`, `usct`): the only sections whose consent the monitor takes from
/// a GPP string (the TCF EU section comes from `__tcfapi`). A page whose
/// CMP reports none of them applicable needs no GPP decoder (the page's
/// monitor fetches its GPP piece only then); `gpp`'s tests hold this in
/// step with its section table.
pub const GPP_US_SECTION_IDS: core::ops::RangeInclusive<u16> = 7..=12;

/// The categories a TCF purpose gates by default: purpose 1 (store or
/// access information on a device) gates functional, analytics and
/// marketing; purposes 2–4 (basic ads, ads profile, personalised ads)
/// marketing; 7–10 (measurement, research, product improvement) analytics.
fn tcf_purpose(id: u16) -> &'static [Category] {
    use Category::*;
    match id {
        1 => &[Functional, Analytics, Marketing],
        2..=4 => &[Marketing],
        7..=10 => &[Analytics],
        _ => &[],
    }
}

/// Categories from IAB TCF purpose consents (`purpose(id)`: consent given
/// for purpose `id`), through the site's `tcf` names over the defaults of
/// [`tcf_purpose`]: a category is granted when every purpose gating it is.
pub fn from_tcf_purposes(purpose: impl Fn(u16) -> bool, names: &ConsentNames) -> Categories {
    let mut out = Categories([Some(true), None, None, None]);
    for id in 1..=24u16 {
        // The `u64` parser the policy's numbers use (`crate::parse_u64`),
        // not a second one for `u16` (123 bytes of the shipped wasm's
        // gzip); equal only on `id`.
        let site = names
            .0
            .iter()
            .rev()
            .find(|(s, n, _)| s == "tcf" && crate::parse_u64(n) == Some(u64::from(id)));
        let gated = site.map_or(tcf_purpose(id), |(_, _, c)| c.as_slice());
        for c in gated {
            out.set(*c, Some(out.get(*c).unwrap_or(true) && purpose(id)));
        }
    }
    out
}

/// Builds `Categories` from `(category, value)` pairs.
pub fn categories(pairs: &[(Category, bool)]) -> Categories {
    let mut c = Categories::default();
    for (cat, v) in pairs {
        c.set(*cat, Some(*v));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::Category::*;
    use super::*;

    /// The timeline's loops answer what its former iterator chain
    /// (`once(initial).chain(scan(..))`, cut by `take_while`) answered, on
    /// random histories: same states, same withdrawals.
    #[test]
    fn timeline_loops_are_the_former_fold() {
        fn states(t: &Timeline) -> Vec<State> {
            let first = Timeline::initial();
            let rest = t.updates.iter().scan(first, |state, u| {
                let categories = state.categories.merge(u.categories);
                let vendors = state.vendors.merge(u.vendors);
                if categories != state.categories || vendors != state.vendors {
                    *state = State {
                        categories,
                        vendors,
                        source: u.source,
                        basis: u.basis,
                        since: u.at,
                    };
                }
                Some(*state)
            });
            core::iter::once(first).chain(rest).collect()
        }
        fn at(t: &Timeline, at: u64) -> State {
            let all = states(t);
            *all.iter().take_while(|s| s.since <= at).last().unwrap()
        }
        fn withdrawn_since(t: &Timeline, vendor: &str, c: Category, at: u64) -> Option<u64> {
            let (mut allowed_since, mut withdrawn) = (None, None);
            for s in states(t).iter().take_while(|s| s.since <= at) {
                if s.allows(vendor, c) {
                    allowed_since.get_or_insert(s.since);
                } else if let Some(from) = allowed_since.take() {
                    if s.since > from {
                        withdrawn = Some(s.since);
                    }
                }
            }
            withdrawn.filter(|_| allowed_since.is_none())
        }
        let vendor = crate::cmp::SERVICES[0].1;
        let mut draws = crate::testing::Draws::new();
        let mut next = |m: u64| draws.next() % m;
        for _ in 0..3_000 {
            let mut t = Timeline::default();
            for _ in 0..next(6) {
                let categories = Categories::from_bits(next(256) as u8);
                let vendors = Vendors {
                    granted: next(2) as u32,
                    refused: next(2) as u32,
                };
                t.update_with(
                    categories,
                    vendors,
                    Source::Api,
                    Basis::Explicit,
                    next(5) * 10,
                );
            }
            for when in [0, 5, 10, 20, 25, 40, 45, u64::MAX] {
                assert_eq!(t.at(when), at(&t, when), "{t:?} at {when}");
                for c in Category::ALL {
                    for v in [vendor, "other"] {
                        assert_eq!(
                            t.withdrawn_since(v, c, when),
                            withdrawn_since(&t, v, c, when),
                            "{t:?} {v} {c:?} at {when}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn categories_bits_round_trip() {
        let values = [None, Some(false), Some(true)];
        for a in values {
            for b in values {
                for c in values {
                    for d in values {
                        let cats = Categories([a, b, c, d]);
                        assert_eq!(Categories::from_bits(cats.to_bits()), cats);
                    }
                }
            }
        }
        assert_eq!(Categories::default().to_bits(), 0);
        assert_eq!(
            Categories::from_bits(0xff),
            Categories::default(),
            "3 is no value"
        );
        assert_eq!(
            categories(&[(Necessary, true), (Marketing, false)]).to_bits(),
            0b01_00_00_10
        );
    }

    #[test]
    fn consent_names_text_round_trip() {
        let mut names = ConsentNames::default();
        names.set("onetrust", "C0005", vec![Functional]);
        names.set("onetrust", "C0002", vec![]);
        names.set("tcf", "1", vec![Functional, Analytics]);
        let text = names.to_text();
        assert_eq!(
            text,
            "onetrust\tC0005\tfunctional\nonetrust\tC0002\t\ntcf\t1\tfunctional,analytics\n"
        );
        assert_eq!(ConsentNames::from_text(&text), names);
        let odd = ConsentNames::from_text("x\ny\tz\n\ta\tbogus,marketing");
        assert_eq!(odd.get("", "a"), Some(&[Marketing][..]));
        assert_eq!(odd.get("y", "z"), None);
    }

    #[test]
    fn default_grants_only_necessary() {
        let t = Timeline::default();
        let s = t.at(100);
        assert!(s.categories.granted(Necessary));
        assert!(!s.categories.granted(Functional));
        assert_eq!(s.categories.get(Marketing), None);
    }

    #[test]
    fn partial_updates_merge() {
        let mut t = Timeline::default();
        t.update(
            categories(&[(Functional, true), (Marketing, false)]),
            Source::Api,
            10,
        );
        t.update(categories(&[(Marketing, true)]), Source::Api, 20);
        let s = t.at(25);
        assert!(s.categories.granted(Functional) && s.categories.granted(Marketing));
        assert!(!t.at(15).categories.granted(Marketing));
        assert!(!t.at(5).categories.granted(Functional));
    }

    #[test]
    fn late_update_with_earlier_time_is_placed_in_order() {
        let mut t = Timeline::default();
        t.update(categories(&[(Marketing, true)]), Source::Api, 50);
        t.update(categories(&[(Functional, true)]), Source::Api, 10);
        assert!(t.at(20).categories.granted(Functional));
        assert!(!t.at(20).categories.granted(Marketing));
        assert!(t.at(60).categories.granted(Functional) && t.at(60).categories.granted(Marketing));
    }

    #[test]
    fn withdrawal_is_not_refusal() {
        let mut t = Timeline::default();
        t.update(categories(&[(Functional, false)]), Source::Api, 5);
        assert_eq!(t.withdrawn_since("intercom", Functional, 50), None);
        t.update(categories(&[(Functional, true)]), Source::Api, 100);
        t.update(categories(&[(Functional, false)]), Source::Api, 200);
        assert_eq!(t.withdrawn_since("intercom", Functional, 150), None);
        assert_eq!(t.withdrawn_since("intercom", Functional, 300), Some(200));
        t.update(categories(&[(Functional, true)]), Source::Api, 400);
        assert_eq!(t.withdrawn_since("intercom", Functional, 500), None);
    }

    #[test]
    fn an_update_that_changes_nothing_is_not_a_change() {
        // A CMP's event, then its cookie re-read a few ms later saying the same.
        let mut t = Timeline::default();
        let refused = categories(&[(Functional, false), (Marketing, false)]);
        t.update(
            categories(&[(Functional, true), (Marketing, true)]),
            Source::Cmp("onetrust"),
            0,
        );
        t.update(refused, Source::Cmp("onetrust"), 100);
        t.update(refused, Source::Api, 105);
        let s = t.at(2000);
        assert_eq!((s.since, s.source), (100, Source::Cmp("onetrust")));
        assert_eq!(t.withdrawn_since("intercom", Functional, 2000), Some(100));
    }

    #[test]
    fn a_grant_taken_back_at_its_own_time_is_no_withdrawal() {
        // Two readings of one stored choice, both from page start: its
        // cookie grants analytics, its live API refuses Hotjar inside it.
        // Hotjar's analytics was never in force: no withdrawal.
        let mut t = Timeline::default();
        let analytics = categories(&[(Analytics, true)]);
        let cc = Source::Cmp("vanilla-cookieconsent");
        t.update(analytics, cc, 0);
        let mut hotjar = Vendors::default();
        hotjar.add(crate::cmp::service("hotjar").unwrap_or(99), false);
        t.update_with(analytics, hotjar, cc, Basis::Explicit, 0);
        assert_eq!(t.withdrawn_since("hotjar", Analytics, 500), None);
        assert!(!t.at(0).allows("hotjar", Analytics));
        assert!(t.at(0).allows("mixpanel", Analytics));
        // Hotjar granted at 600 and refused again at 600: the withdrawal
        // before (none here) stands; granted from 700 to 800: one at 800.
        let mut all = Vendors::default();
        all.add(crate::cmp::service("hotjar").unwrap_or(99), true);
        t.update_with(analytics, all, cc, Basis::Explicit, 600);
        t.update_with(analytics, hotjar, cc, Basis::Explicit, 600);
        assert_eq!(t.withdrawn_since("hotjar", Analytics, 650), None);
        t.update_with(analytics, all, cc, Basis::Explicit, 700);
        t.update_with(analytics, hotjar, cc, Basis::Explicit, 800);
        assert_eq!(t.withdrawn_since("hotjar", Analytics, 900), Some(800));
        t.update_with(analytics, all, cc, Basis::Explicit, 1000);
        t.update_with(analytics, hotjar, cc, Basis::Explicit, 1000);
        assert_eq!(
            t.withdrawn_since("hotjar", Analytics, 1100),
            Some(800),
            "a grant taken back at once keeps the withdrawal before it"
        );
        assert_eq!(t.withdrawn_since("hotjar", Analytics, 750), None);
    }
}
