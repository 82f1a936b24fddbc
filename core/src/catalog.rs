//! Vendor signatures: which hosts, paths, cookies, globals and DOM markers
//! belong to which tag, and what each piece is for.
//!
//! Matching is host-first: the host is extracted once, vendors are found by
//! dot-boundary suffix, and only that vendor's path rules are tried.

use crate::url::{glob_match, host_within};
use serde::Serialize;

/// What a piece of a tag is for; the policy maps each purpose to the consent
/// category it needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The tag's core function (Intercom: the Messenger and its cookies).
    Messenger,
    /// Behavioural tracking and targeting (page-view pings, events, tours, surveys).
    Tracking,
    /// Hot-linked static media; seeing it does not mean the tag ran.
    Media,
}

impl Purpose {
    /// Wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::Messenger => "messenger",
            Purpose::Tracking => "tracking",
            Purpose::Media => "media",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<Self> {
        [Purpose::Messenger, Purpose::Tracking, Purpose::Media].into_iter().find(|p| p.as_str() == s)
    }
}

/// What kind of resource a rule describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource {
    /// Code: loaders and bundles.
    Script,
    /// API calls.
    Api,
    /// Images, fonts, audio, attachments.
    Asset,
}

/// One path rule of a vendor: tried in order, first match wins.
#[derive(Debug)]
pub struct PathRule {
    /// Host the rule applies to (dot-boundary); `None` for any vendor host.
    pub host: Option<&'static str>,
    /// Path glob (`*` matches any run of characters).
    pub path: &'static str,
    /// Resource kind.
    pub resource: Resource,
    /// Purpose.
    pub purpose: Purpose,
}

/// A cookie signature.
#[derive(Debug)]
pub struct CookieRule {
    /// Exact name, or prefix when `prefix` is set.
    pub name: &'static str,
    /// Match names starting with `name`.
    pub prefix: bool,
    /// Purpose.
    pub purpose: Purpose,
}

impl CookieRule {
    fn matches(&self, name: &str) -> bool {
        if self.prefix {
            name.len() > self.name.len() && name.starts_with(self.name)
        } else {
            name == self.name
        }
    }
}

/// A tag the monitor knows.
#[derive(Debug)]
pub struct Vendor {
    /// Stable id used on the wire.
    pub id: &'static str,
    /// Display name.
    pub name: &'static str,
    /// Registrable domains (and subdomains) the vendor serves from.
    pub domains: &'static [&'static str],
    /// Path rules, first match wins; unmatched vendor requests fall back on
    /// the initiator (script → Script/messenger, else Api/messenger).
    pub paths: &'static [PathRule],
    /// Cookie signatures.
    pub cookies: &'static [CookieRule],
    /// Page globals whose presence means the tag runs.
    pub globals: &'static [&'static str],
    /// `id`s of elements whose presence means the tag runs.
    pub dom_ids: &'static [&'static str],
    /// `id`s of `<script>` elements that load the tag from any URL
    /// (first-party proxies).
    pub loader_script_ids: &'static [&'static str],
    /// Host → region of processing.
    pub regions: &'static [(&'static str, &'static str)],
    /// How the tag identifies users, where it has identity verification.
    pub identity: Option<IdentityRule>,
}

/// Where a tag's settings identify a user, and which fields prove the
/// identity was verified server-side.
#[derive(Debug)]
pub struct IdentityRule {
    /// Page global holding the settings object.
    pub settings: &'static str,
    /// Fields that identify a user.
    pub ids: &'static [&'static str],
    /// Fields that carry the server-side proof.
    pub proofs: &'static [&'static str],
}

/// A request classified against the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestMatch {
    /// The vendor.
    pub vendor: &'static Vendor,
    /// Resource kind.
    pub resource: Resource,
    /// Purpose.
    pub purpose: Purpose,
}

impl PartialEq for Vendor {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}
impl Eq for Vendor {}

const fn rule(host: Option<&'static str>, path: &'static str, resource: Resource, purpose: Purpose) -> PathRule {
    PathRule { host, path, resource, purpose }
}

const fn prefix(name: &'static str) -> CookieRule {
    CookieRule { name, prefix: true, purpose: Purpose::Messenger }
}

use Purpose::{Media, Messenger, Tracking};
use Resource::{Api, Asset, Script};

/// Intercom Messenger. Facts and sources: shared reference `intercom.md`.
pub static INTERCOM: Vendor = Vendor {
    id: "intercom",
    name: "Intercom",
    domains: &[
        "intercom.io", "intercomcdn.com", "intercomcdn.eu", "intercomassets.com", "intercomassets.eu",
        "intercomusercontent.com", "intercom-messenger.com", "intercom-attachments-1.com",
        "intercom-attachments-2.com", "intercom-attachments-3.com", "intercom-attachments-4.com",
        "intercom-attachments-5.com", "intercom-attachments-6.com", "intercom-attachments-7.com",
        "intercom-attachments-8.com", "intercom-attachments-9.com", "intercom-attachments.com",
        "intercom-attachments.eu", "intercom-sheets.com", "intercom-reporting.com", "intercom.help",
        "intercom-help.eu",
    ],
    paths: &[
        rule(Some("widget.intercom.io"), "/widget/*", Script, Messenger),
        rule(Some("js.intercomcdn.com"), "*.js", Script, Messenger),
        rule(Some("api.intercom.io"), "/api/js/library.js", Script, Messenger),
        rule(None, "/messenger/web/ping", Api, Tracking),
        rule(None, "/messenger/web/events", Api, Tracking),
        rule(None, "/messenger/web/page_view_events", Api, Tracking),
        rule(None, "/messenger/web/metrics", Api, Tracking),
        rule(None, "/messenger/web/rulesets/*/match", Api, Tracking),
        rule(None, "/messenger/web/surveys/*", Api, Tracking),
        rule(None, "/messenger/web/tours/*", Api, Tracking),
        rule(None, "/messenger/web/*", Api, Messenger),
        rule(Some("js.intercomcdn.com"), "*", Asset, Media),
        rule(Some("downloads.intercomcdn.com"), "*", Asset, Media),
        rule(Some("downloads.intercomcdn.eu"), "*", Asset, Media),
        rule(Some("uploads.intercomcdn.com"), "*", Asset, Media),
        rule(Some("uploads.intercomcdn.eu"), "*", Asset, Media),
        rule(Some("intercomusercontent.com"), "*", Asset, Media),
        rule(Some("intercomassets.com"), "*", Asset, Media),
        rule(Some("intercomassets.eu"), "*", Asset, Media),
        rule(Some("gifs.intercomcdn.com"), "*", Asset, Media),
        rule(Some("fonts.intercomcdn.com"), "*", Asset, Media),
    ],
    cookies: &[
        prefix("intercom-id-"),
        prefix("intercom-session-"),
        prefix("intercom-device-id-"),
        prefix("intercom-lou-"),
        prefix("intercom-visitor-semaphore-"),
        CookieRule { name: "intercom-id", prefix: false, purpose: Messenger },
    ],
    // The snippet's queue stub exists before the Messenger loads; the loader
    // sets `booted` when it really runs.
    globals: &["Intercom.booted"],
    dom_ids: &["intercom-frame"],
    loader_script_ids: &["_intercom_npm_loader"],
    regions: &[
        ("api-iam.eu.intercom.io", "eu"),
        ("api-iam.au.intercom.io", "au"),
        ("api.eu.intercom.io", "eu"),
        ("api.au.intercom.io", "au"),
        ("nexus-europe-websocket.intercom.io", "eu"),
        ("nexus-australia-websocket.intercom.io", "au"),
        ("intercomcdn.eu", "eu"),
        ("intercomassets.eu", "eu"),
        ("intercom-attachments.eu", "eu"),
        ("intercom-help.eu", "eu"),
        ("api-iam.intercom.io", "us"),
        ("api.intercom.io", "us"),
        ("nexus-websocket-a.intercom.io", "us"),
        ("nexus-websocket-b.intercom.io", "us"),
    ],
    identity: Some(IdentityRule {
        settings: "intercomSettings",
        ids: &["user_id", "email"],
        proofs: &["user_hash", "intercom_user_jwt"],
    }),
};

/// Every vendor the monitor knows.
pub static VENDORS: &[&Vendor] = &[&INTERCOM];

/// Finds a vendor by id.
pub fn vendor(id: &str) -> Option<&'static Vendor> {
    VENDORS.iter().copied().find(|v| v.id == id)
}

/// The vendor serving `host`, on a dot boundary.
pub fn vendor_for_host(host: &str) -> Option<&'static Vendor> {
    VENDORS.iter().copied().find(|v| v.domains.iter().any(|d| host_within(host, d)))
}

/// Classifies a request by host and path. `initiator` (Resource Timing
/// `initiatorType`) decides the kind of requests no path rule covers.
pub fn classify_request(host: &str, path: &str, initiator: &str) -> Option<RequestMatch> {
    let vendor = vendor_for_host(host)?;
    let hit = vendor
        .paths
        .iter()
        .find(|r| r.host.is_none_or(|h| host_within(host, h)) && glob_match(r.path, path));
    let (resource, purpose) = match hit {
        Some(r) => (r.resource, r.purpose),
        None if initiator == "script" => (Script, Messenger),
        None => (Api, Messenger),
    };
    Some(RequestMatch { vendor, resource, purpose })
}

/// The vendor and purpose of a cookie name.
pub fn classify_cookie(name: &str) -> Option<(&'static Vendor, Purpose)> {
    VENDORS
        .iter()
        .find_map(|v| v.cookies.iter().find(|c| c.matches(name)).map(|c| (*v, c.purpose)))
}

impl Vendor {
    /// Region of processing for one of this vendor's hosts, if known.
    pub fn region(&self, host: &str) -> Option<&'static str> {
        self.regions.iter().find(|(h, _)| host_within(host, h)).map(|(_, r)| *r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(url: &str, initiator: &str) -> Option<(&'static str, Resource, Purpose)> {
        let p = crate::url::parse(url)?;
        classify_request(&p.host, &p.path, initiator).map(|m| (m.vendor.id, m.resource, m.purpose))
    }

    #[test]
    fn intercom_request_shapes() {
        assert_eq!(class("https://widget.intercom.io/widget/abc12345", "script"), Some(("intercom", Script, Messenger)));
        assert_eq!(class("https://js.intercomcdn.com/frame-modern.c6941a28.js", "script"), Some(("intercom", Script, Messenger)));
        assert_eq!(class("https://api-iam.intercom.io/messenger/web/ping", "fetch"), Some(("intercom", Api, Tracking)));
        assert_eq!(class("https://api-iam.eu.intercom.io/messenger/web/launcher_settings", "xmlhttprequest"), Some(("intercom", Api, Messenger)));
        assert_eq!(class("https://api-iam.intercom.io/messenger/web/rulesets/43795852/match", "fetch"), Some(("intercom", Api, Tracking)));
        assert_eq!(class("https://downloads.intercomcdn.com/i/o/1/2/x.png", "img"), Some(("intercom", Asset, Media)));
        assert_eq!(class("https://js.intercomcdn.com/audio/notification.mp3", "other"), Some(("intercom", Asset, Media)));
    }

    #[test]
    fn near_misses_are_not_intercom() {
        for url in [
            "https://shop.example/intercom/widget/abc",
            "https://evilintercom.io/widget/abc",
            "https://intercom.io.evil.com/widget/x",
            "https://analytics.example/collect?u=widget.intercom.io",
            "https://drift.com/widget.js",
        ] {
            assert_eq!(class(url, "script"), None, "{url}");
        }
    }

    #[test]
    fn cookies() {
        assert_eq!(classify_cookie("intercom-id-abc12345").map(|c| c.0.id), Some("intercom"));
        assert_eq!(classify_cookie("intercom-device-id-abc12345").map(|c| c.0.id), Some("intercom"));
        assert_eq!(classify_cookie("intercom-session-abc12345").map(|c| c.0.id), Some("intercom"));
        assert_eq!(classify_cookie("intercom-id").map(|c| c.0.id), Some("intercom"));
        assert!(classify_cookie("intercom-id-").is_none());
        assert!(classify_cookie("my-intercom-id-x").is_none());
        assert!(classify_cookie("_ga").is_none());
    }

    #[test]
    fn regions() {
        assert_eq!(INTERCOM.region("api-iam.intercom.io"), Some("us"));
        assert_eq!(INTERCOM.region("api-iam.eu.intercom.io"), Some("eu"));
        assert_eq!(INTERCOM.region("downloads.intercomcdn.eu"), Some("eu"));
        assert_eq!(INTERCOM.region("widget.intercom.io"), None);
    }
}
