//! Releases (the embed config's `release`, carried by every report): the
//! `release`, `from` and `to` query parameters, what changed between two
//! releases of a site (`GET /api/diff`, the dashboard's release view), and
//! the release webhook's alert. The store aggregates each release
//! (`Store::release_profile`, the same answer on every store); the
//! comparison is written once, here. docs/collector.md#releases.

use std::collections::BTreeMap;

use serde_json::{json, Value};
use tagwatch_core::report::MAX_RELEASE;
use tagwatch_store::{Named, ReleaseItemKind, ReleaseNews, ReleaseProfile};

/// Page views counts are normalised to: "per 1,000 page views of that
/// release" (a rate a reader compares across releases of any traffic).
pub const PER_PAGE_VIEWS: i64 = 1000;

/// Most hosts and most cookie names read of each release for a diff (the
/// most common first): a site with more lists them as `truncated`.
pub const MAX_DIFF_NAMES: u32 = 10_000;

/// Characters of a refused parameter quoted back in the message.
const SHOWN: usize = 40;

/// A release parameter (`release`, `from`, `to`): the text as reports carry
/// it (compared exactly, white space too; empty: none), or why no report
/// can carry it. Not trimmed as other parameters are: U+0085 is white
/// space to `trim` and a control character here, and a filter must never
/// quietly become no filter.
pub fn param(name: &str, value: Option<String>) -> Result<Option<String>, String> {
    let Some(r) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let shown = tagwatch_core::prefix(&r, SHOWN);
    let more = if shown.len() < r.len() { "…" } else { "" };
    if r.chars().count() > MAX_RELEASE {
        return Err(format!(
            "{name}: {shown:?}{more} is longer than {MAX_RELEASE} characters; no report carries such a release"
        ));
    }
    if tagwatch_core::report::has_control(&r) {
        return Err(format!(
            "{name}: {shown:?}{more} contains a control character; no report carries such a release"
        ));
    }
    Ok(Some(r))
}

/// `count` per [`PER_PAGE_VIEWS`] page views, to one decimal; `null`
/// without page views.
fn rate(count: i64, page_views: i64) -> Value {
    if page_views <= 0 {
        return Value::Null;
    }
    #[allow(clippy::cast_precision_loss)] // Counts far below 2^52.
    let r = count as f64 * PER_PAGE_VIEWS as f64 / page_views as f64;
    json!((r * 10.0).round() / 10.0)
}

fn index(list: &[Named]) -> BTreeMap<&str, i64> {
    list.iter().map(|n| (n.name.as_str(), n.count)).collect()
}

/// The names of `a` that `b` lacks, with their counts and rates in `a`'s
/// page views, most common first (then by name).
fn only_in(key: &str, count: &str, a: &[Named], a_views: i64, b: &[Named]) -> Vec<Value> {
    let b = index(b);
    let mut out: Vec<&Named> = a
        .iter()
        .filter(|n| !b.contains_key(n.name.as_str()))
        .collect();
    out.sort_by(|x, y| y.count.cmp(&x.count).then_with(|| x.name.cmp(&y.name)));
    out.iter()
        .map(|n| {
            json!({
                key: n.name,
                count: n.count,
                format!("per_{PER_PAGE_VIEWS}_page_views"): rate(n.count, a_views),
            })
        })
        .collect()
}

/// What changed from release `from` to release `to` of `site`: the body of
/// `GET /api/diff`. The same release on both sides: every list empty.
pub fn diff(
    site: &str,
    (from, a): (&str, &ReleaseProfile),
    (to, b): (&str, &ReleaseProfile),
) -> Value {
    let same = from == to;
    let pick = |x: Vec<Value>| if same { Vec::new() } else { x };
    let (av, bv) = (a.page_views, b.page_views);
    let a_days = index(&a.cookie_days);
    let mut grew: Vec<Value> = b
        .cookie_days
        .iter()
        .filter_map(|n| {
            let before = *a_days.get(n.name.as_str())?;
            (n.count > before)
                .then(|| json!({"cookie": n.name, "from_days": before, "to_days": n.count}))
        })
        .collect();
    if same {
        grew.clear();
    }
    let cap = |list: &[Named]| list.len() >= usize::try_from(MAX_DIFF_NAMES).unwrap_or(usize::MAX);
    json!({
        "site": site,
        "from": {"release": from, "page_views": av},
        "to": {"release": to, "page_views": bv},
        "per_page_views": PER_PAGE_VIEWS,
        "vendors": {
            "appeared": pick(only_in("vendor", "page_views", &b.vendors, bv, &a.vendors)),
            "vanished": pick(only_in("vendor", "page_views", &a.vendors, av, &b.vendors)),
        },
        "hosts": {
            "new": pick(only_in("host", "page_views", &b.hosts, bv, &a.hosts)),
            "truncated": cap(&a.hosts) || cap(&b.hosts),
        },
        "cookies": {
            "new": pick(only_in("cookie", "page_views", &b.cookies, bv, &a.cookies)),
            "truncated": cap(&a.cookies) || cap(&b.cookies),
            "lifetime_grew": grew,
        },
        "finding_types": {
            "appeared": pick(only_in("type", "findings", &b.types, bv, &a.types)),
            "disappeared": pick(only_in("type", "findings", &a.types, av, &b.types)),
        },
    })
}

/// The body of a release alert (`--webhook`): the site key, the two
/// releases and what is new, all names the site or the catalog chose — no
/// page URL, no report data.
pub fn alert_body(n: &ReleaseNews) -> Value {
    let what = match n.kind {
        ReleaseItemKind::FindingType => "finding type",
        ReleaseItemKind::Vendor => "vendor",
    };
    json!({
        "event": "release_introduced",
        "site": n.site,
        "release": n.release,
        "previous": n.previous,
        "kind": n.kind.as_str(),
        "item": n.item,
        "at": n.at,
        "text": format!(
            "tagwatch: release {:?} of site {} introduced {what} {} (not in the previous release {:?})",
            n.release, n.site, n.item, n.previous
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn named(list: &[(&str, i64)]) -> Vec<Named> {
        list.iter()
            .map(|(n, c)| Named {
                name: (*n).into(),
                count: *c,
            })
            .collect()
    }

    #[test]
    fn params_refuse_what_no_report_carries() {
        assert_eq!(param("release", None), Ok(None));
        assert_eq!(param("release", Some(String::new())), Ok(None));
        assert_eq!(param("release", Some(" ".into())), Ok(Some(" ".into())));
        // White space to `trim`, a control character to the schema: refused,
        // not read as no filter.
        assert!(param("release", Some("\u{85}".into())).is_err());
        let sqlish = "1' OR '1'='1; DROP TABLE findings; --";
        assert_eq!(
            param("release", Some(sqlish.into())),
            Ok(Some(sqlish.into()))
        );
        let top = "é".repeat(MAX_RELEASE);
        assert_eq!(param("from", Some(top.clone())), Ok(Some(top.clone())));
        let long = param("to", Some("x".repeat(1_000_000))).unwrap_err();
        assert!(
            long.starts_with("to: \"xxxx") && long.contains("longer than 128"),
            "{long}"
        );
        assert!(long.len() < 200, "{long}");
        let ctl = param("release", Some("a\u{0}b".into())).unwrap_err();
        assert!(ctl.contains("control character"), "{ctl}");
        assert!(param("release", Some("a\u{85}".into())).is_err());
        assert!(param("release", Some(format!("{top}é"))).is_err());
    }

    #[test]
    fn a_diff_names_what_appeared_vanished_and_grew_per_page_views() {
        let a = ReleaseProfile {
            page_views: 4,
            vendors: named(&[("intercom", 4), ("hotjar", 2)]),
            hosts: named(&[("widget.intercom.io", 4)]),
            cookies: named(&[("intercom-id-abc", 4)]),
            cookie_days: named(&[("intercom-id-abc", 30)]),
            types: named(&[("cookie_before_consent", 1)]),
        };
        let b = ReleaseProfile {
            page_views: 3,
            vendors: named(&[("intercom", 3), ("facebook", 3)]),
            hosts: named(&[("widget.intercom.io", 3), ("connect.facebook.net", 3)]),
            cookies: named(&[("intercom-id-abc", 3), ("_fbp", 1)]),
            cookie_days: named(&[("intercom-id-abc", 270)]),
            types: named(&[("script_before_consent", 3)]),
        };
        let d = diff("tw_a", ("r1", &a), ("r2", &b));
        assert_eq!(
            d["vendors"]["appeared"],
            json!([{"vendor": "facebook", "page_views": 3, "per_1000_page_views": 1000.0}])
        );
        assert_eq!(
            d["vendors"]["vanished"],
            json!([{"vendor": "hotjar", "page_views": 2, "per_1000_page_views": 500.0}])
        );
        assert_eq!(d["hosts"]["new"][0]["host"], "connect.facebook.net");
        assert_eq!(
            d["cookies"]["new"],
            json!([{"cookie": "_fbp", "page_views": 1, "per_1000_page_views": 333.3}])
        );
        assert_eq!(
            d["cookies"]["lifetime_grew"],
            json!([{"cookie": "intercom-id-abc", "from_days": 30, "to_days": 270}])
        );
        assert_eq!(
            d["finding_types"]["appeared"][0]["type"],
            "script_before_consent"
        );
        assert_eq!(
            d["finding_types"]["disappeared"][0]["type"],
            "cookie_before_consent"
        );
        // The same release: nothing changed.
        let same = diff("tw_a", ("r2", &b), ("r2", &b));
        for list in [
            &same["vendors"]["appeared"],
            &same["vendors"]["vanished"],
            &same["hosts"]["new"],
            &same["cookies"]["new"],
            &same["cookies"]["lifetime_grew"],
            &same["finding_types"]["appeared"],
            &same["finding_types"]["disappeared"],
        ] {
            assert_eq!(list, &json!([]));
        }
        // No page views: no rate.
        let empty = ReleaseProfile::default();
        let d = diff("tw_a", ("r0", &empty), ("r2", &b));
        assert_eq!(d["vendors"]["vanished"], json!([]));
        let d = diff("tw_a", ("r2", &b), ("r0", &empty));
        assert_eq!(d["vendors"]["vanished"][0]["per_1000_page_views"], 1000.0);
        let zero = ReleaseProfile {
            types: named(&[("gpc_ignored", 1)]),
            ..ReleaseProfile::default()
        };
        let d = diff("tw_a", ("r0", &empty), ("rz", &zero));
        assert_eq!(
            d["finding_types"]["appeared"][0]["per_1000_page_views"],
            Value::Null
        );
    }

    #[test]
    fn an_alert_carries_names_only() {
        let n = ReleaseNews {
            site: "tw_a".into(),
            release: "r2\"".into(),
            previous: "r1".into(),
            kind: ReleaseItemKind::Vendor,
            item: "facebook".into(),
            at: "2026-12-05T10:00:00.000Z".into(),
        };
        let body = alert_body(&n);
        let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            ["at", "event", "item", "kind", "previous", "release", "site", "text"]
        );
        assert_eq!(body["kind"], "vendor");
        assert!(body["text"]
            .as_str()
            .unwrap()
            .contains("introduced vendor facebook"));
    }
}
