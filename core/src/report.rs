//! The report wire format (schema 1). Documented in `docs/report-format.md`,
//! machine-checked by `docs/report.schema.json`; the golden test in
//! `core/tests/golden.rs` keeps the three in step.

use crate::consent::{Category, State};
use crate::inventory::{Inventory, Usage};
use crate::json::Writer;
use alloc::string::String;
use serde::Serialize;

#[cfg(feature = "read")]
pub mod read;

/// Schema version carried in every report body.
pub const SCHEMA: u32 = 1;

/// Longest `release` a report carries, in characters (the schema's
/// `maxLength`): a build id, a 40-character commit hash, a tag-manager
/// container version or a version with its build metadata fits with room
/// to spare; the cap keeps a site's mistake (a changelog pasted in) off
/// every report of every page view.
pub const MAX_RELEASE: usize = 128;

/// The site's `release` (embed config) as reports carry it: without
/// surrounding white space, cut at [`MAX_RELEASE`] characters; none (`""`)
/// when it holds a control character (U+0000–U+001F, U+007F–U+009F: what
/// the schema refuses), which no build id has and which would not read
/// back as the text the site meant.
pub fn release(s: &str) -> &str {
    // Trimmed at both ends again, not `trim_end` (the cut text starts
    // trimmed already): `trim_end` kept a reverse searcher inlined here.
    let s = crate::trim(crate::prefix(crate::trim(s), MAX_RELEASE));
    if has_control(s) {
        return "";
    }
    s
}

/// Whether `s` has a control character (U+0000–U+001F, U+007F–U+009F:
/// `char::is_control`), by its UTF-8 bytes: U+0080–U+009F are `C2 80` to
/// `C2 9F` (`chars()` kept core's UTF-8 decoder in the page's wasm). What
/// no release may hold: the page's [`release`], the collector's reading of
/// a report's (`report::read`) and of a release parameter ask it alike.
// `#[inline]`: the page's one caller ([`release`]) keeps it inlined, as it
// was while private (public without it: +14 B of the page's wasm gzip).
#[inline]
pub fn has_control(s: &str) -> bool {
    let mut lead = false;
    for b in s.bytes() {
        if b < 0x20 || b == 0x7f || lead && (0x80..=0x9f).contains(&b) {
            return true;
        }
        lead = b == 0xc2;
    }
    false
}

/// An enum of wire names, written once: the type, its `ALL` values in the
/// schema's order, `as_str`, `parse` and `Serialize` as the wire name.
macro_rules! wire_enum {
    ($(#[$m:meta])* pub enum $name:ident { $($(#[$vm:meta])* $variant:ident = $wire:literal,)* }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vm])* $variant,)*
        }

        impl $name {
            /// Every value, in the schema's order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// Every wire name, in the schema's order.
            pub const NAMES: &'static [&'static str] = &[$($wire,)*];

            /// Wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// Parses a wire name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

wire_enum! {
    /// Finding types (`body.finding`).
    pub enum FindingType {
        #[allow(missing_docs)] ScriptBeforeConsent = "script_before_consent",
        #[allow(missing_docs)] CookieBeforeConsent = "cookie_before_consent",
        #[allow(missing_docs)] TrackingBeforeConsent = "tracking_before_consent",
        #[allow(missing_docs)] CookieAfterWithdrawal = "cookie_after_withdrawal",
        #[allow(missing_docs)] RequestAfterWithdrawal = "request_after_withdrawal",
        #[allow(missing_docs)] GpcIgnored = "gpc_ignored",
        #[allow(missing_docs)] RegionNotAllowed = "region_not_allowed",
        #[allow(missing_docs)] PageOutOfScope = "page_out_of_scope",
        #[allow(missing_docs)] IdentityUnverified = "identity_unverified",
        #[allow(missing_docs)] CookieLifetimeExceedsPolicy = "cookie_lifetime_exceeds_policy",
        #[allow(missing_docs)] ConsentSignalMismatch = "consent_signal_mismatch",
    }
}

wire_enum! {
    /// Report types (the envelope's `type`).
    pub enum ReportType {
        /// A finding: `tagwatch-finding`.
        Finding = "tagwatch-finding",
        /// A monitor health report: `tagwatch-health`.
        Health = "tagwatch-health",
        /// A page view's inventory: `tagwatch-inventory`.
        Inventory = "tagwatch-inventory",
    }
}

wire_enum! {
    /// What kind of observation a finding's evidence is (`evidence.kind`).
    pub enum EvidenceKind {
        /// A Resource Timing entry.
        Request = "request",
        /// A cookie, by name.
        Cookie = "cookie",
        /// A page global of the vendor.
        Global = "global",
        /// A DOM marker of the vendor.
        Dom = "dom",
        /// A consent claim a tag made.
        Signal = "signal",
    }
}

wire_enum! {
    /// Where a consent claim was made (`evidence.signal`).
    pub enum SignalKind {
        /// The `gcs` parameter of a Google hit.
        Gcs = "gcs",
        /// A Consent Mode `default` command in `dataLayer`.
        ConsentDefault = "consent_default",
        /// A Consent Mode `update` command in `dataLayer`.
        ConsentUpdate = "consent_update",
    }
}

wire_enum! {
    /// On what a consent state rests (`consent.basis`): how a reviewer tells
    /// a visitor's choice from consent a CMP applied without one.
    pub enum ConsentBasis {
        /// Nothing decided yet: the default state (only `necessary`).
        None = "none",
        /// A decision a source reports: the visitor's choice in a CMP, the
        /// site's own call, TCF, GPP.
        Explicit = "explicit",
        /// Consent a CMP applied without a click where it judged the
        /// visitor's region allows it (Cookiebot `method:'implied'`,
        /// CookieYes `consent:yes` with `action:no`, Usercentrics
        /// `type:'implicit'`); counted as the CMP says only with
        /// `policy.implied: 'accept'`, else every category it grants is
        /// refused.
        Implied = "implied",
    }
}

wire_enum! {
    /// The state a health report tells (`body.status`).
    pub enum HealthStatus {
        /// No WebAssembly, or instantiation refused.
        WasmUnavailable = "wasm_unavailable",
        /// A browser API the monitor needs is absent.
        ApiMissing = "api_missing",
        /// An API the monitor needs was broken by the page; the monitor
        /// works around it and keeps running.
        Tampered = "tampered",
        /// The page view ended before the monitor started (or while an
        /// on-demand piece it needed was still on its way): nothing of it
        /// was judged.
        Unmonitored = "unmonitored",
        /// The monitor runs.
        Ok = "ok",
    }
}

impl FindingType {
    /// Whether the finding exists only because consent was missing at its
    /// time (so consent learned later for that time undoes it).
    pub fn needs_consent(self) -> bool {
        matches!(
            self,
            FindingType::ScriptBeforeConsent
                | FindingType::CookieBeforeConsent
                | FindingType::TrackingBeforeConsent
                | FindingType::CookieAfterWithdrawal
                | FindingType::RequestAfterWithdrawal
                | FindingType::ConsentSignalMismatch
        )
    }
}

/// What was observed. Holds no cookie value, query string or fragment by
/// construction: it is built only from `url::parse` output and cookie names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Evidence {
    /// A Resource Timing entry.
    Request {
        /// Lower-case host.
        host: String,
        /// Redacted path.
        path: String,
        /// `initiatorType`.
        initiator: String,
        /// `top` or the frame it came from.
        frame: String,
        /// Catalog purpose.
        purpose: &'static str,
        /// Region of processing of the host, where known.
        #[serde(skip_serializing_if = "Option::is_none")]
        region: Option<&'static str>,
    },
    /// A cookie, by name.
    Cookie {
        /// The name.
        cookie: String,
        /// Catalog purpose.
        purpose: &'static str,
        /// Remaining lifetime in days, where it was read.
        #[serde(skip_serializing_if = "Option::is_none")]
        days: Option<u32>,
    },
    /// A page global of the vendor.
    Global {
        /// Its name.
        name: String,
    },
    /// A DOM marker of the vendor.
    Dom {
        /// Selector, e.g. `#intercom-frame`.
        name: String,
    },
    /// A consent claim a tag made: a Consent Mode command in `dataLayer`,
    /// or the `gcs` parameter of a Google hit (then with its host and
    /// redacted path; the claim's value is consent state, not user data).
    Signal {
        /// Where the claim was made.
        signal: SignalKind,
        /// The consent type claimed granted: `analytics_storage`, `ad_storage`.
        claimed: &'static str,
        /// Host of the hit, empty for a `dataLayer` command.
        #[serde(skip_serializing_if = "String::is_empty")]
        host: String,
        /// Redacted path of the hit, empty for a `dataLayer` command.
        #[serde(skip_serializing_if = "String::is_empty")]
        path: String,
    },
}

impl Evidence {
    /// Identity for deduplication within a page view.
    pub fn key(&self) -> (&str, &str) {
        match self {
            Evidence::Request { host, path, .. } => (host, path),
            Evidence::Cookie { cookie, .. } => ("cookie", cookie),
            Evidence::Global { name } => ("global", name),
            Evidence::Dom { name } => ("dom", name),
            Evidence::Signal {
                signal, claimed, ..
            } => (signal.as_str(), claimed),
        }
    }
}

/// The consent state a decision was made on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConsentSnapshot {
    #[allow(missing_docs)]
    pub necessary: Option<bool>,
    #[allow(missing_docs)]
    pub functional: Option<bool>,
    #[allow(missing_docs)]
    pub analytics: Option<bool>,
    #[allow(missing_docs)]
    pub marketing: Option<bool>,
    /// Who set the state.
    pub source: crate::consent::Source,
    /// Since when (ms after navigation start).
    pub since: u64,
    /// On what the state rests.
    pub basis: ConsentBasis,
    /// The CMP's own choice about the finding's vendor (a per-service
    /// choice), which decided over its category; `None` (not written)
    /// where the CMP made none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendor: Option<bool>,
    /// Global Privacy Control.
    pub gpc: bool,
}

impl ConsentSnapshot {
    /// Snapshot of a timeline state.
    pub fn new(state: State, gpc: bool) -> Self {
        let c = state.categories;
        ConsentSnapshot {
            necessary: c.get(Category::Necessary),
            functional: c.get(Category::Functional),
            analytics: c.get(Category::Analytics),
            marketing: c.get(Category::Marketing),
            source: state.source,
            since: state.since,
            basis: state.basis,
            vendor: None,
            gpc,
        }
    }

    /// With the state's choice about `vendor` alone, if it has one.
    pub fn for_vendor(mut self, state: &State, vendor: &str) -> Self {
        self.vendor = state.vendor(vendor);
        self
    }
}

/// One finding of a page view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Type.
    pub kind: FindingType,
    /// Vendor id.
    pub vendor: &'static str,
    /// The category the behaviour needed, where one applies.
    pub category: Option<Category>,
    /// When (ms after navigation start).
    pub at: u64,
    /// Times seen before it was sent.
    pub count: u32,
    /// What was seen.
    pub evidence: Evidence,
    /// Consent it was judged on.
    pub consent: ConsentSnapshot,
}

/// Identity of the page view a report belongs to.
#[derive(Debug, Clone)]
pub struct PageView<'a> {
    /// Site key.
    pub site: &'a str,
    /// 16 hex chars.
    pub id: &'a str,
    /// Page URL, already stripped (`url::page_url`).
    pub url: &'a str,
    /// `navigator.userAgent`.
    pub user_agent: &'a str,
    /// The site's release, already cleaned ([`release`]); `""`: none, and
    /// the reports carry no `release`.
    pub release: &'a str,
}

/// Serialises findings, and the inventory when given, as a report batch (a
/// JSON array of envelopes). `now` is ms after navigation start, for `age`.
pub fn batch<'a>(
    view: &PageView<'_>,
    findings: impl Iterator<Item = &'a Finding>,
    inventory: Option<&Inventory>,
    now: u64,
) -> String {
    let mut w = Writer::new();
    w.begin_array();
    for f in findings {
        envelope(&mut w, view, "tagwatch-finding", now.saturating_sub(f.at));
        w.field("finding", f.kind.as_str());
        w.field("vendor", f.vendor);
        if let Some(c) = f.category {
            w.field("category", c.as_str());
        }
        w.field_u64("at", f.at);
        w.field_u64("count", u64::from(f.count));
        w.key("evidence");
        evidence(&mut w, &f.evidence);
        w.key("consent");
        consent(&mut w, &f.consent);
        w.end_object();
        w.end_object();
    }
    if let Some(inv) = inventory {
        envelope(&mut w, view, "tagwatch-inventory", 0);
        w.key("vendors");
        w.begin_array();
        for v in &inv.vendors {
            w.begin_object();
            w.field("vendor", v.vendor);
            usage(&mut w, &v.usage);
            w.field_strs("hosts", v.hosts.iter().map(String::as_str));
            w.field_strs("regions", v.regions.iter().copied());
            w.field_strs("cookies", v.cookies.iter().map(String::as_str));
            w.end_object();
        }
        w.end_array();
        w.key("unclassified");
        w.begin_array();
        for h in &inv.unclassified {
            w.begin_object();
            w.field("host", &h.host);
            usage(&mut w, &h.usage);
            w.end_object();
        }
        w.end_array();
        w.end_object();
        w.end_object();
    }
    w.end_array();
    w.finish()
}

/// Opens a report and its body, with the fields every body carries. The
/// caller writes the rest of the body and closes both objects.
fn envelope(w: &mut Writer, view: &PageView<'_>, kind: &str, age: u64) {
    w.begin_object();
    w.field("type", kind);
    w.field_u64("age", age);
    w.field("url", view.url);
    w.field("user_agent", crate::floor(view.user_agent, 512));
    w.key("body");
    w.begin_object();
    w.field_u64("schema", u64::from(SCHEMA));
    w.field("site", view.site);
    w.field("page_view", view.id);
    if !view.release.is_empty() {
        w.field("release", view.release);
    }
}

fn evidence(w: &mut Writer, e: &Evidence) {
    w.begin_object();
    match e {
        Evidence::Request {
            host,
            path,
            initiator,
            frame,
            purpose,
            region,
        } => {
            w.field("kind", "request");
            w.field("host", host);
            w.field("path", path);
            w.field("initiator", initiator);
            w.field("frame", frame);
            w.field("purpose", purpose);
            if let Some(r) = region {
                w.field("region", r);
            }
        }
        Evidence::Cookie {
            cookie,
            purpose,
            days,
        } => {
            w.field("kind", "cookie");
            w.field("cookie", cookie);
            w.field("purpose", purpose);
            if let Some(d) = days {
                w.field_u64("days", u64::from(*d));
            }
        }
        Evidence::Global { name } => {
            w.field("kind", "global");
            w.field("name", name);
        }
        Evidence::Dom { name } => {
            w.field("kind", "dom");
            w.field("name", name);
        }
        Evidence::Signal {
            signal,
            claimed,
            host,
            path,
        } => {
            w.field("kind", "signal");
            w.field("signal", signal.as_str());
            w.field("claimed", claimed);
            for (k, v) in [("host", host), ("path", path)] {
                if !v.is_empty() {
                    w.field(k, v);
                }
            }
        }
    }
    w.end_object();
}

/// A consent state as JSON, in the shape of a finding's `consent` object
/// (`docs/report-format.md`): what the extension's popup shows.
pub fn consent_json(c: &ConsentSnapshot) -> String {
    let mut w = Writer::new();
    consent(&mut w, c);
    w.finish()
}

fn consent(w: &mut Writer, c: &ConsentSnapshot) {
    w.begin_object();
    for (k, v) in [
        ("necessary", c.necessary),
        ("functional", c.functional),
        ("analytics", c.analytics),
        ("marketing", c.marketing),
    ] {
        w.key(k);
        w.opt_bool(v);
    }
    w.field("source", c.source.as_str());
    w.field_u64("since", c.since);
    w.field("basis", c.basis.as_str());
    if let Some(v) = c.vendor {
        w.key("vendor");
        w.opt_bool(Some(v));
    }
    w.key("gpc");
    w.opt_bool(Some(c.gpc));
    w.end_object();
}

fn usage(w: &mut Writer, u: &Usage) {
    w.field_u64("requests", u64::from(u.requests));
    w.field_u64("script_requests", u64::from(u.script_requests));
    w.field_u64("transfer_bytes", u.transfer_bytes);
    w.field_u64("encoded_bytes", u.encoded_bytes);
    w.field_u64("duration_ms", u.duration_ms);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consent::Source;

    /// `has_control` says what `char::is_control` says of every character:
    /// each control character and its neighbours in code (U+00A0 follows
    /// U+009F with the same lead byte), alone and among others.
    #[test]
    fn has_control_is_char_is_control() {
        let mut parts: Vec<String> = (0..=0x3000u32)
            .filter_map(char::from_u32)
            .filter(|c| {
                c.is_control()
                    || matches!(u32::from(*c), 0x20 | 0x7e | 0xa0 | 0xc0 | 0x100 | 0x2028)
            })
            .map(String::from)
            .collect();
        parts.extend(["a", "é", "€", "😀", "\u{c2}"].map(String::from));
        for p in &parts {
            assert_eq!(has_control(p), p.chars().any(char::is_control), "{p:?}");
        }
        for t in crate::testing::texts(&parts, 6, 20_000) {
            assert_eq!(has_control(&t), t.chars().any(char::is_control), "{t:?}");
        }
    }

    /// The site's release as reports carry it: trimmed, capped, never a
    /// control character; and written (escaped) only when there is one.
    #[test]
    fn release_is_cleaned_and_written_only_when_there_is_one() {
        assert_eq!(release("  v1.2.3 \t"), "v1.2.3");
        assert_eq!(release(""), "");
        assert_eq!(release("a\nb"), "");
        assert_eq!(release("a\u{85}b"), "");
        assert_eq!(release(&"x".repeat(1_000_000)), "x".repeat(MAX_RELEASE));
        let wide = "😀".repeat(MAX_RELEASE + 1);
        assert_eq!(release(&wide).chars().count(), MAX_RELEASE);
        // Cut inside trailing white space: none of it kept.
        let padded = format!("{}{}", "y".repeat(MAX_RELEASE - 2), "    z");
        assert_eq!(release(&padded), "y".repeat(MAX_RELEASE - 2));
        let sqlish = "1' OR '1'='1\"; --";
        assert_eq!(release(sqlish), sqlish);
        let view = |release| PageView {
            site: "tw_x",
            id: "0123456789abcdef",
            url: "https://s.example/",
            user_agent: "UA",
            release,
        };
        let mut inv = Inventory::default();
        inv.unclassified("x.y", &crate::inventory::Entry::default());
        let none = batch(&view(""), [].iter(), Some(&inv), 0);
        assert!(!none.contains("release"), "{none}");
        let with: serde_json::Value =
            serde_json::from_str(&batch(&view(sqlish), [].iter(), Some(&inv), 0)).unwrap();
        assert_eq!(with[0]["body"]["release"], sqlish);
    }

    /// The hand-written batch says exactly what the `Serialize` derives
    /// (used by the CLI and collector) say.
    #[test]
    fn writer_agrees_with_serde() {
        let consent = ConsentSnapshot {
            necessary: Some(true),
            functional: Some(false),
            analytics: None,
            marketing: None,
            source: Source::Api,
            since: 3,
            basis: ConsentBasis::Implied,
            vendor: Some(false),
            gpc: false,
        };
        let evidences = [
            Evidence::Request {
                host: "a.b".into(),
                path: "/p\"q".into(),
                initiator: "script".into(),
                frame: "top".into(),
                purpose: "messenger",
                region: Some("us"),
            },
            Evidence::Request {
                host: "a.b".into(),
                path: "/".into(),
                initiator: "fetch".into(),
                frame: "#f".into(),
                purpose: "tracking",
                region: None,
            },
            Evidence::Cookie {
                cookie: "c".into(),
                purpose: "messenger",
                days: Some(270),
            },
            Evidence::Cookie {
                cookie: "c".into(),
                purpose: "messenger",
                days: None,
            },
            Evidence::Global {
                name: "Intercom.booted".into(),
            },
            Evidence::Dom {
                name: "#intercom-frame".into(),
            },
            Evidence::Signal {
                signal: SignalKind::Gcs,
                claimed: "analytics_storage",
                host: "region1.google-analytics.com".into(),
                path: "/g/collect".into(),
            },
            Evidence::Signal {
                signal: SignalKind::ConsentUpdate,
                claimed: "ad_storage",
                host: String::new(),
                path: String::new(),
            },
        ];
        let findings: Vec<Finding> = evidences
            .iter()
            .map(|e| Finding {
                kind: FindingType::ScriptBeforeConsent,
                vendor: "intercom",
                category: Some(Category::Functional),
                at: 7,
                count: 2,
                evidence: e.clone(),
                consent,
            })
            .collect();
        let mut inventory = Inventory::default();
        inventory.vendor_request(
            "intercom",
            "a.b",
            Some("us"),
            &crate::inventory::Entry {
                script: true,
                transfer: 10,
                encoded: 9,
                duration: 5,
            },
        );
        inventory.vendor_cookie("intercom", "c");
        inventory.unclassified("x.y", &crate::inventory::Entry::default());
        let view = PageView {
            site: "tw_x",
            id: "0123456789abcdef",
            url: "https://s.example/",
            user_agent: "UA",
            release: "",
        };
        let ours: serde_json::Value =
            serde_json::from_str(&batch(&view, findings.iter(), Some(&inventory), 10)).unwrap();
        let reports = ours.as_array().unwrap();
        for (r, f) in reports.iter().zip(&findings) {
            assert_eq!(
                r["body"]["evidence"],
                serde_json::to_value(&f.evidence).unwrap()
            );
            assert_eq!(
                r["body"]["consent"],
                serde_json::to_value(f.consent).unwrap()
            );
            assert_eq!(r["body"]["finding"], serde_json::to_value(f.kind).unwrap());
            assert_eq!(r["age"], 3);
        }
        let mut inv = serde_json::to_value(&inventory).unwrap();
        let body = &reports.last().unwrap()["body"];
        for k in ["schema", "site", "page_view"] {
            inv[k] = body[k].clone();
        }
        assert_eq!(*body, inv);
    }
}
