//! Reading report batches: the typed side of the wire format, for the
//! collector (feature `read`).
//!
//! Each type here *is* its part of `docs/report.schema.json` (the
//! published contract): a field's type carries the schema's rule for it
//! (pattern, length, range, enum) and the collector's redaction rule for it
//! ([`Scrub`]), once. Parsing borrows from the body; a batch that parses is
//! a batch the schema accepts, and one that does not is explained with the
//! reason the schema's own validator gives ([`explain`]: the same wording,
//! the same place, the same order of checks), so the collector validates
//! without running a JSON Schema engine. `core/tests/wire.rs` holds the
//! types to the schema on the golden batch and on generated ones.
//!
//! Fields the schema does not define (a newer monitor) are kept, redacted,
//! in each object's [`Extra`]. A NUL character (U+0000) anywhere — value or
//! property name — is refused: PostgreSQL cannot store one in text, so
//! neither store does.
//!
//! The way in: [`parse`] (the fast path) → on failure [`explain`] (parse as
//! `serde_json::Value`, refuse NUL, then walk the schema's checks) → a
//! [`Violation`] the collector answers with 400.

// The core is no_std; this reader (the collector's) uses std's prelude.
use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::marker::PhantomData;
#[allow(unused_imports)]
use std::prelude::rust_2021::*;
#[allow(unused_imports)]
use std::{format, vec};

use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use super::{ConsentBasis, EvidenceKind, FindingType, HealthStatus, ReportType, SignalKind};
use crate::consent::{Category, Source};
use crate::redact::{error_name, redact_cookie_name_with, redact_text};
use crate::url::redact_path;

/// Reports per batch (`maxItems`).
pub const MAX_REPORTS: usize = 500;
/// Oldest `age` in ms: 7 days (`maximum`).
pub const MAX_AGE_MS: u64 = 604_800_000;
/// Vendors per inventory.
pub const MAX_VENDORS: usize = 200;
/// Unclassified hosts per inventory.
pub const MAX_UNCLASSIFIED: usize = 100;
/// Hosts and cookie names per inventory vendor.
pub const MAX_NAMES: usize = 50;
/// Regions per inventory vendor.
pub const MAX_REGIONS: usize = 10;

// ----------------------------------------------------------- refusals

/// Why a batch is refused: where (`item 0: body.finding`, `batch`) and
/// what, in the words of the schema's validator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The place: `batch`, `item N` or `item N: a.b.c`.
    pub place: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.place, self.message)
    }
}

/// A step of the path to a value: an array index or a property name.
#[derive(Debug, Clone)]
enum Seg {
    Index(usize),
    Key(String),
}

/// Where an explanation is in the batch (opaque outside this module).
#[doc(hidden)]
#[derive(Debug, Clone, Default)]
pub struct Path(Vec<Seg>);

impl Path {
    /// `item 0: body.evidence.host`; `batch` at the top. A path that does
    /// not start at a batch item (a legacy CSP report) is dotted.
    fn describe(&self) -> String {
        let mut segs = self.0.iter();
        let mut out = match segs.next() {
            None => return "batch".to_owned(),
            Some(Seg::Index(i)) => format!("item {i}"),
            Some(Seg::Key(k)) => k.clone(),
        };
        let first_is_item = matches!(self.0.first(), Some(Seg::Index(_)));
        for (n, seg) in segs.enumerate() {
            let sep = match (n, first_is_item) {
                (0, true) => ": ",
                _ => ".",
            };
            out.push_str(sep);
            match seg {
                Seg::Index(i) => {
                    let _ = write!(out, "{i}");
                }
                Seg::Key(k) => out.push_str(k),
            }
        }
        out
    }

    fn with<T>(&mut self, seg: Seg, f: impl FnOnce(&mut Self) -> T) -> T {
        self.0.push(seg);
        let out = f(self);
        self.0.pop();
        out
    }

    fn violation(&self, message: String) -> Violation {
        Violation {
            place: self.describe(),
            message,
        }
    }
}

/// What a value breaks, as the schema says it; rendered with the value.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Type(&'static str),
    Types(&'static [&'static str]),
    Enum(&'static [&'static str]),
    Const(u64),
    Minimum(u64),
    Maximum(u64),
    MaxLength(usize),
    Pattern(&'static str),
    MinItems(usize),
    MaxItems(usize),
}

/// How many enum values a message lists before "or N other candidates".
const ENUM_SHOWN: usize = 3;

impl Kind {
    /// The message the schema's validator gives for `v`.
    fn message(self, v: &Value) -> String {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        match self {
            Kind::Type(t) => format!("{v} is not of type \"{t}\""),
            Kind::Types(ts) => {
                let list: Vec<String> = ts.iter().map(|t| format!("\"{t}\"")).collect();
                format!("{v} is not of types {}", list.join(", "))
            }
            Kind::Enum(options) => {
                let quoted: Vec<String> = options.iter().map(|o| format!("\"{o}\"")).collect();
                let list = if quoted.len() <= ENUM_SHOWN {
                    match quoted.split_last() {
                        Some((last, rest)) if !rest.is_empty() => {
                            format!("{} or {last}", rest.join(", "))
                        }
                        _ => quoted.join(""),
                    }
                } else {
                    let shown = ENUM_SHOWN - 1;
                    format!(
                        "{} or {} other candidates",
                        quoted.get(..shown).unwrap_or(&[]).join(", "),
                        quoted.len() - shown
                    )
                };
                format!("{v} is not one of {list}")
            }
            Kind::Const(c) => format!("{c} was expected"),
            Kind::Minimum(m) => format!("{v} is less than the minimum of {m}"),
            Kind::Maximum(m) => format!("{v} is greater than the maximum of {m}"),
            Kind::MaxLength(n) => format!("{v} is longer than {}", plural(n, "character")),
            Kind::Pattern(p) => format!("{v} does not match \"{p}\""),
            Kind::MinItems(n) => format!("{v} has less than {}", plural(n, "item")),
            Kind::MaxItems(n) => format!("{v} has more than {}", plural(n, "item")),
        }
    }
}

/// A refusal of the fast path: its reason comes from [`explain`].
fn invalid<E: de::Error>() -> E {
    E::custom("not valid against the report schema")
}

/// What the fast path expects, for serde's messages (never shown).
struct Expecting(&'static str);

impl de::Expected for Expecting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

// -------------------------------------------------------------- types

/// A part of the wire: parsed (borrowing) by `Deserialize`, explained
/// against the schema by [`Wire::explain`], redacted by [`Scrub`].
pub trait Wire<'de>: Deserialize<'de> + Scrub {
    /// Why `v` is not valid here, `None` when it is.
    #[doc(hidden)]
    fn explain(v: &Value, path: &mut Path) -> Option<Violation>;
}

/// How the collector keeps a value: what `docs/collector.md` ("What is
/// stored of a report") says of each field, implemented by its type.
pub trait Scrub {
    /// Redacts in place.
    fn scrub(&mut self);
}

impl<T: Scrub> Scrub for Box<T> {
    fn scrub(&mut self) {
        (**self).scrub();
    }
}

impl<'de, T: Wire<'de>> Wire<'de> for Box<T> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        T::explain(v, path)
    }
}

impl<T: Scrub> Scrub for Option<T> {
    fn scrub(&mut self) {
        if let Some(v) = self {
            v.scrub();
        }
    }
}

/// What the collector does with a string field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Pinned by a pattern or an enum: as sent.
    AsSent,
    /// Free text: identifier-like words become `:id`.
    Text,
    /// A path: identifier-like segments become `:id`.
    Path,
    /// A cookie name: as sent when the catalog knows it (app and site ids
    /// are evidence; the monitor reports no other), else free text.
    CookieName,
    /// A health reason: an error name, or nothing.
    ErrorName,
}

/// The rule of a string field: `maxLength`, `pattern`, and how it is kept.
pub trait StrRule {
    /// `maxLength` in characters, if any.
    const MAX: Option<usize>;
    /// The schema's `pattern`, if any (for messages).
    const PATTERN: Option<&'static str>;
    /// How the collector keeps it.
    const KEEP: Keep;
    /// The pattern admits no character JSON escapes (`"`, `\\`, controls):
    /// written without looking.
    const PLAIN: bool = false;
    /// Whether `s` matches [`StrRule::PATTERN`].
    fn matches(_s: &str) -> bool {
        true
    }
}

/// A string of the wire, checked against its rule `R`.
pub struct Str<'a, R> {
    value: Cow<'a, str>,
    rule: PhantomData<R>,
}

impl<R> fmt::Debug for Str<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.value, f)
    }
}

/// Equal text (the rule is the type's).
impl<R> PartialEq for Str<'_, R> {
    fn eq(&self, other: &Self) -> bool {
        self.value == other.value
    }
}

impl<R> Clone for Str<'_, R> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            rule: PhantomData,
        }
    }
}

impl<'a, R> Str<'a, R> {
    /// The text (redacted once scrubbed).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.value.into_owned()
    }
}

impl<R> std::ops::Deref for Str<'_, R> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.value
    }
}

/// `s` checked against the string rule `R`.
fn check_str<R: StrRule>(s: &str) -> Result<(), Kind> {
    if let Some(max) = R::MAX {
        if s.len() > max && s.chars().count() > max {
            return Err(Kind::MaxLength(max));
        }
    }
    match R::PATTERN {
        Some(p) if !R::matches(s) => Err(Kind::Pattern(p)),
        _ => Ok(()),
    }
}

struct StrVisitor<'a, R>(PhantomData<(&'a (), R)>);

impl<'de: 'a, 'a, R: StrRule> Visitor<'de> for StrVisitor<'a, R> {
    type Value = Str<'a, R>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    /// A string without escapes, borrowed from the JSON text ([`parse`]):
    /// `serde_json` refuses a control character in a string as sent, so
    /// U+0000 can only come in as the escape `\u0000`, which makes the
    /// string owned (`visit_str`) and is looked for there. Not looking
    /// here is a fifth of the string checks of a batch (docs/benchmarks.md,
    /// "The HTTP workers' share"). The other deserializers of these types
    /// are owned `Value`s ([`explain`]), which hand strings over owned.
    fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
        checked::<R, E>(Cow::Borrowed(s), false)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
        checked::<R, E>(Cow::Owned(s.to_owned()), true)
    }

    fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
        checked::<R, E>(Cow::Owned(s), true)
    }
}

/// `value` checked against its rule, and for NUL when `may_hold_nul`.
fn checked<R: StrRule, E: de::Error>(
    value: Cow<'_, str>,
    may_hold_nul: bool,
) -> Result<Str<'_, R>, E> {
    if (may_hold_nul && has_nul_char(&value)) || check_str::<R>(&value).is_err() {
        return Err(invalid());
    }
    Ok(Str {
        value,
        rule: PhantomData,
    })
}

impl<'de: 'a, 'a, R: StrRule> Deserialize<'de> for Str<'a, R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(StrVisitor(PhantomData))
    }
}

impl<R: StrRule> Scrub for Str<'_, R> {
    fn scrub(&mut self) {
        match R::KEEP {
            Keep::AsSent | Keep::ErrorName => {}
            Keep::Text => {
                if let Cow::Owned(s) = redact_text(&self.value) {
                    self.value = Cow::Owned(s);
                }
            }
            Keep::CookieName => {
                if let Cow::Owned(s) = redact_cookie_name_with(&self.value, known_cookie) {
                    self.value = Cow::Owned(s);
                }
            }
            Keep::Path => {
                let redacted = redact_path(&self.value);
                if redacted != *self.value {
                    self.value = Cow::Owned(redacted);
                }
            }
        }
    }
}

impl<'de: 'a, 'a, R: StrRule> Wire<'de> for Str<'a, R> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        let kind = match v {
            Value::String(s) => check_str::<R>(s).err()?,
            _ => Kind::Type("string"),
        };
        Some(path.violation(kind.message(v)))
    }
}

/// Free text of at most `N` characters.
pub struct Text<const N: usize>;

impl<const N: usize> StrRule for Text<N> {
    const MAX: Option<usize> = Some(N);
    const PATTERN: Option<&'static str> = None;
    const KEEP: Keep = Keep::Text;
}

/// Whether the catalog knows the cookie name `name`: exactly
/// `catalog::classify_cookie(name).is_some()`, by an index built once.
/// `classify_cookie` walks every vendor's packed record to its cookie rules
/// (the page's code: small, not fast); for the golden batch's three cookie
/// names that was ≈ 50,000 instructions a batch, an eighth of the parse
/// (docs/benchmarks.md, "the parse", eleventh round). The index holds every
/// rule sorted by name, with where each first byte's run starts: a name is
/// compared with the few rules that start like it.
fn known_cookie(name: &str) -> bool {
    static INDEX: std::sync::OnceLock<CookieIndex> = std::sync::OnceLock::new();
    INDEX.get_or_init(CookieIndex::new).knows(name)
}

/// The catalog's cookie rules by name ([`known_cookie`]).
struct CookieIndex {
    /// (name, matched as a prefix), sorted.
    rules: Vec<(&'static str, bool)>,
    /// `rules[starts[b]..starts[b + 1]]`: the rules whose name starts with
    /// the byte `b`.
    starts: [usize; 257],
    /// A rule with an empty name (none in the catalog; its test says so)
    /// would match by no first byte: then every name goes the long way.
    has_empty: bool,
}

impl CookieIndex {
    fn new() -> Self {
        let mut rules: Vec<(&'static str, bool)> = crate::catalog::vendors()
            .iter()
            .flat_map(|v| v.cookies().map(|r| (r.name, r.prefix)))
            .collect();
        rules.sort_unstable();
        rules.dedup();
        let mut starts = [0; 257];
        for (b, start) in starts.iter_mut().enumerate() {
            *start = rules.partition_point(|(name, _)| {
                name.as_bytes().first().map_or(0, |&f| usize::from(f) + 1) <= b
            });
        }
        let has_empty = rules.iter().any(|(name, _)| name.is_empty());
        CookieIndex {
            rules,
            starts,
            has_empty,
        }
    }

    fn knows(&self, name: &str) -> bool {
        let Some(&first) = name.as_bytes().first() else {
            return crate::catalog::classify_cookie(name).is_some();
        };
        if self.has_empty {
            return crate::catalog::classify_cookie(name).is_some();
        }
        let b = usize::from(first);
        let (Some(&from), Some(&to)) = (self.starts.get(b), self.starts.get(b + 1)) else {
            return false; // b + 1 ≤ 256: always there
        };
        let candidates = self.rules.get(from..to).unwrap_or_default();
        candidates.iter().any(|&(rule, prefix)| {
            if prefix {
                name.len() > rule.len() && name.starts_with(rule)
            } else {
                name == rule
            }
        })
    }
}

/// A cookie name (`evidence.cookie`, an inventory's `cookies`): at most 256
/// characters, kept as [`Keep::CookieName`] says.
pub struct CookieNameRule;

impl StrRule for CookieNameRule {
    const MAX: Option<usize> = Some(256);
    const PATTERN: Option<&'static str> = None;
    const KEEP: Keep = Keep::CookieName;
}

macro_rules! pinned {
    ($(#[$m:meta])* $name:ident, $max:expr, $pattern:literal, $keep:expr, $plain:expr, $matches:expr) => {
        $(#[$m])*
        pub struct $name;

        impl StrRule for $name {
            const MAX: Option<usize> = $max;
            const PATTERN: Option<&'static str> = Some($pattern);
            const KEEP: Keep = $keep;
            const PLAIN: bool = $plain;
            fn matches(s: &str) -> bool {
                let f: fn(&str) -> bool = $matches;
                f(s)
            }
        }
    };
}

pinned!(
    /// `siteKey`.
    SiteKeyRule, None, "^[A-Za-z0-9_-]{1,64}$", Keep::AsSent, true,
    |s| (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
);
pinned!(
    /// `pageView`.
    PageViewRule, None, "^[0-9a-f]{16}$", Keep::AsSent, true,
    |s| s.len() == 16 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
);
pinned!(
    /// A vendor id.
    VendorRule, None, "^[a-z0-9_-]{1,64}$", Keep::AsSent, true,
    |s| (1..=64).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
);
pinned!(
    /// A host name.
    HostRule, Some(253), "^[a-z0-9.:\\[\\]-]*$", Keep::AsSent, true,
    |s| s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b".:[]-".contains(&b))
);
pinned!(
    /// `evidence.path`: redacted again.
    PathRule, Some(512), "^/[^?#]*$", Keep::Path, false,
    |s| s.starts_with('/') && !s.bytes().any(|b| b == b'?' || b == b'#')
);
pinned!(
    /// `pageUrl`: the collector reads it as a browser does.
    PageUrlRule, Some(2048), "^https?://[^?#]*$", Keep::AsSent, false,
    |s| (s.starts_with("http://") || s.starts_with("https://")) && !s.bytes().any(|b| b == b'?' || b == b'#')
);

pinned!(
    /// `release`: the site's own text, kept as sent (the site chose it; it
    /// names a build, not a visitor), without control characters
    /// (`report::release`).
    ReleaseRule, Some(super::MAX_RELEASE), "^[^\\x00-\\x1f\\x7f-\\x9f]+$", Keep::AsSent, false,
    |s| !s.is_empty() && !super::has_control(s)
);

/// A health report's `reason`: kept only when it is an error name.
pub struct ReasonRule;

impl StrRule for ReasonRule {
    const MAX: Option<usize> = Some(200);
    const PATTERN: Option<&'static str> = None;
    const KEEP: Keep = Keep::ErrorName;
}

/// A site key.
pub type SiteKey<'a> = Str<'a, SiteKeyRule>;
/// A page view id: 16 hex characters.
pub type PageView<'a> = Str<'a, PageViewRule>;
/// A catalog vendor id.
pub type VendorId<'a> = Str<'a, VendorRule>;
/// A host name, lower case.
pub type Host<'a> = Str<'a, HostRule>;
/// A redacted path.
pub type UrlPath<'a> = Str<'a, PathRule>;
/// A page URL without query or fragment.
pub type PageUrl<'a> = Str<'a, PageUrlRule>;
/// The site's release.
pub type Release<'a> = Str<'a, ReleaseRule>;

/// An error name, or `None` once scrubbed if it was not one.
#[derive(Debug, Clone, PartialEq)]
pub struct Reason<'a>(Option<Str<'a, ReasonRule>>);

impl Reason<'_> {
    /// The reason kept, if any.
    pub fn as_str(&self) -> Option<&str> {
        self.0.as_deref()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Reason<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Str::deserialize(d).map(|s| Reason(Some(s)))
    }
}

impl Scrub for Reason<'_> {
    fn scrub(&mut self) {
        if self.0.as_deref().and_then(error_name).is_none() {
            self.0 = None;
        }
    }
}

impl<'de: 'a, 'a> Wire<'de> for Reason<'a> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        Str::<ReasonRule>::explain(v, path)
    }
}

/// A JSON Schema `integer` from `MIN` to `MAX` (`u64::MAX`: no maximum);
/// `1.0` and `1e3` are integers too. Kept as `u64`, saturating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Int<const MIN: u64, const MAX: u64>(pub u64);

impl<const MIN: u64, const MAX: u64> Int<MIN, MAX> {
    /// `n` checked: `Err` says why not, in the schema's order (type,
    /// minimum, maximum).
    fn check(n: Num) -> Result<u64, Kind> {
        #[allow(clippy::cast_precision_loss)]
        let (min, max) = (MIN as f64, MAX as f64);
        let bounded = MAX != u64::MAX;
        let value = match n {
            Num::U(u) => u,
            // Below any minimum (they are all 0 or more).
            Num::I(i) => u64::try_from(i).map_err(|_| Kind::Minimum(MIN))?,
            Num::F(f) if !f.is_finite() || f.fract() != 0.0 => return Err(Kind::Type("integer")),
            Num::F(f) if f < min => return Err(Kind::Minimum(MIN)),
            Num::F(f) if bounded && f > max => return Err(Kind::Maximum(MAX)),
            // `as` saturates (and reads -0.0 as 0).
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            Num::F(f) => f as u64,
        };
        if value < MIN {
            return Err(Kind::Minimum(MIN));
        }
        if bounded && value > MAX {
            return Err(Kind::Maximum(MAX));
        }
        Ok(value)
    }
}

/// A JSON number as serde hands it over.
#[derive(Debug, Clone, Copy)]
enum Num {
    U(u64),
    I(i64),
    F(f64),
}

impl Num {
    fn of(n: &serde_json::Number) -> Self {
        match (n.as_u64(), n.as_i64()) {
            (Some(u), _) => Num::U(u),
            (_, Some(i)) => Num::I(i),
            _ => Num::F(n.as_f64().unwrap_or(f64::NAN)),
        }
    }
}

struct IntVisitor<const MIN: u64, const MAX: u64>;

impl<const MIN: u64, const MAX: u64> IntVisitor<MIN, MAX> {
    fn num<E: de::Error>(n: Num) -> Result<Int<MIN, MAX>, E> {
        Int::<MIN, MAX>::check(n).map(Int).map_err(|_| invalid())
    }
}

impl<'de, const MIN: u64, const MAX: u64> Visitor<'de> for IntVisitor<MIN, MAX> {
    type Value = Int<MIN, MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Self::num(Num::U(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Self::num(Num::I(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        Self::num(Num::F(v))
    }
}

impl<'de, const MIN: u64, const MAX: u64> Deserialize<'de> for Int<MIN, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IntVisitor)
    }
}

impl<const MIN: u64, const MAX: u64> Scrub for Int<MIN, MAX> {
    fn scrub(&mut self) {}
}

impl<'de, const MIN: u64, const MAX: u64> Wire<'de> for Int<MIN, MAX> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        let kind = match v {
            Value::Number(n) => Self::check(Num::of(n)).err()?,
            _ => Kind::Type("integer"),
        };
        Some(path.violation(kind.message(v)))
    }
}

/// `age`: ms between the observation and the send.
pub type Age = Int<0, MAX_AGE_MS>;
/// A non-negative integer without maximum (`at`, `since`, `days`, usage).
pub type Count = Int<0, { u64::MAX }>;
/// `count`: at least 1.
pub type Times = Int<1, { u64::MAX }>;

/// `schema`: the constant 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SchemaVersion;

impl SchemaVersion {
    fn is_one(n: Num) -> bool {
        match n {
            Num::U(u) => u == 1,
            Num::I(i) => i == 1,
            Num::F(f) => f == 1.0,
        }
    }
}

struct SchemaVisitor;

impl<'de> Visitor<'de> for SchemaVisitor {
    type Value = SchemaVersion;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("1")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<SchemaVersion, E> {
        SchemaVersion::is_one(Num::U(v))
            .then_some(SchemaVersion)
            .ok_or_else(invalid)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<SchemaVersion, E> {
        SchemaVersion::is_one(Num::I(v))
            .then_some(SchemaVersion)
            .ok_or_else(invalid)
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<SchemaVersion, E> {
        SchemaVersion::is_one(Num::F(v))
            .then_some(SchemaVersion)
            .ok_or_else(invalid)
    }
}

impl<'de> Deserialize<'de> for SchemaVersion {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SchemaVisitor)
    }
}

impl Scrub for SchemaVersion {
    fn scrub(&mut self) {}
}

impl<'de> Wire<'de> for SchemaVersion {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        match v {
            Value::Number(n) if Self::is_one(Num::of(n)) => None,
            _ => Some(path.violation(Kind::Const(u64::from(super::SCHEMA)).message(v))),
        }
    }
}

/// A consent category state: `true`, `false` or `null` (unknown).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Tristate(pub Option<bool>);

struct TristateVisitor;

impl<'de> Visitor<'de> for TristateVisitor {
    type Value = Tristate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a boolean or null")
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Tristate, E> {
        Ok(Tristate(Some(v)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Tristate, E> {
        Ok(Tristate(None))
    }

    fn visit_none<E: de::Error>(self) -> Result<Tristate, E> {
        Ok(Tristate(None))
    }
}

impl<'de> Deserialize<'de> for Tristate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(TristateVisitor)
    }
}

impl Scrub for Tristate {
    fn scrub(&mut self) {}
}

impl<'de> Wire<'de> for Tristate {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        match v {
            Value::Bool(_) | Value::Null => None,
            // The validator names the types in its own order, not the schema's.
            _ => Some(path.violation(Kind::Types(&["null", "boolean"]).message(v))),
        }
    }
}

impl Scrub for bool {
    fn scrub(&mut self) {}
}

impl<'de> Wire<'de> for bool {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        match v {
            Value::Bool(_) => None,
            _ => Some(path.violation(Kind::Type("boolean").message(v))),
        }
    }
}

/// An enum of wire names, read from a string.
macro_rules! wire_enum_read {
    ($name:ident, $names:expr) => {
        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V;
                impl<'de> Visitor<'de> for V {
                    type Value = $name;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a wire name")
                    }
                    fn visit_str<E: de::Error>(self, s: &str) -> Result<$name, E> {
                        $name::parse(s).ok_or_else(|| {
                            E::invalid_value(de::Unexpected::Str(s), &Expecting("a wire name"))
                        })
                    }
                }
                d.deserialize_str(V)
            }
        }

        impl Scrub for $name {
            fn scrub(&mut self) {}
        }

        impl<'de> Wire<'de> for $name {
            fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
                match v {
                    Value::String(s) if $name::parse(s).is_some() => None,
                    _ => Some(path.violation(Kind::Enum($names).message(v))),
                }
            }
        }
    };
}

wire_enum_read!(FindingType, FindingType::NAMES);
wire_enum_read!(ReportType, ReportType::NAMES);
wire_enum_read!(EvidenceKind, EvidenceKind::NAMES);
wire_enum_read!(SignalKind, SignalKind::NAMES);
wire_enum_read!(HealthStatus, HealthStatus::NAMES);
wire_enum_read!(ConsentBasis, ConsentBasis::NAMES);

impl Scrub for Category {
    fn scrub(&mut self) {}
}

impl<'de> Wire<'de> for Category {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        const NAMES: [&str; 4] = ["necessary", "functional", "analytics", "marketing"];
        match v {
            Value::String(s) if Category::parse(s).is_some() => None,
            _ => Some(path.violation(Kind::Enum(&NAMES).message(v))),
        }
    }
}

/// `consent.source`: who set the state. A name the monitor uses
/// (`default`, `api`, `tcf`, `gpp`, a CMP id), or any other text of at
/// most 32 characters (a newer monitor), kept redacted.
#[derive(Debug, Clone, PartialEq)]
pub enum ConsentSource<'a> {
    /// A known source.
    Known(Source),
    /// Anything else.
    Other(Str<'a, Text<32>>),
}

impl ConsentSource<'_> {
    /// The wire name (redacted, once scrubbed).
    pub fn as_str(&self) -> &str {
        match self {
            ConsentSource::Known(s) => s.as_str(),
            ConsentSource::Other(s) => s,
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for ConsentSource<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = Str::<Text<32>>::deserialize(d)?;
        Ok(match Source::parse(&s) {
            Some(known) => ConsentSource::Known(known),
            None => ConsentSource::Other(s),
        })
    }
}

impl Scrub for ConsentSource<'_> {
    fn scrub(&mut self) {
        if let ConsentSource::Other(s) = self {
            s.scrub();
        }
    }
}

impl<'de: 'a, 'a> Wire<'de> for ConsentSource<'a> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        Str::<Text<32>>::explain(v, path)
    }
}

/// An array of at most `MAX` items.
#[derive(Debug, Clone, PartialEq)]
pub struct List<T, const MAX: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for List<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_seq(ListVisitor::new(0))
    }
}

/// Reads a [`List`]: its items into a vector with room for `room` from the
/// start when the format does not say how many (JSON does not).
struct ListVisitor<T, const MAX: usize> {
    room: usize,
    items: PhantomData<T>,
}

impl<T, const MAX: usize> ListVisitor<T, MAX> {
    fn new(room: usize) -> Self {
        Self {
            room,
            items: PhantomData,
        }
    }
}

impl<'de, T: Deserialize<'de>, const MAX: usize> Visitor<'de> for ListVisitor<T, MAX> {
    type Value = List<T, MAX>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(self.room).min(MAX));
        while let Some(item) = seq.next_element()? {
            if items.len() == MAX {
                return Err(invalid());
            }
            items.push(item);
        }
        Ok(List(items))
    }
}

impl<T: Scrub, const MAX: usize> Scrub for List<T, MAX> {
    fn scrub(&mut self) {
        self.0.iter_mut().for_each(Scrub::scrub);
    }
}

impl<'de, T: Wire<'de>, const MAX: usize> Wire<'de> for List<T, MAX> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        let Value::Array(items) = v else {
            return Some(path.violation(Kind::Type("array").message(v)));
        };
        if items.len() > MAX {
            return Some(path.violation(Kind::MaxItems(MAX).message(v)));
        }
        items.iter().enumerate().find_map(|(i, item)| {
            path.0.push(Seg::Index(i));
            let found = T::explain(item, path);
            path.0.pop();
            found
        })
    }
}

/// Properties an object carries that the schema does not define (a newer
/// monitor): kept, every string and property name redacted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Extra(pub Map<String, Value>);

impl Extra {
    fn insert(&mut self, key: String, value: Value) {
        self.0.insert(key, value);
    }
}

impl Scrub for Extra {
    fn scrub(&mut self) {
        if self.0.is_empty() {
            return;
        }
        let mut value = Value::Object(std::mem::take(&mut self.0));
        scrub_value(&mut value);
        if let Value::Object(map) = value {
            self.0 = map;
        }
    }
}

/// Every string and property name of `v` as free text.
fn scrub_value(v: &mut Value) {
    match v {
        Value::String(s) => {
            let redacted = match redact_text(s) {
                Cow::Owned(r) => Some(r),
                Cow::Borrowed(_) => None,
            };
            if let Some(r) = redacted {
                *s = r;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(scrub_value),
        Value::Object(map) => {
            let taken = std::mem::take(map);
            for (key, mut value) in taken {
                scrub_value(&mut value);
                map.insert(redact_text(&key).into_owned(), value);
            }
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Whether `s` holds a NUL character (U+0000). By bytes: in UTF-8 the NUL
/// byte is that character and no other's part, and a byte search is a
/// `memchr` where a `char` pattern decodes every character: every string of
/// every report goes through here (docs/benchmarks.md, "The collector's body
/// parse").
fn has_nul_char(s: &str) -> bool {
    s.as_bytes().contains(&0)
}

/// Whether a JSON value holds a NUL character in any string or name.
fn has_nul(v: &Value) -> bool {
    match v {
        Value::String(s) => has_nul_char(s),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map.iter().any(|(k, v)| has_nul_char(k) || has_nul(v)),
        Value::Null | Value::Bool(_) | Value::Number(_) => false,
    }
}

/// A property name: borrowed when it can be.
struct Key<'a>(Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Key<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Key<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a property name")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Key<'a>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// Reads an unknown property's value into `extra`, refusing NUL.
fn keep_unknown<'de, A: MapAccess<'de>>(
    map: &mut A,
    key: Cow<'_, str>,
    extra: &mut Extra,
) -> Result<(), A::Error> {
    let value: Value = map.next_value()?;
    if has_nul_char(&key) || has_nul(&value) {
        return Err(invalid());
    }
    extra.insert(key.into_owned(), value);
    Ok(())
}

// ---------------------------------------------------------- canonical

/// JSON text of a value as the collector stores it: compact, object keys
/// sorted at every level (equal evidence is equal text: it is part of the
/// dedupe key), strings escaped as `serde_json` escapes them.
pub trait Canonical {
    /// Appends the JSON text.
    fn write_json(&self, out: &mut String);

    /// The JSON text.
    fn to_json(&self) -> String {
        let mut out = String::with_capacity(256);
        self.write_json(&mut out);
        out
    }
}

/// Appends `s` as a JSON string, escaped as `serde_json` does (`\b`,
/// `\t`, `\n`, `\f`, `\r`, `\"`, `\\`, other controls as `\u00xx`).
/// By hand because it appends to the `String` being built: `serde_json`
/// writes to `io::Write` only, and its bytes would need checking as UTF-8
/// again (every stored string goes through here; tested against it).
pub fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.reserve(s.len() + 2);
    out.push('"');
    let mut rest = s;
    // Bytes, not chars: every byte that needs an escape is ASCII, so the
    // runs between them split on character boundaries. A table: the
    // collector writes every stored string through here.
    #[allow(clippy::indexing_slicing)] // Compile-time only.
    const ESCAPED: [bool; 256] = {
        let mut t = [false; 256];
        let mut b = 0;
        while b < 0x20 {
            t[b] = true;
            b += 1;
        }
        t[b'"' as usize] = true;
        t[b'\\' as usize] = true;
        t
    };
    while let Some(i) = rest
        .bytes()
        .position(|b| ESCAPED.get(usize::from(b)) == Some(&true))
    {
        let (run, tail) = rest.split_at(i);
        out.push_str(run);
        let b = tail.as_bytes().first().copied().unwrap_or(b' ');
        match b {
            0x08 => out.push_str("\\b"),
            b'\t' => out.push_str("\\t"),
            b'\n' => out.push_str("\\n"),
            0x0c => out.push_str("\\f"),
            b'\r' => out.push_str("\\r"),
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            _ => {
                out.push_str("\\u00");
                for nibble in [b >> 4, b & 15] {
                    out.push(char::from(
                        HEX.get(usize::from(nibble)).copied().unwrap_or(b'0'),
                    ));
                }
            }
        }
        rest = tail.get(1..).unwrap_or("");
    }
    out.push_str(rest);
    out.push('"');
}

impl<R: StrRule> Canonical for Str<'_, R> {
    fn write_json(&self, out: &mut String) {
        if R::PLAIN {
            out.push('"');
            out.push_str(&self.value);
            out.push('"');
        } else {
            push_json_str(out, &self.value);
        }
    }
}

/// Appends `n` in decimal (without the formatting machinery: the collector
/// writes several per report).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            // `n % 10` is a digit.
            *d = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    for d in digits.get(i..).unwrap_or(&[]) {
        out.push(char::from(*d));
    }
}

impl<const MIN: u64, const MAX: u64> Canonical for Int<MIN, MAX> {
    fn write_json(&self, out: &mut String) {
        push_u64(out, self.0);
    }
}

impl Canonical for SchemaVersion {
    fn write_json(&self, out: &mut String) {
        push_u64(out, u64::from(super::SCHEMA));
    }
}

impl Canonical for Tristate {
    fn write_json(&self, out: &mut String) {
        out.push_str(match self.0 {
            Some(true) => "true",
            Some(false) => "false",
            None => "null",
        });
    }
}

impl Canonical for bool {
    fn write_json(&self, out: &mut String) {
        out.push_str(if *self { "true" } else { "false" });
    }
}

impl Canonical for Reason<'_> {
    fn write_json(&self, out: &mut String) {
        match self.as_str() {
            Some(s) => push_json_str(out, s),
            None => out.push_str("null"),
        }
    }
}

impl Canonical for ConsentSource<'_> {
    fn write_json(&self, out: &mut String) {
        push_json_str(out, self.as_str());
    }
}

macro_rules! canonical_enum {
    ($($name:ty),*) => {$(
        impl Canonical for $name {
            fn write_json(&self, out: &mut String) {
                push_json_str(out, self.as_str());
            }
        }
    )*};
}

canonical_enum!(
    FindingType,
    ReportType,
    EvidenceKind,
    SignalKind,
    HealthStatus,
    ConsentBasis,
    Category
);

impl<T: Canonical> Canonical for Box<T> {
    fn write_json(&self, out: &mut String) {
        (**self).write_json(out);
    }
}

impl<T: Canonical, const MAX: usize> Canonical for List<T, MAX> {
    fn write_json(&self, out: &mut String) {
        write_array(out, &self.0);
    }
}

impl<T: Canonical, const MAX: usize> Canonical for Entries<T, MAX> {
    fn write_json(&self, out: &mut String) {
        write_array(out, &self.0);
    }
}

fn write_array<T: Canonical>(out: &mut String, items: &[T]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        item.write_json(out);
    }
    out.push(']');
}

impl Canonical for Value {
    /// `serde_json`'s own text: its maps are sorted by key.
    fn write_json(&self, out: &mut String) {
        let _ = write!(out, "{self}");
    }
}

/// Whether `a` sorts before `b` by bytes (what `Ord for str` does), at
/// compile time.
const fn str_before(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        // Compile-time only: an index out of bounds is a build error.
        #[allow(clippy::indexing_slicing)]
        let (x, y) = (a[i], b[i]);
        if x != y {
            return x < y;
        }
        i += 1;
    }
    a.len() < b.len()
}

/// The indexes of `names` in sorted order, computed at compile time, so
/// that an object's properties are written sorted without sorting them.
#[allow(clippy::indexing_slicing)] // Compile-time only: bounds are checked by the build.
const fn sorted_order<const N: usize>(names: [&str; N]) -> [usize; N] {
    let mut order = [0; N];
    let mut i = 0;
    while i < N {
        order[i] = i;
        i += 1;
    }
    let mut i = 1;
    while i < N {
        let mut j = i;
        while j > 0 && str_before(names[order[j]], names[order[j - 1]]) {
            let t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
            j -= 1;
        }
        i += 1;
    }
    order
}

/// A property whose JSON text was already written (reused, not rewritten).
struct Written<'x>(&'x str);

impl Canonical for Written<'_> {
    fn write_json(&self, out: &mut String) {
        out.push_str(self.0);
    }
}

/// Writes an object: its known properties (`known`, present ones `Some`)
/// in the sorted `order`, merged with the unknown ones (already sorted);
/// `given` replaces a known property's value with JSON text already
/// written.
fn write_merged(
    out: &mut String,
    known: &[(&str, Option<&dyn Canonical>)],
    order: &[usize],
    extra: &Extra,
    given: &[(&str, &str)],
) {
    out.push('{');
    let mut first = true;
    // `plain`: a known property's name, a Rust identifier, which needs no
    // escaping (written without looking); an unknown one is escaped.
    let mut member = |out: &mut String, key: &str, plain: bool, value: &dyn Canonical| {
        if !std::mem::take(&mut first) {
            out.push(',');
        }
        if plain {
            out.push('"');
            out.push_str(key);
            out.push('"');
        } else {
            push_json_str(out, key);
        }
        out.push(':');
        value.write_json(out);
    };
    let mut extras = extra.0.iter().peekable();
    for (name, value) in order.iter().filter_map(|i| known.get(*i)) {
        let Some(value) = value else { continue };
        while let Some((key, v)) = extras.next_if(|(key, _)| key.as_str() < *name) {
            member(out, key, false, v);
        }
        match given.iter().find(|(n, _)| n == name) {
            Some((_, text)) => member(out, name, true, &Written(text)),
            None => member(out, name, true, *value),
        }
    }
    for (key, v) in extras {
        member(out, key, false, v);
    }
    out.push('}');
}

// ------------------------------------------------------------ objects

/// An object of the wire, written once: its fields with their types (which
/// carry their rules), which are required (in the schema's `required`
/// order), and unknown properties kept in `extra`. Generates the struct,
/// its fast `Deserialize` (later duplicates win, as in JSON values), its
/// `explain` (type, then required, then each property in name order, as
/// the schema's validator checks), and its `Scrub`.
macro_rules! wire_object {
    (
        $(#[$m:meta])*
        pub struct $name:ident $(<$lt:lifetime>)? {
            $(
                $(#[$fm:meta])*
                $field:ident : $ty:ty = $req:ident,
            )*
        }
    ) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name $(<$lt>)? {
            $(
                $(#[$fm])*
                #[allow(missing_docs)] // The schema property of that name (docs/report-format.md).
                pub $field: wire_object!(@ty $req $ty),
            )*
            /// Properties the schema does not define.
            pub extra: Extra,
        }

        impl<'de $(: $lt, $lt)?> Deserialize<'de> for $name $(<$lt>)? {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                struct V $(<$lt>)? (PhantomData<$name $(<$lt>)?>);
                impl<'de $(: $lt, $lt)?> Visitor<'de> for V $(<$lt>)? {
                    type Value = $name $(<$lt>)?;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str(stringify!($name))
                    }
                    #[allow(non_snake_case)]
                    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                        $(let mut $field: Option<$ty> = None;)*
                        let mut extra = Extra::default();
                        while let Some(Key(key)) = map.next_key()? {
                            match &*key {
                                $(stringify!($field) => $field = Some(map.next_value()?),)*
                                _ => keep_unknown(&mut map, key, &mut extra)?,
                            }
                        }
                        Ok($name {
                            $($field: wire_object!(@take $req $field),)*
                            extra,
                        })
                    }
                }
                d.deserialize_map(V(PhantomData))
            }
        }

        impl $(<$lt>)? Scrub for $name $(<$lt>)? {
            fn scrub(&mut self) {
                $(self.$field.scrub();)*
                self.extra.scrub();
            }
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// The property names, in declaration order.
            const NAMES: [&'static str; [$(stringify!($field)),*].len()] = [$(stringify!($field)),*];
            /// Their order by name.
            const ORDER: [usize; [$(stringify!($field)),*].len()] = sorted_order(Self::NAMES);

            /// [`Canonical::write_json`], with the JSON text of some
            /// properties already written (`(name, text)`): reused.
            pub fn write_json_with(&self, out: &mut String, given: &[(&str, &str)]) {
                let known: [(&str, Option<&dyn Canonical>); [$(stringify!($field)),*].len()] =
                    [$((stringify!($field), wire_object!(@some $req self.$field))),*];
                write_merged(out, &known, &Self::ORDER, &self.extra, given);
            }
        }

        impl $(<$lt>)? Canonical for $name $(<$lt>)? {
            fn write_json(&self, out: &mut String) {
                self.write_json_with(out, &[]);
            }
        }

        impl $(<$lt>)? $name $(<$lt>)? {
            /// The schema's `required` of this object, in its order.
            const REQUIRED: &'static [&'static str] = &[$(wire_object!(@name $req $field),)*];

            /// Explains the property `key` of value `v`, if it is one of
            /// `names`.
            fn explain_field(key: &str, v: &Value, path: &mut Path) -> Option<Violation> {
                match key {
                    $(stringify!($field) => <$ty as Wire<'_>>::explain(v, path),)*
                    _ => None,
                }
            }
        }

        impl<'de $(: $lt, $lt)?> Wire<'de> for $name $(<$lt>)? {
            fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
                let required: Vec<&str> = Self::REQUIRED.iter().copied().filter(|n| !n.is_empty()).collect();
                explain_object(v, path, &[(&required, &|k, v, p| Self::explain_field(k, v, p))])
            }
        }
    };
    (@ty req $ty:ty) => { $ty };
    (@ty opt $ty:ty) => { Option<$ty> };
    (@take req $field:ident) => { $field.ok_or_else(invalid)? };
    (@take opt $field:ident) => { $field };
    (@name req $field:ident) => { stringify!($field) };
    (@some req $value:expr) => { Some(&$value as &dyn Canonical) };
    (@some opt $value:expr) => { $value.as_ref().map(|v| v as &dyn Canonical) };
    (@name opt $field:ident) => { "" };
}

/// Explains the property of one part of an object.
type FieldExplainer<'x> = &'x dyn Fn(&str, &Value, &mut Path) -> Option<Violation>;

/// The checks of an object schema, part after part (an `allOf`): type
/// `object`, then each part's `required` in order, then its properties in
/// name order.
fn explain_object(
    v: &Value,
    path: &mut Path,
    parts: &[(&[&str], FieldExplainer<'_>)],
) -> Option<Violation> {
    let Value::Object(map) = v else {
        return Some(path.violation(Kind::Type("object").message(v)));
    };
    for (required, field) in parts {
        if let Some(missing) = required.iter().find(|n| !map.contains_key(**n)) {
            return Some(path.violation(format!("\"{missing}\" is a required property")));
        }
        let found = map
            .iter()
            .find_map(|(key, value)| path.with(Seg::Key(key.clone()), |p| field(key, value, p)));
        if found.is_some() {
            return found;
        }
    }
    None
}

wire_object! {
    /// What a finding was seen on (`$defs.evidence`): one flat object for
    /// every kind, as the schema has it.
    pub struct Evidence<'a> {
        kind: EvidenceKind = req,
        host: Host<'a> = opt,
        path: UrlPath<'a> = opt,
        initiator: Str<'a, Text<32>> = opt,
        frame: Str<'a, Text<64>> = opt,
        cookie: Str<'a, CookieNameRule> = opt,
        name: Str<'a, Text<128>> = opt,
        purpose: Str<'a, Text<32>> = opt,
        days: Count = opt,
        region: Str<'a, Text<16>> = opt,
        signal: SignalKind = opt,
        claimed: Str<'a, Text<32>> = opt,
    }
}

wire_object! {
    /// The consent state a decision was made on (`$defs.consent`).
    pub struct Consent<'a> {
        necessary: Tristate = req,
        functional: Tristate = req,
        analytics: Tristate = req,
        marketing: Tristate = req,
        source: ConsentSource<'a> = opt,
        since: Count = opt,
        basis: ConsentBasis = opt,
        vendor: bool = opt,
        gpc: bool = opt,
    }
}

wire_object! {
    /// A `tagwatch-finding` body (`$defs.findingBody`).
    pub struct FindingBody<'a> {
        schema: SchemaVersion = req,
        site: SiteKey<'a> = req,
        page_view: PageView<'a> = req,
        finding: FindingType = req,
        vendor: VendorId<'a> = req,
        at: Count = req,
        // Boxed: an `Evidence` is half of a finding's body (264 of 496
        // bytes), which is moved four times between the parser and the
        // list of reports (docs/benchmarks.md, "The HTTP workers' share").
        evidence: Box<Evidence<'a>> = req,
        consent: Consent<'a> = req,
        count: Times = opt,
        category: Category = opt,
        release: Release<'a> = opt,
    }
}

wire_object! {
    /// A `tagwatch-health` body (`$defs.healthBody`).
    pub struct HealthBody<'a> {
        schema: SchemaVersion = req,
        site: SiteKey<'a> = req,
        status: HealthStatus = req,
        page_view: PageView<'a> = opt,
        reason: Reason<'a> = opt,
        release: Release<'a> = opt,
    }
}

/// Usage numbers of one vendor or host in one page view (`$defs.usage`).
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageIn {
    /// Resource Timing entries.
    pub requests: Count,
    /// Of them, scripts.
    pub script_requests: Count,
    /// Sum of `transferSize`.
    pub transfer_bytes: Count,
    /// Sum of `encodedBodySize`.
    pub encoded_bytes: Count,
    /// Sum of durations.
    pub duration_ms: Count,
}

wire_object! {
    /// One vendor of an inventory: `$defs.usage` and the vendor's names.
    pub struct InventoryVendor<'a> {
        requests: Count = req,
        vendor: VendorId<'a> = req,
        hosts: List<Host<'a>, MAX_NAMES> = req,
        script_requests: Count = opt,
        transfer_bytes: Count = opt,
        encoded_bytes: Count = opt,
        duration_ms: Count = opt,
        regions: List<Str<'a, Text<16>>, MAX_REGIONS> = opt,
        cookies: List<Str<'a, CookieNameRule>, MAX_NAMES> = opt,
    }
}

wire_object! {
    /// One unclassified host of an inventory: `$defs.usage` and the host.
    pub struct InventoryHost<'a> {
        requests: Count = req,
        host: Host<'a> = req,
        script_requests: Count = opt,
        transfer_bytes: Count = opt,
        encoded_bytes: Count = opt,
        duration_ms: Count = opt,
    }
}

/// The `$defs.usage` properties, checked before the entry's own (the
/// schema's `allOf` order).
const USAGE: [&str; 5] = [
    "duration_ms",
    "encoded_bytes",
    "requests",
    "script_requests",
    "transfer_bytes",
];

fn usage_part(key: &str) -> bool {
    USAGE.contains(&key)
}

/// A vendor's and a host's inventory entries: their usage numbers (absent
/// ones 0), and the schema's checks of an entry split in two, the usage
/// fields and the entry's own (`OWN`).
macro_rules! usage_entry {
    ($ty:ident, $own:expr) => {
        impl $ty<'_> {
            /// Its usage numbers (absent ones 0).
            pub fn usage(&self) -> UsageIn {
                UsageIn {
                    requests: self.requests,
                    script_requests: self.script_requests.unwrap_or(Int(0)),
                    transfer_bytes: self.transfer_bytes.unwrap_or(Int(0)),
                    encoded_bytes: self.encoded_bytes.unwrap_or(Int(0)),
                    duration_ms: self.duration_ms.unwrap_or(Int(0)),
                }
            }

            fn explain_entry(v: &Value, path: &mut Path) -> Option<Violation> {
                let usage = |k: &str, v: &Value, p: &mut Path| {
                    if usage_part(k) {
                        Self::explain_field(k, v, p)
                    } else {
                        None
                    }
                };
                let own = |k: &str, v: &Value, p: &mut Path| {
                    if usage_part(k) {
                        None
                    } else {
                        Self::explain_field(k, v, p)
                    }
                };
                explain_object(v, path, &[(&["requests"], &usage), ($own, &own)])
            }
        }
    };
}
usage_entry!(InventoryVendor, &["vendor", "hosts"]);
usage_entry!(InventoryHost, &["host"]);

/// An inventory entry list, explained entry by entry in `allOf` order.
#[derive(Debug, Clone, PartialEq)]
pub struct Entries<T, const MAX: usize>(pub Vec<T>);

impl<'de, T: Deserialize<'de>, const MAX: usize> Deserialize<'de> for Entries<T, MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        List::<T, MAX>::deserialize(d).map(|l| Entries(l.0))
    }
}

impl<T: Scrub, const MAX: usize> Scrub for Entries<T, MAX> {
    fn scrub(&mut self) {
        self.0.iter_mut().for_each(Scrub::scrub);
    }
}

/// An inventory entry type and its explanation.
pub trait Entry {
    #[doc(hidden)]
    fn explain_entry(v: &Value, path: &mut Path) -> Option<Violation>;
}

impl Entry for InventoryVendor<'_> {
    fn explain_entry(v: &Value, path: &mut Path) -> Option<Violation> {
        InventoryVendor::explain_entry(v, path)
    }
}

impl Entry for InventoryHost<'_> {
    fn explain_entry(v: &Value, path: &mut Path) -> Option<Violation> {
        InventoryHost::explain_entry(v, path)
    }
}

impl<'de, T: Deserialize<'de> + Scrub + Entry, const MAX: usize> Wire<'de> for Entries<T, MAX> {
    fn explain(v: &Value, path: &mut Path) -> Option<Violation> {
        let Value::Array(items) = v else {
            return Some(path.violation(Kind::Type("array").message(v)));
        };
        if items.len() > MAX {
            return Some(path.violation(Kind::MaxItems(MAX).message(v)));
        }
        items.iter().enumerate().find_map(|(i, item)| {
            path.0.push(Seg::Index(i));
            let found = T::explain_entry(item, path);
            path.0.pop();
            found
        })
    }
}

wire_object! {
    /// A `tagwatch-inventory` body (`$defs.inventoryBody`).
    pub struct InventoryBody<'a> {
        schema: SchemaVersion = req,
        site: SiteKey<'a> = req,
        page_view: PageView<'a> = req,
        vendors: Entries<InventoryVendor<'a>, MAX_VENDORS> = req,
        unclassified: Entries<InventoryHost<'a>, MAX_UNCLASSIFIED> = req,
        release: Release<'a> = opt,
    }
}

// ------------------------------------------------------------ reports

/// A report's `body`, by its `type`.
#[derive(Debug, Clone)]
// Most reports are findings: boxing them would cost an allocation each.
#[allow(clippy::large_enum_variant)]
pub enum Body<'a> {
    /// `tagwatch-finding`.
    Finding(FindingBody<'a>),
    /// `tagwatch-health`.
    Health(HealthBody<'a>),
    /// `tagwatch-inventory`.
    Inventory(InventoryBody<'a>),
}

impl Body<'_> {
    /// The site key the body reports for.
    pub fn site(&self) -> &str {
        match self {
            Body::Finding(b) => &b.site,
            Body::Health(b) => &b.site,
            Body::Inventory(b) => &b.site,
        }
    }

    /// The site's release the body reports for, if it names one.
    pub fn release(&self) -> Option<&str> {
        match self {
            Body::Finding(b) => b.release.as_deref(),
            Body::Health(b) => b.release.as_deref(),
            Body::Inventory(b) => b.release.as_deref(),
        }
    }
}

impl Scrub for Body<'_> {
    fn scrub(&mut self) {
        match self {
            Body::Finding(b) => b.scrub(),
            Body::Health(b) => b.scrub(),
            Body::Inventory(b) => b.scrub(),
        }
    }
}

/// Reads a body of the given type.
struct BodySeed(ReportType);

impl<'de> DeserializeSeed<'de> for BodySeed {
    type Value = Body<'de>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Body<'de>, D::Error> {
        Ok(match self.0 {
            ReportType::Finding => Body::Finding(FindingBody::deserialize(d)?),
            ReportType::Health => Body::Health(HealthBody::deserialize(d)?),
            ReportType::Inventory => Body::Inventory(InventoryBody::deserialize(d)?),
        })
    }
}

/// One report of a batch: the W3C Reporting API envelope and its body.
/// Other envelope properties are ignored (NUL still refused).
#[derive(Debug, Clone)]
pub struct Report<'a> {
    /// The report type.
    pub kind: ReportType,
    /// ms between the observation and the send.
    pub age: Age,
    /// The page URL (the collector reads it as a browser does).
    pub url: PageUrl<'a>,
    /// `navigator.userAgent`, at most 512 characters.
    pub user_agent: Str<'a, Text<512>>,
    /// The body.
    pub body: Body<'a>,
}

impl<'de> Deserialize<'de> for Report<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Report<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a report")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Report<'de>, A::Error> {
                let (mut kind, mut age, mut url, mut user_agent) = (None, None, None, None);
                let mut body: Option<Body<'de>> = None;
                // A body before its type (the monitor sends the type
                // first): kept as a value until the type is known.
                let mut early: Option<Value> = None;
                while let Some(Key(key)) = map.next_key()? {
                    match &*key {
                        "type" => kind = Some(map.next_value::<ReportType>()?),
                        "age" => age = Some(map.next_value()?),
                        "url" => url = Some(map.next_value()?),
                        "user_agent" => user_agent = Some(map.next_value()?),
                        "body" => match kind {
                            Some(k) => {
                                body = Some(map.next_value_seed(BodySeed(k))?);
                                early = None;
                            }
                            None => {
                                early = Some(map.next_value()?);
                                body = None;
                            }
                        },
                        _ => {
                            let value: Value = map.next_value()?;
                            if has_nul_char(&key) || has_nul(&value) {
                                return Err(invalid());
                            }
                        }
                    }
                }
                let kind = kind.ok_or_else(invalid)?;
                let body = match (body, early) {
                    (_, Some(value)) => {
                        if has_nul(&value) {
                            return Err(invalid());
                        }
                        owned_body(kind, value).map_err(|_| invalid())?
                    }
                    (Some(body), None) => body,
                    (None, None) => return Err(invalid()),
                };
                if body_kind(&body) != kind {
                    return Err(invalid());
                }
                Ok(Report {
                    kind,
                    age: age.ok_or_else(invalid)?,
                    url: url.ok_or_else(invalid)?,
                    user_agent: user_agent.ok_or_else(invalid)?,
                    body,
                })
            }
        }
        d.deserialize_map(V)
    }
}

fn body_kind(b: &Body<'_>) -> ReportType {
    match b {
        Body::Finding(_) => ReportType::Finding,
        Body::Health(_) => ReportType::Health,
        Body::Inventory(_) => ReportType::Inventory,
    }
}

/// A body read from a value of its own (it came before its type).
fn owned_body(kind: ReportType, value: Value) -> Result<Body<'static>, serde_json::Error> {
    Ok(match kind {
        ReportType::Finding => Body::Finding(FindingBody::deserialize(value)?),
        ReportType::Health => Body::Health(HealthBody::deserialize(value)?),
        ReportType::Inventory => Body::Inventory(InventoryBody::deserialize(value)?),
    })
}

impl Scrub for Report<'_> {
    fn scrub(&mut self) {
        self.user_agent.scrub();
        self.body.scrub();
    }
}

/// A report batch: 1 to [`MAX_REPORTS`] reports.
#[derive(Debug, Clone)]
pub struct Batch<'a>(pub Vec<Report<'a>>);

/// Reports a batch's list has room for from the start: the monitor sends a
/// page view's reports together (16 in the golden batch), and a list that
/// grows one report at a time (4, 8, 16) copies its reports each time.
const BATCH_ROOM: usize = 16;

impl<'de> Deserialize<'de> for Batch<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let List(reports) =
            d.deserialize_seq(ListVisitor::<Report<'de>, MAX_REPORTS>::new(BATCH_ROOM))?;
        if reports.is_empty() {
            return Err(invalid());
        }
        Ok(Batch(reports))
    }
}

impl Scrub for Batch<'_> {
    fn scrub(&mut self) {
        self.0.iter_mut().for_each(Scrub::scrub);
    }
}

/// Parses a batch (the fast path). `None`: not valid — [`explain`] says
/// why.
pub fn parse(body: &[u8]) -> Option<Batch<'_>> {
    // Checked as UTF-8 once, whole: then the parser need not check every
    // string again (measured: a tenth of the parse).
    serde_json::from_str(std::str::from_utf8(body).ok()?).ok()
}

/// Why a body is refused.
#[derive(Debug)]
pub enum Refused {
    /// Not JSON text.
    NotJson(serde_json::Error),
    /// JSON, but not a valid batch (or a NUL character in it).
    Invalid(Violation),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::NotJson(e) => write!(f, "body is not JSON: {e}"),
            Refused::Invalid(v) => v.fmt(f),
        }
    }
}

/// Why `body` is refused, in the words and order of the schema's validator
/// (a NUL character first, as the stores refuse it whatever else is
/// wrong); `Ok(batch)` when it is valid after all (a property given twice:
/// the last one counts, as the schema sees it).
pub fn explain(body: &[u8]) -> Result<Batch<'static>, Refused> {
    let value: Value = serde_json::from_slice(body).map_err(Refused::NotJson)?;
    refuse_nul(&value).map_err(Refused::Invalid)?;
    let mut path = Path::default();
    if let Some(v) = explain_batch(&value, &mut path) {
        return Err(Refused::Invalid(v));
    }
    Batch::<'static>::deserialize(value).map_err(|e| {
        Refused::Invalid(Violation {
            place: "batch".to_owned(),
            message: format!("not valid against the report schema ({e})"),
        })
    })
}

/// [`parse`], and [`explain`] when it fails: the batch, or why not.
pub fn read(body: &[u8]) -> Result<Batch<'_>, Refused> {
    match parse(body) {
        Some(batch) => Ok(batch),
        None => explain(body),
    }
}

fn explain_batch(v: &Value, path: &mut Path) -> Option<Violation> {
    let Value::Array(items) = v else {
        return Some(path.violation(Kind::Type("array").message(v)));
    };
    if items.is_empty() {
        return Some(path.violation(Kind::MinItems(1).message(v)));
    }
    if items.len() > MAX_REPORTS {
        return Some(path.violation(Kind::MaxItems(MAX_REPORTS).message(v)));
    }
    items.iter().enumerate().find_map(|(i, item)| {
        path.0.push(Seg::Index(i));
        let found = explain_report(item, path);
        path.0.pop();
        found
    })
}

/// The envelope's checks: type, required, its properties in name order
/// (`body` only as an object), then the body by its type (the `allOf`).
fn explain_report(v: &Value, path: &mut Path) -> Option<Violation> {
    const REQUIRED: [&str; 5] = ["type", "age", "url", "user_agent", "body"];
    let field = |key: &str, v: &Value, p: &mut Path| match key {
        "age" => Age::explain(v, p),
        "body" => (!v.is_object()).then(|| p.violation(Kind::Type("object").message(v))),
        "type" => ReportType::explain(v, p),
        "url" => PageUrl::explain(v, p),
        "user_agent" => Str::<Text<512>>::explain(v, p),
        _ => None,
    };
    if let Some(found) = explain_object(v, path, &[(&REQUIRED, &field)]) {
        return Some(found);
    }
    let kind = v
        .get("type")
        .and_then(Value::as_str)
        .and_then(ReportType::parse)?;
    let body = v.get("body")?;
    path.with(Seg::Key("body".to_owned()), |p| match kind {
        ReportType::Finding => FindingBody::explain(body, p),
        ReportType::Health => HealthBody::explain(body, p),
        ReportType::Inventory => InventoryBody::explain(body, p),
    })
}

/// Refuses a value with a NUL character (U+0000) in any string or property
/// name, naming the first place (in name order) it is found.
pub fn refuse_nul(value: &Value) -> Result<(), Violation> {
    fn walk(value: &Value, path: &mut Path) -> Option<(String, bool)> {
        match value {
            Value::String(s) if s.contains(['\0']) => Some((path.describe(), false)),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, v)| path.with(Seg::Index(i), |p| walk(v, p))),
            Value::Object(map) => map.iter().find_map(|(k, v)| {
                path.with(Seg::Key(k.replace('\0', "\\0")), |p| {
                    if k.contains(['\0']) {
                        Some((p.describe(), true))
                    } else {
                        walk(v, p)
                    }
                })
            }),
            _ => None,
        }
    }
    match walk(value, &mut Path::default()) {
        None => Ok(()),
        Some((place, key)) => Err(Violation {
            place,
            message: format!(
                "{} contains a NUL character (U+0000), which the collector does not store",
                if key { "the property name" } else { "the text" }
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{classify_cookie, vendors};

    /// The index answers as `classify_cookie` does (what it replaces, for
    /// ≈ 15,000 instructions a name: see [`known_cookie`]): on every rule's
    /// name, its neighbours (one byte more, one less, other case, a suffix)
    /// and generated names. If this fails, the index is wrong, not the
    /// catalog: fix `CookieIndex`.
    #[test]
    fn cookie_index_answers_as_the_catalog() {
        let names: Vec<&'static str> = vendors()
            .iter()
            .flat_map(|v| v.cookies().map(|r| r.name))
            .collect();
        assert!(names.len() > 100, "{}", names.len());
        assert!(names.iter().all(|n| !n.is_empty()), "a rule without a name");
        let mut cases: Vec<String> = vec![String::new(), "x".into(), "_".into(), "é".into()];
        for n in &names {
            cases.push((*n).to_owned());
            cases.push(format!("{n}x"));
            cases.push(format!("{n}abc12345"));
            cases.push(n.to_uppercase());
            cases.push(format!("x{n}"));
            let mut shorter = (*n).to_owned();
            shorter.pop();
            cases.push(shorter);
        }
        // Generated: pieces of rule names glued together.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            usize::try_from(state % 1_000_003).unwrap_or(0)
        };
        for _ in 0..20_000 {
            let a = names[next() % names.len()];
            let b = names[next() % names.len()];
            let cut = next() % (a.len() + 1);
            let a = a.get(..cut).unwrap_or(a);
            cases.push(format!("{a}{}", b.get(..next() % 3).unwrap_or("")));
        }
        let known = cases.iter().filter(|c| known_cookie(c)).count();
        assert!(known > names.len(), "{known}");
        for c in &cases {
            assert_eq!(known_cookie(c), classify_cookie(c).is_some(), "{c:?}");
        }
    }
}
