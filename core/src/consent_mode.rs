//! Google Consent Mode v2: fold `['consent', 'default' | 'update', {…}]`
//! commands (as pushed to `dataLayer` by `gtag()`) into a state, and read
//! the `gcs` / `gcd` parameters that Google's own hits carry.
//!
//! Folding rules (shared/reference/consent.md §1.3):
//! - Each consent type keeps a **default** and an **update** value, as
//!   Google's internal `google_tag_data.ics.entries[type]` does. The value in
//!   force is the update if there is one, else the default: "the last update
//!   wins for each key, over default". So a `default` sent after an `update`
//!   changes the stored default but not the value in force.
//! - A `default` with a `region` list applies only when the visitor's region
//!   (given to [`ConsentMode::new`], ISO 3166-1 `ES` or 3166-2 `US-CA`)
//!   matches one of the entries; without a known visitor region,
//!   region-scoped defaults are skipped. A more specific default wins over a
//!   less specific one whatever their order (subdivision match > country
//!   match > no region), as Google documents for regional defaults. Between
//!   two defaults of the same specificity the later one wins [unverified:
//!   Google does not document repeated defaults].
//! - `update` ignores `region`.
//! - Values other than `granted` / `denied` (case-insensitive) and unknown
//!   keys are ignored; `wait_for_update` (ms) is recorded from `default`.
//!
//! Mapping to the normalised categories ([`ConsentMode::categories`]):
//! `functionality_storage` → functional, `analytics_storage` → analytics,
//! `ad_storage` + `ad_user_data` + `ad_personalization` → marketing (granted
//! only if all three are granted, refused if any is denied, else unknown).
//! `personalization_storage` and `security_storage` are kept but not mapped.
//!
//! ```
//! use tagwatch_core::{consent::Category, consent_mode::ConsentMode};
//! let mut cm = ConsentMode::new(Some("DE"));
//! cm.apply("default", &[("analytics_storage", "denied"), ("region", "DE,FR")]);
//! cm.apply("update", &[("analytics_storage", "granted")]);
//! assert_eq!(cm.categories().get(Category::Analytics), Some(true));
//! assert_eq!(tagwatch_core::consent_mode::parse_gcs("G101"), Some((false, true)));
//! ```

use alloc::string::String;
use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::consent::{Categories, Category};

/// The consent types, in this order everywhere in this module.
pub const TYPES: [&str; 7] = [
    "ad_storage",
    "analytics_storage",
    "ad_user_data",
    "ad_personalization",
    "functionality_storage",
    "personalization_storage",
    "security_storage",
];

/// One consent type's values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct TypeState {
    /// From `default` commands (`true` granted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// From `update` commands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<bool>,
    /// Specificity of the default in force: 0 none, 1 no region, 2 country
    /// match, 3 subdivision match.
    #[serde(skip)]
    rank: u8,
}

impl TypeState {
    /// The value in force: the update, else the default.
    pub fn effective(&self) -> Option<bool> {
        self.update.or(self.default)
    }
}

/// The folded Consent Mode state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsentMode {
    region: Option<String>,
    types: [TypeState; 7],
    wait_for_update: Option<u64>,
    commands: u32,
}

fn index(name: &str) -> Option<usize> {
    TYPES.iter().position(|t| *t == name)
}

fn value(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("granted") {
        Some(true)
    } else if v.eq_ignore_ascii_case("denied") {
        Some(false)
    } else {
        None
    }
}

/// The empty state, written once: [`ConsentMode::EMPTY`].
impl Default for ConsentMode {
    fn default() -> Self {
        ConsentMode::EMPTY
    }
}

impl ConsentMode {
    /// No command yet, region unknown, as a constant.
    pub(crate) const EMPTY: ConsentMode = ConsentMode {
        region: None,
        types: [TypeState {
            default: None,
            update: None,
            rank: 0,
        }; 7],
        wait_for_update: None,
        commands: 0,
    };

    /// An empty state for a visitor in `region` (`ES`, `US-CA`; case
    /// ignored), or of unknown region.
    pub fn new(region: Option<&str>) -> Self {
        Self {
            region: region
                .map(|r| crate::trim(r).to_ascii_uppercase())
                .filter(|r| !r.is_empty()),
            ..Self::default()
        }
    }

    /// Specificity of a `default` with `params` (0: does not apply to
    /// this visitor): its `region` entries (comma-separated lists, or
    /// repeated) against the visitor's region. Loops over the entries, not a
    /// list collected by an adapter chain (`filter`, `flat_map`, `map`,
    /// `collect`: 289 bytes of the shipped wasm's gzip).
    fn rank(&self, params: &[(&str, &str)]) -> u8 {
        // A match, not `as_deref().unwrap_or("")`: `Option::as_deref` was
        // an instance for this line alone (docs/benchmarks.md, sixteenth
        // round).
        let visitor = match &self.region {
            Some(r) => r.as_str(),
            None => "",
        };
        let country = visitor
            .get(..crate::url::find_ascii(visitor, b"-").unwrap_or(visitor.len()))
            .unwrap_or(visitor);
        let (mut any, mut best) = (false, 0);
        for (k, list) in params {
            if *k != "region" {
                continue;
            }
            for r in crate::fields(list, b',').map(crate::trim) {
                if r.is_empty() {
                    continue;
                }
                any = true;
                // `visitor` is never empty when known (`new`), and `r` is not.
                if r.eq_ignore_ascii_case(visitor) {
                    let subdivision = crate::url::find_ascii(r, b"-").is_some();
                    best = best.max(if subdivision { 3 } else { 2 });
                } else if r.eq_ignore_ascii_case(country) {
                    best = best.max(2);
                }
            }
        }
        if any {
            best
        } else {
            1
        }
    }

    /// Folds one command. `command` is `default` or `update`; `params` the
    /// object's entries with values as strings (`region` as a
    /// comma-separated list, or repeated). Returns whether the command was
    /// recognised (an unknown command changes nothing).
    pub fn apply(&mut self, command: &str, params: &[(&str, &str)]) -> bool {
        let is_default = match command {
            "default" => true,
            "update" => false,
            _ => return false,
        };
        self.commands = self.commands.saturating_add(1);
        // One loop for both commands (an update sets `update`, a default
        // that applies sets `default` where its rank is not below the one
        // in force): the pair lookups written once.
        let rank = if is_default { self.rank(params) } else { 0 };
        if is_default && rank == 0 {
            return true;
        }
        for (k, v) in params {
            if is_default && *k == "wait_for_update" {
                // Whole milliseconds: a fraction is cut off (no float parser,
                // which would weigh more than the rest of this module in wasm).
                let whole = crate::fields(crate::trim(v), b'.').next().unwrap_or("");
                if let Some(ms) = crate::parse_u64(whole) {
                    self.wait_for_update = Some(ms);
                }
            } else if let (Some(i), Some(v)) = (index(k), value(v)) {
                if let Some(t) = self.types.get_mut(i) {
                    if !is_default {
                        t.update = Some(v);
                    } else if rank >= t.rank {
                        t.default = Some(v);
                        t.rank = rank;
                    }
                }
            }
        }
        true
    }

    /// One type's values (`None` for an unknown type name).
    pub fn get(&self, name: &str) -> Option<TypeState> {
        index(name).and_then(|i| self.types.get(i)).copied()
    }

    /// The value in force for one type.
    pub fn effective(&self, name: &str) -> Option<bool> {
        self.get(name).and_then(|t| t.effective())
    }

    /// `wait_for_update` of the applicable defaults, in ms.
    pub fn wait_for_update(&self) -> Option<u64> {
        self.wait_for_update
    }

    /// Whether any `default` / `update` command was seen.
    pub fn is_active(&self) -> bool {
        self.commands > 0
    }

    /// The normalised categories (see the module docs). `necessary` is
    /// `true` once any command was seen; with none everything is unknown.
    pub fn categories(&self) -> Categories {
        let mut c = Categories::default();
        if !self.is_active() {
            return c;
        }
        c.set(Category::Necessary, Some(true));
        c.set(
            Category::Functional,
            self.effective("functionality_storage"),
        );
        c.set(Category::Analytics, self.effective("analytics_storage"));
        let ads = ["ad_storage", "ad_user_data", "ad_personalization"].map(|t| self.effective(t));
        let marketing = if ads.contains(&Some(false)) {
            Some(false)
        } else if ads.iter().all(|v| *v == Some(true)) {
            Some(true)
        } else {
            None
        };
        c.set(Category::Marketing, marketing);
        c
    }
}

impl Serialize for ConsentMode {
    /// `{"region": …, "waitForUpdate": …, "<type>": {"default", "update"}}`,
    /// unset entries left out.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if let Some(r) = &self.region {
            m.serialize_entry("region", r)?;
        }
        if let Some(w) = self.wait_for_update {
            m.serialize_entry("waitForUpdate", &w)?;
        }
        for (name, t) in TYPES.iter().zip(&self.types) {
            if t.default.is_some() || t.update.is_some() {
                m.serialize_entry(name, t)?;
            }
        }
        m.end()
    }
}

/// `gcs=G1xy` on a Google hit: `(ad_storage, analytics_storage)`, `1` =
/// granted. `None` for anything else (a missing `gcs` means Consent Mode was
/// not active when the hit fired).
pub fn parse_gcs(gcs: &str) -> Option<(bool, bool)> {
    let bit = |c: u8| match c {
        b'0' => Some(false),
        b'1' => Some(true),
        _ => None,
    };
    match crate::trim(gcs).as_bytes() {
        [b'G', b'1', x, y] => Some((bit(*x)?, bit(*y)?)),
        _ => None,
    }
}

/// One consent type as the `gcd` parameter reports it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct GcdSignal {
    /// The default (`None`: no default).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// The update (`None`: no update).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub update: Option<bool>,
}

impl GcdSignal {
    /// The value in force: the update, else the default.
    pub fn effective(&self) -> Option<bool> {
        self.update.or(self.default)
    }

    /// The meaning of one `gcd` letter; `None` for an unknown letter.
    pub fn from_letter(c: char) -> Option<Self> {
        let (default, update) = match c {
            'l' => (None, None),
            'p' => (Some(false), None),
            'q' => (Some(false), Some(false)),
            't' => (Some(true), None),
            'r' => (Some(false), Some(true)),
            'm' => (None, Some(false)),
            'n' => (None, Some(true)),
            'u' => (Some(true), Some(false)),
            'v' => (Some(true), Some(true)),
            _ => return None,
        };
        Some(Self { default, update })
    }
}

/// The four Consent Mode v2 types carried by `gcd`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Gcd {
    /// First letter.
    pub ad_storage: GcdSignal,
    /// Second letter.
    pub analytics_storage: GcdSignal,
    /// Third letter.
    pub ad_user_data: GcdSignal,
    /// Fourth letter.
    pub ad_personalization: GcdSignal,
}

/// Tolerant `gcd` reader. The value is digits and letters, e.g.
/// `11p1p1p1p5` or `13r3r3r2r5l1`: a leading `1` + digit, then one letter per
/// type — ad_storage, analytics_storage, ad_user_data, ad_personalization —
/// separated by digits; anything after the fourth letter (DMA flags) is
/// ignored. Letter meanings ([2nd], the table published by Markus Baersch
/// on simoahava.com and quoted by analytics blogs; not documented by
/// Google): `l` not set, `p` denied by default, `q` denied by default and
/// update, `t` granted by default, `r` denied by default / granted by update,
/// `m` denied by update only, `n` granted by update only, `u` granted by
/// default / denied by update, `v` granted by default and update. `None`
/// when there are fewer than four letters or one is unknown.
pub fn parse_gcd(gcd: &str) -> Option<Gcd> {
    // The letters by bytes (a multi-byte character has no ASCII byte; white
    // space is no letter): `chars()` kept core's UTF-8 decoder in the
    // page's wasm.
    let mut letters = gcd
        .bytes()
        .filter(u8::is_ascii_alphabetic)
        .map(|b| GcdSignal::from_letter(char::from(b.to_ascii_lowercase())));
    Some(Gcd {
        ad_storage: letters.next()??,
        analytics_storage: letters.next()??,
        ad_user_data: letters.next()??,
        ad_personalization: letters.next()??,
    })
}
