//! The read API's queries over the events tables, answering exactly what
//! the SQL store answers for the same reports (`tagwatch_store::Store`'s
//! contract): rows of one finding key merged at read time, the latest
//! inventory per page view, sums that saturate.
//!
//! Merging at read time (`GROUP BY` the dedupe key, `argMax` for the
//! latest inventory) instead of `FINAL`: a finding's rows may sit in two
//! week partitions (a resent beacon observed later), which `FINAL` would not
//! merge, and one site's rows are few enough to group per query.

use std::collections::BTreeMap;

use serde_json::Value;
use tagwatch_store::{
    ConsentTally, FindingRow, FindingsQuery, HealthQuery, HealthRow, HostTotals, InventoryQuery,
    InventoryTotals, Named, ReleaseProfile, Stats, StatsQuery, StoreError, Tally, Usage,
    VendorTotals,
};

use crate::client::{int, opt_text, quote, saturated, text, texts, Client};
use crate::schema::SiteTables;

/// One row per finding key of a site, as the SQL upsert leaves it: the
/// first arrival's fields, the largest count (for additive types the sum
/// over distinct inserts), the earliest `at`. Columns: site, page_view,
/// type, vendor, evidence, f_page, f_category, f_consent, f_consent_source,
/// f_count, f_at, f_received_at, f_release, f_evidence_kind.
fn findings_of(c: &Client, site: &str) -> String {
    format!(
        "SELECT site, page_view, type, vendor, evidence,
                argMin(page, received_at) AS f_page,
                argMin(category, received_at) AS f_category,
                argMin(consent, received_at) AS f_consent,
                argMin(consent_source, received_at) AS f_consent_source,
                if(type = 'csp_blocked',
                   arraySum(arrayMap(x -> tupleElement(x, 2), groupUniqArray((token, count)))),
                   max(count)) AS f_count,
                min(at) AS f_at,
                min(received_at) AS f_received_at,
                argMin(release, received_at) AS f_release,
                argMin(evidence_kind, received_at) AS f_evidence_kind
         FROM {} WHERE site = {}
         GROUP BY site, page_view, type, vendor, evidence",
        tables(c, site).of("findings"),
        quote(site)
    )
}

/// The latest inventory of each page view of a site (latest `at`, then
/// latest arrival). Columns: page_view, i_page, i_at, and the arrays as
/// `i_` + their name.
fn inventories_of(c: &Client, site: &str) -> String {
    let latest = |col: &str| format!("argMax({col}, (at, received_at)) AS i_{col}");
    let columns: Vec<String> = [
        "page",
        "at",
        "v_vendor",
        "v_requests",
        "v_script_requests",
        "v_transfer_bytes",
        "v_encoded_bytes",
        "v_duration_ms",
        "v_hosts",
        "v_regions",
        "v_cookies",
        "h_host",
        "h_requests",
        "h_script_requests",
        "h_transfer_bytes",
        "h_encoded_bytes",
        "h_duration_ms",
        "release",
    ]
    .iter()
    .map(|c| latest(c))
    .collect();
    format!(
        "SELECT page_view, {} FROM {} WHERE site = {} GROUP BY page_view",
        columns.join(", "),
        tables(c, site).of("inventories"),
        quote(site)
    )
}

fn tables<'a>(c: &'a Client, site: &'a str) -> SiteTables<'a> {
    SiteTables {
        target: c.target(),
        site,
    }
}

/// `AND col >= since AND col < until` for the bounds given.
fn window(col: &str, since: &Option<String>, until: &Option<String>) -> String {
    let mut out = String::new();
    if let Some(since) = since {
        out.push_str(&format!(" AND {col} >= {}", quote(since)));
    }
    if let Some(until) = until {
        out.push_str(&format!(" AND {col} < {}", quote(until)));
    }
    out
}

/// `AND col IN (…)` when `values` is not empty.
fn any_of(col: &str, values: &[String]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let list: Vec<String> = values.iter().map(|v| quote(v)).collect();
    format!(" AND {col} IN ({})", list.join(", "))
}

/// `AND col = release` when a release is asked for (stored `''` for none;
/// an asked release is never empty).
fn of_release(col: &str, release: &Option<String>) -> String {
    release
        .as_ref()
        .map_or_else(String::new, |r| format!(" AND {col} = {}", quote(r)))
}

/// A stored release: `None` for `''`.
fn stored_release(v: &Value) -> Result<Option<String>, StoreError> {
    let r = text(v)?;
    Ok((!r.is_empty()).then_some(r))
}

fn cell(row: &[Value], i: usize) -> &Value {
    row.get(i).unwrap_or(&Value::Null)
}

fn json_or_null(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

pub fn findings(c: &Client, q: &FindingsQuery) -> Result<Vec<FindingRow>, StoreError> {
    let mut filter = window("f_at", &q.since, &q.until);
    filter.push_str(&of_release("f_release", &q.release));
    filter.push_str(&any_of("type", &q.kinds));
    filter.push_str(&any_of("vendor", &q.vendors));
    if let Some(page) = &q.page {
        filter.push_str(&format!(" AND f_page = {}", quote(page)));
    }
    if let Some(pv) = &q.page_view {
        filter.push_str(&format!(" AND page_view = {}", quote(pv)));
    }
    if let Some(category) = &q.category {
        filter.push_str(&format!(" AND f_category = {}", quote(category)));
    }
    // The SQL store's order: `at`, then insertion (a group writes in key
    // order): received_at, then the key.
    let dir = if q.newest_first { " DESC" } else { "" };
    let sql = format!(
        "SELECT type, vendor, site, f_page, f_at, page_view, f_category, f_count, evidence,
                f_consent, f_received_at, f_release
         FROM ({}) WHERE 1{filter}
         ORDER BY f_at{dir}, f_received_at{dir}, site{dir}, page_view{dir}, type{dir},
                  vendor{dir}, evidence{dir}
         LIMIT {}",
        findings_of(c, &q.site),
        q.limit
    );
    c.rows(&sql)?
        .iter()
        .map(|row| {
            let category = text(cell(row, 6))?;
            Ok(FindingRow {
                kind: text(cell(row, 0))?,
                vendor: text(cell(row, 1))?,
                site: text(cell(row, 2))?,
                page: text(cell(row, 3))?,
                at: text(cell(row, 4))?,
                page_view: text(cell(row, 5))?,
                category: (!category.is_empty()).then_some(category),
                count: int(cell(row, 7))?,
                evidence: json_or_null(&text(cell(row, 8))?),
                consent: json_or_null(&text(cell(row, 9))?),
                received_at: text(cell(row, 10))?,
                release: stored_release(cell(row, 11))?,
            })
        })
        .collect()
}

/// `rows_at_once` answers as many answers as queries: never.
fn answers_missing() -> StoreError {
    StoreError::Events {
        message: "fewer answers than queries".into(),
        unreachable: false,
    }
}

/// Most findings first, then key (byte order), as the SQL `ORDER BY 2
/// DESC, 1`.
fn sort_tallies(t: &mut [Tally]) {
    t.sort_by(|a, b| b.findings.cmp(&a.findings).then_with(|| a.key.cmp(&b.key)));
}

pub fn stats(c: &Client, q: &StatsQuery) -> Result<Stats, StoreError> {
    let window_f = window("f_at", &q.since, &q.until) + &of_release("f_release", &q.release);
    let findings = findings_of(c, &q.site);
    let window_i = window("i_at", &q.since, &q.until) + &of_release("i_release", &q.release);
    // Three queries, sent at once. Every tally in one: the group (0 type,
    // 1 vendor, 2 page, 3 day, 4 total), its key, rows and the count sum
    // (with its float twin). The page views. The consent states, counted
    // per stored text and read as JSON here (the texts are few; ClickHouse
    // 18 has no JSON functions to group by).
    let answers = c.rows_at_once(&[
        format!(
            "SELECT g, k, count(), sum(f_count), sum(toFloat64(f_count))
             FROM ({findings})
             ARRAY JOIN [0, 1, 2, 3, 4] AS g,
                        [toString(type), toString(vendor), f_page, substring(f_at, 1, 10), ''] AS k
             WHERE 1{window_f}
             GROUP BY g, k"
        ),
        format!(
            "SELECT uniqExact(pv) FROM (
               SELECT page_view AS pv FROM ({}) WHERE 1{window_i}
               UNION ALL
               SELECT page_view AS pv FROM ({findings}) WHERE type != 'csp_blocked'{window_f})",
            inventories_of(c, &q.site)
        ),
        format!(
            "SELECT f_consent, f_consent_source, count() FROM ({findings})
             WHERE type != 'csp_blocked'{window_f} GROUP BY f_consent, f_consent_source"
        ),
    ])?;
    let [tallies, page_views, consent_rows]: [Vec<Vec<Value>>; 3] =
        answers.try_into().map_err(|_| answers_missing())?;
    let mut groups: [Vec<Tally>; 5] = Default::default();
    for row in &tallies {
        let g = usize::try_from(int(cell(row, 0))?).unwrap_or(usize::MAX);
        if let Some(list) = groups.get_mut(g) {
            list.push(Tally {
                key: text(cell(row, 1))?,
                findings: int(cell(row, 2))?,
                occurrences: saturated(cell(row, 3), cell(row, 4))?,
            });
        }
    }
    let [mut by_type, mut by_vendor, mut by_page, mut by_day, total] = groups;
    for list in [&mut by_type, &mut by_vendor, &mut by_page] {
        sort_tallies(list);
    }
    by_page.truncate(usize::try_from(q.max_pages).unwrap_or(usize::MAX));
    by_day.sort_by(|a, b| a.key.cmp(&b.key));
    let total = total.into_iter().next().unwrap_or_default();
    let total = Tally {
        key: String::new(),
        ..total
    };

    let page_views = page_views
        .first()
        .map(|row| int(cell(row, 0)))
        .transpose()?
        .unwrap_or(0);

    let mut consent: Vec<ConsentTally> = Vec::new();
    for row in consent_rows {
        let Value::Object(state) = json_or_null(&text(cell(&row, 0))?) else {
            continue;
        };
        let flag = |k: &str| state.get(k).and_then(Value::as_bool);
        // The source from its typed column, as the SQL store reads it.
        let source = opt_text(cell(&row, 1))?;
        let categories = [
            flag("necessary"),
            flag("functional"),
            flag("analytics"),
            flag("marketing"),
        ];
        let n = int(cell(&row, 2))?;
        match consent
            .iter_mut()
            .find(|t| t.source == source && t.categories == categories)
        {
            Some(t) => t.findings = t.findings.saturating_add(n),
            None => consent.push(ConsentTally {
                source,
                categories,
                findings: n,
            }),
        }
    }
    ConsentTally::sort(&mut consent);
    Ok(Stats {
        total,
        by_type,
        by_vendor,
        by_page,
        by_day,
        page_views,
        consent,
    })
}

pub fn health(c: &Client, q: &HealthQuery) -> Result<Vec<HealthRow>, StoreError> {
    // FINAL: a retried insert's rows (same token and seq) count once.
    let sql = format!(
        "SELECT site, page, page_view, status, reason, at, received_at
         FROM {} FINAL WHERE site = {}{}
         ORDER BY at, received_at, token, seq
         LIMIT {}",
        tables(c, &q.site).of("health"),
        quote(&q.site),
        window("at", &q.since, &None),
        q.limit
    );
    c.rows(&sql)?
        .iter()
        .map(|row| {
            Ok(HealthRow {
                site: text(cell(row, 0))?,
                page: text(cell(row, 1))?,
                page_view: opt_text(cell(row, 2))?,
                status: text(cell(row, 3))?,
                reason: opt_text(cell(row, 4))?,
                at: text(cell(row, 5))?,
                received_at: text(cell(row, 6))?,
            })
        })
        .collect()
}

/// `sum(x), sum(toFloat64(x))` for each usage number of a prefix.
fn usage_sums(prefix: &str) -> String {
    [
        "requests",
        "script_requests",
        "transfer_bytes",
        "encoded_bytes",
        "duration_ms",
    ]
    .iter()
    .map(|n| format!("sum({prefix}{n}), sum(toFloat64({prefix}{n}))"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn usage_at(row: &[Value], first: usize) -> Result<Usage, StoreError> {
    let n = |i: usize| saturated(cell(row, first + 2 * i), cell(row, first + 2 * i + 1));
    Ok(Usage {
        requests: n(0)?,
        script_requests: n(1)?,
        transfer_bytes: n(2)?,
        encoded_bytes: n(3)?,
        duration_ms: n(4)?,
    })
}

/// Distinct names in byte order, at most `max`.
fn names(v: &Value, max: usize) -> Result<Vec<String>, StoreError> {
    let mut list = texts(v)?;
    list.sort_unstable();
    list.dedup();
    list.truncate(max);
    Ok(list)
}

pub fn inventory(c: &Client, q: &InventoryQuery) -> Result<InventoryTotals, StoreError> {
    let latest = format!(
        "SELECT * FROM ({}) WHERE 1{}{}",
        inventories_of(c, &q.site),
        window("i_at", &q.since, &None),
        of_release("i_release", &q.release)
    );
    // The page views, the vendors and the unclassified hosts: three
    // queries, sent at once.
    let answers = c.rows_at_once(&[
        format!("SELECT count() FROM ({latest})"),
        format!(
            "SELECT vendor, count(), {},
                    groupUniqArrayArray(hosts), groupUniqArrayArray(regions),
                    groupUniqArrayArray(cookies), groupUniqArray(i_page)
             FROM ({latest})
             ARRAY JOIN i_v_vendor AS vendor, i_v_requests AS requests,
                        i_v_script_requests AS script_requests,
                        i_v_transfer_bytes AS transfer_bytes, i_v_encoded_bytes AS encoded_bytes,
                        i_v_duration_ms AS duration_ms, i_v_hosts AS hosts,
                        i_v_regions AS regions, i_v_cookies AS cookies
             GROUP BY vendor",
            usage_sums("")
        ),
        format!(
            "SELECT host, count(), {}
             FROM ({latest})
             ARRAY JOIN i_h_host AS host, i_h_requests AS requests,
                        i_h_script_requests AS script_requests,
                        i_h_transfer_bytes AS transfer_bytes, i_h_encoded_bytes AS encoded_bytes,
                        i_h_duration_ms AS duration_ms
             GROUP BY host",
            usage_sums("")
        ),
    ])?;
    let [page_views, vendors, hosts]: [Vec<Vec<Value>>; 3] =
        answers.try_into().map_err(|_| answers_missing())?;
    let page_views = page_views
        .first()
        .map(|row| int(cell(row, 0)))
        .transpose()?
        .unwrap_or(0);
    let max = usize::try_from(q.max_names).unwrap_or(usize::MAX);
    let mut vendors = vendors
        .iter()
        .map(|row| {
            Ok(VendorTotals {
                vendor: text(cell(row, 0))?,
                page_views: int(cell(row, 1))?,
                usage: usage_at(row, 2)?,
                hosts: names(cell(row, 12), max)?,
                regions: names(cell(row, 13), max)?,
                cookies: names(cell(row, 14), max)?,
                pages: names(cell(row, 15), max)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    vendors.sort_by(|a, b| {
        b.page_views
            .cmp(&a.page_views)
            .then_with(|| b.usage.requests.cmp(&a.usage.requests))
            .then_with(|| a.vendor.cmp(&b.vendor))
    });
    let mut unclassified = hosts
        .iter()
        .map(|row| {
            Ok(HostTotals {
                host: text(cell(row, 0))?,
                page_views: int(cell(row, 1))?,
                usage: usage_at(row, 2)?,
            })
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    unclassified.sort_by(|a, b| {
        b.page_views
            .cmp(&a.page_views)
            .then_with(|| b.usage.requests.cmp(&a.usage.requests))
            .then_with(|| a.host.cmp(&b.host))
    });
    unclassified.truncate(usize::try_from(q.max_hosts).unwrap_or(usize::MAX));
    Ok(InventoryTotals {
        page_views,
        vendors,
        unclassified,
    })
}

fn named(rows: &[Vec<Value>]) -> Result<Vec<Named>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok(Named {
                name: text(cell(row, 0))?,
                count: int(cell(row, 1))?,
            })
        })
        .collect()
}

/// One release's reports of a site for `/api/diff`, as the SQL store
/// aggregates them (`Store::release_profile`): its page views (an
/// inventory or a monitor finding of the release), vendors, hosts and
/// cookie names with the page views that had each, cookies' longest
/// lifetimes in findings' evidence, finding types with their rows. Six
/// queries, sent at once.
pub fn release_profile(
    c: &Client,
    site: &str,
    release: &str,
    max_names: u32,
) -> Result<ReleaseProfile, StoreError> {
    let r = quote(release);
    let findings = format!(
        "SELECT * FROM ({}) WHERE f_release = {r}",
        findings_of(c, site)
    );
    let monitor = format!("SELECT * FROM ({findings}) WHERE type != 'csp_blocked'");
    let latest = format!(
        "SELECT * FROM ({}) WHERE i_release = {r}",
        inventories_of(c, site)
    );
    // Each host or cookie name once per page view (the SQL store's UNION).
    let per_page_view = |names: &str| {
        format!(
            "SELECT name, uniqExact(page_view) AS n FROM ({latest}) ARRAY JOIN {names} AS name
             GROUP BY name ORDER BY n DESC, name LIMIT {max_names}"
        )
    };
    let answers = c.rows_at_once(&[
        format!(
            "SELECT uniqExact(pv) FROM (
               SELECT page_view AS pv FROM ({latest})
               UNION ALL
               SELECT page_view AS pv FROM ({monitor}))"
        ),
        format!(
            "SELECT vendor, uniqExact(pv) AS n FROM (
               SELECT page_view AS pv, vendor FROM ({latest}) ARRAY JOIN i_v_vendor AS vendor
               UNION ALL
               SELECT page_view AS pv, toString(vendor) AS vendor FROM ({monitor}))
             GROUP BY vendor ORDER BY n DESC, vendor"
        ),
        per_page_view(
            "arrayConcat(arrayReduce('groupUniqArrayArray', i_v_hosts), i_h_host)",
        ),
        per_page_view("arrayReduce('groupUniqArrayArray', i_v_cookies)"),
        // The evidence texts, read as JSON here (ClickHouse 18 has no JSON
        // functions that parse them as the SQL stores do).
        format!("SELECT DISTINCT evidence FROM ({findings}) WHERE f_evidence_kind = 'cookie'"),
        format!(
            "SELECT toString(type) AS t, count() AS n FROM ({findings}) GROUP BY t ORDER BY n DESC, t"
        ),
    ])?;
    let [page_views, vendors, hosts, cookies, evidence, types]: [Vec<Vec<Value>>; 6] =
        answers.try_into().map_err(|_| answers_missing())?;
    let mut longest: BTreeMap<String, i64> = BTreeMap::new();
    for row in &evidence {
        let Value::Object(e) = json_or_null(&text(cell(row, 0))?) else {
            continue;
        };
        let (Some(cookie), Some(days)) = (
            e.get("cookie").and_then(Value::as_str),
            e.get("days").and_then(Value::as_i64),
        ) else {
            continue;
        };
        let d = longest.entry(cookie.to_owned()).or_insert(days);
        *d = (*d).max(days);
    }
    Ok(ReleaseProfile {
        page_views: page_views
            .first()
            .map(|row| int(cell(row, 0)))
            .transpose()?
            .unwrap_or(0),
        vendors: named(&vendors)?,
        hosts: named(&hosts)?,
        cookies: named(&cookies)?,
        cookie_days: longest
            .into_iter()
            .take(usize::try_from(max_names).unwrap_or(usize::MAX))
            .map(|(name, count)| Named { name, count })
            .collect(),
        types: named(&types)?,
    })
}
