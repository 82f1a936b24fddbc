//! What the collector tells operators: metrics (`GET /metrics`, the
//! Prometheus text format 0.0.4, kept and written by `prometheus-client`),
//! the per-request log events (`tracing`, printed by [`crate::logging`])
//! and the `--webhook` alerts. See docs/collector.md#operations.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::AtomicI64;
use std::sync::OnceLock;
use std::time::Duration;

use axum::http::StatusCode;
use prometheus_client::encoding::prometheus_text;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde_json::{json, Value};

use tagwatch_store::{Batch, FindingKind, FirstSeen, ReleaseNews};

use crate::logging::REQUEST;

/// Upper bounds (seconds) of the write latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

/// The ingest endpoints, as the `endpoint` label says them.
const ENDPOINTS: [&str; 2] = ["reports", "csp"];
/// The kinds of report, as the `kind` label says them.
const REPORT_KINDS: [&str; 3] = ["finding", "health", "inventory"];

/// Why the collector refused or closed a connection itself (the
/// `reason` of `tagwatch_connections_closed_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dropped {
    /// Refused on accept: `--max-connections` were open.
    Cap,
    /// No whole request head within `--header-timeout`.
    HeaderTimeout,
    /// Kept alive without a request for `--idle-timeout`.
    IdleTimeout,
}

impl Dropped {
    pub const ALL: [Dropped; 3] = [Self::Cap, Self::HeaderTimeout, Self::IdleTimeout];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cap => "connection_cap",
            Self::HeaderTimeout => "header_timeout",
            Self::IdleTimeout => "idle_timeout",
        }
    }
}

/// What one accepted request carried.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchCounts {
    /// Findings per type, in type order.
    pub findings: Vec<(FindingKind, u64)>,
    pub health: u64,
    pub inventories: u64,
}

impl BatchCounts {
    pub fn of(batch: &Batch) -> Self {
        let mut findings: Vec<(FindingKind, u64)> = Vec::new();
        for f in &batch.findings {
            match findings.iter_mut().find(|(k, _)| *k == f.kind) {
                Some((_, n)) => *n += 1,
                None => findings.push((f.kind, 1)),
            }
        }
        findings.sort_unstable();
        Self {
            findings,
            health: u64::try_from(batch.health.len()).unwrap_or(u64::MAX),
            inventories: u64::try_from(batch.inventories.len()).unwrap_or(u64::MAX),
        }
    }
}

/// A label set of one label.
type One = [(&'static str, &'static str); 1];
/// A label set of two labels.
type Two = [(&'static str, &'static str); 2];

/// The collector's metrics (the names and help docs/collector.md lists).
struct Metrics {
    registry: Registry,
    requests_accepted: Family<One, Counter>,
    reports_accepted: Family<Two, Counter>,
    requests_refused: Family<Two, Counter>,
    findings: Family<One, Counter>,
    queue_depth: Gauge,
    write_duration: Histogram,
    write_failures: Counter,
    connections_accepted: Counter,
    connections_open: Gauge,
    connections_max: Gauge<i64, AtomicI64>,
    connections_closed: Family<One, Counter>,
    /// The counters an accepted request adds to, by index once made.
    accepted: AcceptedCounters,
}

/// The counters of `Events::accepted`, each kept once its family made it:
/// counting is then an atomic add, not a label look-up in the family (a
/// SipHash of the labels and a read lock: ≈ 550 instructions each, 13 for
/// the golden batch; docs/benchmarks.md, "Outside the writer thread"). A
/// series still appears in `/metrics` when it is first counted, as before.
struct AcceptedCounters {
    /// By [`ENDPOINTS`] index.
    requests: [OnceLock<Counter>; ENDPOINTS.len()],
    /// By [`ENDPOINTS`] and [`REPORT_KINDS`] index.
    reports: [[OnceLock<Counter>; REPORT_KINDS.len()]; ENDPOINTS.len()],
    /// By the position of the type in [`FindingKind::all`].
    findings: Vec<OnceLock<Counter>>,
}

impl AcceptedCounters {
    fn new() -> Self {
        Self {
            requests: Default::default(),
            reports: Default::default(),
            findings: FindingKind::all().map(|_| OnceLock::new()).collect(),
        }
    }
}

/// Adds `n` to the counter of `labels` in `family`: through `slot`, which
/// keeps it once made, where these labels have one; else looked up in the
/// family (a label no slot is for).
fn add<S: Clone + Eq + std::hash::Hash>(
    slot: Option<&OnceLock<Counter>>,
    family: &Family<S, Counter>,
    labels: S,
    n: u64,
) {
    match slot {
        Some(slot) => slot
            .get_or_init(|| family.get_or_create(&labels).clone())
            .inc_by(n),
        None => family.get_or_create(&labels).inc_by(n),
    };
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::default();
        let m = Self {
            requests_accepted: Family::default(),
            reports_accepted: Family::default(),
            requests_refused: Family::default(),
            findings: Family::default(),
            queue_depth: Gauge::default(),
            write_duration: Histogram::new(LATENCY_BUCKETS),
            write_failures: Counter::default(),
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            connections_max: Gauge::default(),
            connections_closed: Family::default(),
            accepted: AcceptedCounters::new(),
            registry: Registry::default(),
        };
        // Listed even before anything happens, as they always were.
        for endpoint in ENDPOINTS {
            drop(m.requests_accepted.get_or_create(&[("endpoint", endpoint)]));
        }
        for why in Dropped::ALL {
            drop(
                m.connections_closed
                    .get_or_create(&[("reason", why.as_str())]),
            );
        }
        registry.register(
            "tagwatch_requests_accepted",
            "Ingest requests accepted (answered 204), by endpoint",
            m.requests_accepted.clone(),
        );
        registry.register(
            "tagwatch_reports_accepted",
            "Reports accepted, by endpoint and kind (finding, health, inventory)",
            m.reports_accepted.clone(),
        );
        registry.register(
            "tagwatch_requests_refused",
            "Ingest requests refused, by endpoint and reason",
            m.requests_refused.clone(),
        );
        registry.register(
            "tagwatch_findings",
            "Findings accepted, by type (a resent finding counts again)",
            m.findings.clone(),
        );
        registry.register(
            "tagwatch_writer_queue_depth",
            "Accepted batches waiting for the writer or its commit",
            m.queue_depth.clone(),
        );
        registry.register(
            "tagwatch_write_failures",
            "Group commits the store refused",
            m.write_failures.clone(),
        );
        registry.register(
            "tagwatch_connections_accepted",
            "Connections accepted and served",
            m.connections_accepted.clone(),
        );
        registry.register(
            "tagwatch_connections_open",
            "Connections open now",
            m.connections_open.clone(),
        );
        registry.register(
            "tagwatch_connections_max",
            "The cap on open connections (--max-connections, or the descriptor limit minus a reserve)",
            m.connections_max.clone(),
        );
        registry.register(
            "tagwatch_connections_closed",
            "Connections the collector refused or closed itself, by reason (connection_cap, header_timeout, idle_timeout)",
            m.connections_closed.clone(),
        );
        registry.register(
            "tagwatch_write_duration_seconds",
            "Time of one group commit (one transaction, fsync included)",
            m.write_duration.clone(),
        );
        Self { registry, ..m }
    }
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Shared by the HTTP handlers, the connections and the writer thread.
#[derive(Debug)]
pub struct Events {
    metrics: Metrics,
    /// Alerts for `--webhook`, to its sender thread.
    webhook: Option<std::sync::mpsc::SyncSender<Value>>,
}

/// Alerts waiting for the webhook thread; more are dropped (and logged):
/// the findings themselves are stored either way.
const WEBHOOK_QUEUE: usize = 1024;
/// Tries per alert, and the waits between them.
const WEBHOOK_BACKOFF: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(5)];
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// The body of a `--webhook` alert.
pub fn alert_body(f: &FirstSeen) -> Value {
    json!({
        "event": "finding_type_first_seen",
        "site": f.site,
        "type": f.kind.as_str(),
        "vendor": f.vendor,
        "page": f.page,
        "at": f.at,
        "text": format!(
            "tagwatch: first {} finding for site {} ({} on {})",
            f.kind.as_str(), f.site, f.vendor, f.page
        ),
    })
}

/// POSTs one alert, retrying on network errors and 5xx/429.
fn send_alert(agent: &ureq::Agent, url: &str, alert: &Value) {
    let body = alert.to_string();
    let mut last = String::new();
    for attempt in 0..=WEBHOOK_BACKOFF.len() {
        if attempt > 0 {
            if let Some(wait) = WEBHOOK_BACKOFF.get(attempt - 1) {
                std::thread::sleep(*wait);
            }
        }
        match agent
            .post(url)
            .header("Content-Type", "application/json")
            .header("User-Agent", "tagwatch-webhook")
            .send(body.as_str())
        {
            Ok(resp) if resp.status().is_success() => return,
            Ok(resp) => {
                let status = resp.status().as_u16();
                last = format!("answered {status}");
                if !(status == 429 || status >= 500) {
                    break;
                }
            }
            Err(e) => last = e.to_string(),
        }
    }
    tracing::warn!(
        event = "webhook_failed",
        error = last.as_str(),
        fields = %json!({"alert": alert}),
        "webhook: alert not delivered ({last})"
    );
}

impl Default for Events {
    fn default() -> Self {
        Self::new()
    }
}

impl Events {
    pub fn new() -> Self {
        Self {
            metrics: Metrics::new(),
            webhook: None,
        }
    }

    /// Starts the thread that POSTs alerts to `url`.
    pub fn with_webhook(mut self, url: String) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Value>(WEBHOOK_QUEUE);
        std::thread::Builder::new()
            .name("tagwatch-webhook".into())
            .spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(WEBHOOK_TIMEOUT))
                    .http_status_as_error(false)
                    .build()
                    .into();
                for alert in rx {
                    send_alert(&agent, &url, &alert);
                }
            })?;
        self.webhook = Some(tx);
        Ok(self)
    }

    /// Finding types a site had for the first time: logged, and alerted
    /// with `--webhook`.
    pub fn first_seen(&self, list: &[FirstSeen]) {
        for f in list {
            tracing::info!(
                event = "finding_type_first_seen",
                site = f.site.as_str(),
                r#type = f.kind.as_str(),
                vendor = f.vendor.as_str(),
                page = f.page.as_str(),
                "first {} finding for site {}",
                f.kind.as_str(),
                f.site
            );
            if let Some(tx) = &self.webhook {
                if tx.try_send(alert_body(f)).is_err() {
                    tracing::warn!(
                        event = "webhook_dropped",
                        site = f.site.as_str(),
                        r#type = f.kind.as_str(),
                        "webhook queue full or stopped; alert dropped"
                    );
                }
            }
        }
    }

    /// What releases introduced that their previous release did not have:
    /// logged, and alerted with `--webhook` (`release::alert_body`).
    pub fn release_news(&self, list: &[ReleaseNews]) {
        for n in list {
            tracing::info!(
                event = "release_introduced",
                site = n.site.as_str(),
                release = n.release.as_str(),
                previous = n.previous.as_str(),
                kind = n.kind.as_str(),
                item = n.item.as_str(),
                "release {:?} of site {} introduced {} {}",
                n.release,
                n.site,
                n.kind.as_str(),
                n.item
            );
            if let Some(tx) = &self.webhook {
                if tx.try_send(crate::release::alert_body(n)).is_err() {
                    tracing::warn!(
                        event = "webhook_dropped",
                        site = n.site.as_str(),
                        release = n.release.as_str(),
                        "webhook queue full or stopped; alert dropped"
                    );
                }
            }
        }
    }

    pub fn accepted(&self, endpoint: &'static str, sites: &BTreeSet<String>, counts: &BatchCounts) {
        let m = &self.metrics;
        let handles = &m.accepted;
        let e = ENDPOINTS.iter().position(|n| *n == endpoint);
        let requests = e.and_then(|e| handles.requests.get(e));
        add(requests, &m.requests_accepted, [("endpoint", endpoint)], 1);
        let total: u64 = counts.findings.iter().map(|(_, n)| n).sum();
        let by_kind = [total, counts.health, counts.inventories];
        for (k, (kind, n)) in REPORT_KINDS.iter().zip(by_kind).enumerate() {
            if n > 0 {
                let slot = e.and_then(|e| handles.reports.get(e)?.get(k));
                add(
                    slot,
                    &m.reports_accepted,
                    [("endpoint", endpoint), ("kind", *kind)],
                    n,
                );
            }
        }
        for (kind, n) in &counts.findings {
            let slot = FindingKind::all()
                .position(|k| k == *kind)
                .and_then(|i| handles.findings.get(i));
            add(slot, &m.findings, [("type", kind.as_str())], *n);
        }
        tracing::info!(
            target: REQUEST,
            event = "accepted",
            fields = %json!({
                "endpoint": endpoint,
                "sites": sites,
                "findings": counts
                    .findings
                    .iter()
                    .map(|(k, n)| (k.as_str().to_owned(), serde_json::Value::from(*n)))
                    .collect::<serde_json::Map<_, _>>(),
                "health": counts.health,
                "inventories": counts.inventories,
            }),
            "accepted a batch"
        );
    }

    pub fn refused(
        &self,
        endpoint: &'static str,
        reason: &'static str,
        status: StatusCode,
        text: &str,
    ) {
        self.metrics
            .requests_refused
            .get_or_create(&[("endpoint", endpoint), ("reason", reason)])
            .inc();
        tracing::warn!(
            target: REQUEST,
            event = "refused",
            endpoint,
            reason,
            status = status.as_u16(),
            "{text}"
        );
    }

    /// The writer committed (or failed) a group after `took`.
    pub fn committed(&self, took: Duration, ok: bool) {
        self.metrics.write_duration.observe(took.as_secs_f64());
        if !ok {
            self.metrics.write_failures.inc();
        }
    }

    /// The cap on open connections, for `tagwatch_connections_max`.
    pub fn set_max_connections(&self, max: usize) {
        self.metrics
            .connections_max
            .set(i64::try_from(max).unwrap_or(i64::MAX));
    }

    pub fn connection_opened(&self) {
        self.metrics.connections_accepted.inc();
        self.metrics.connections_open.inc();
    }

    pub fn connection_closed(&self) {
        self.metrics.connections_open.dec();
    }

    /// A connection refused or closed by the collector (counted only: one
    /// log line per connection would let a flood fill the log).
    pub fn connection_dropped(&self, why: Dropped) {
        self.metrics
            .connections_closed
            .get_or_create(&[("reason", why.as_str())])
            .inc();
    }

    pub fn queued(&self) {
        self.metrics.queue_depth.inc();
    }

    pub fn dequeued(&self) {
        self.metrics.queue_depth.dec();
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_text::encode(&mut out, &self.metrics.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tagwatch_core::report::FindingType;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let e = Events::new();
        let counts = BatchCounts {
            findings: vec![(FindingKind::Monitor(FindingType::CookieBeforeConsent), 2)],
            inventories: 1,
            ..BatchCounts::default()
        };
        e.accepted("reports", &BTreeSet::from(["tw_a".to_owned()]), &counts);
        e.refused("csp", "origin", StatusCode::FORBIDDEN, "x");
        e.committed(Duration::from_millis(3), true);
        e.committed(Duration::from_secs(10), false);
        e.queued();
        e.queued();
        e.dequeued();
        e.set_max_connections(192);
        e.connection_opened();
        e.connection_opened();
        e.connection_closed();
        e.connection_dropped(Dropped::Cap);
        e.connection_dropped(Dropped::Cap);
        e.connection_dropped(Dropped::HeaderTimeout);
        let text = e.render();
        for line in [
            "tagwatch_requests_accepted_total{endpoint=\"reports\"} 1",
            "tagwatch_requests_accepted_total{endpoint=\"csp\"} 0",
            "tagwatch_reports_accepted_total{endpoint=\"reports\",kind=\"finding\"} 2",
            "tagwatch_reports_accepted_total{endpoint=\"reports\",kind=\"inventory\"} 1",
            "tagwatch_requests_refused_total{endpoint=\"csp\",reason=\"origin\"} 1",
            "tagwatch_findings_total{type=\"cookie_before_consent\"} 2",
            "tagwatch_writer_queue_depth 1",
            "tagwatch_connections_accepted_total 2",
            "tagwatch_connections_open 1",
            "tagwatch_connections_max 192",
            "tagwatch_connections_closed_total{reason=\"connection_cap\"} 2",
            "tagwatch_connections_closed_total{reason=\"header_timeout\"} 1",
            "tagwatch_connections_closed_total{reason=\"idle_timeout\"} 0",
            "tagwatch_write_failures_total 1",
            "tagwatch_write_duration_seconds_bucket{le=\"0.0025\"} 0",
            "tagwatch_write_duration_seconds_bucket{le=\"0.005\"} 1",
            "tagwatch_write_duration_seconds_bucket{le=\"5\"} 1",
            "tagwatch_write_duration_seconds_bucket{le=\"+Inf\"} 2",
            "tagwatch_write_duration_seconds_count 2",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }
}
