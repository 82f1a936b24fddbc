//! What the collector tells operators: Prometheus metrics (`GET /metrics`)
//! and log lines on stderr, plain text (the default, the lines scripts rely
//! on) or one JSON object a line (`--log-format json`). See
//! docs/collector.md#operations.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use serde_json::{json, Value};

use tagwatch_store::timefmt::{iso_from_ms, now_ms};
use tagwatch_store::{Batch, FirstSeen};

/// Upper bounds (seconds) of the write latency histogram buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "text" => Some(Self::Text),
            "json" => Some(Self::Json),
            _ => None,
        }
    }
}

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
    pub findings: BTreeMap<String, u64>,
    pub health: u64,
    pub inventories: u64,
    pub sites: Vec<String>,
}

impl BatchCounts {
    pub fn of(batch: &Batch) -> Self {
        let mut c = Self::default();
        for f in &batch.findings {
            *c.findings.entry(f.kind.as_str().to_owned()).or_default() += 1;
        }
        c.health = u64::try_from(batch.health.len()).unwrap_or(u64::MAX);
        c.inventories = u64::try_from(batch.inventories.len()).unwrap_or(u64::MAX);
        let mut sites: Vec<String> = batch
            .findings
            .iter()
            .map(|f| f.site.clone())
            .chain(batch.health.iter().map(|h| h.site.clone()))
            .chain(batch.inventories.iter().map(|i| i.site.clone()))
            .collect();
        sites.sort_unstable();
        sites.dedup();
        c.sites = sites;
        c
    }
}

/// A histogram with fixed buckets.
#[derive(Debug, Default)]
struct Histogram {
    /// Counts per bucket of [`LATENCY_BUCKETS`] (not cumulative), then +Inf.
    buckets: [u64; LATENCY_BUCKETS.len() + 1],
    sum: f64,
    count: u64,
}

#[derive(Debug, Default)]
struct Counters {
    /// (endpoint) → requests accepted.
    accepted_requests: BTreeMap<&'static str, u64>,
    /// (endpoint, kind) → reports accepted.
    accepted_reports: BTreeMap<(&'static str, &'static str), u64>,
    /// (endpoint, reason) → requests refused.
    refused: BTreeMap<(&'static str, &'static str), u64>,
    /// finding type → findings accepted.
    findings: BTreeMap<String, u64>,
    write_latency: Histogram,
    write_failures: u64,
    /// Connections refused or closed by the collector, by reason.
    connections_dropped: BTreeMap<Dropped, u64>,
    /// Connections accepted and served.
    connections_accepted: u64,
}

/// Shared by the HTTP handlers and the writer thread.
#[derive(Debug)]
pub struct Events {
    format: LogFormat,
    counters: Mutex<Counters>,
    /// Batches handed to the writer and not yet answered.
    queued: AtomicU64,
    /// Connections open now, and the cap on them.
    connections_open: AtomicU64,
    connections_max: AtomicU64,
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
fn send_alert(agent: &ureq::Agent, url: &str, alert: &Value, log: &Events) {
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
    log.log(
        "warn",
        "webhook_failed",
        &format!("webhook: alert not delivered ({last})"),
        json!({"error": last, "alert": alert}),
    );
}

/// Escapes a Prometheus label value.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

impl Events {
    pub fn new(format: LogFormat) -> Self {
        Self {
            format,
            counters: Mutex::new(Counters::default()),
            queued: AtomicU64::new(0),
            connections_open: AtomicU64::new(0),
            connections_max: AtomicU64::new(0),
            webhook: None,
        }
    }

    /// Starts the thread that POSTs alerts to `url`; it logs through a
    /// second `Events` of the same format (it only logs).
    pub fn with_webhook(mut self, url: String) -> std::io::Result<Self> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Value>(WEBHOOK_QUEUE);
        let log = Events::new(self.format);
        std::thread::Builder::new()
            .name("tagwatch-webhook".into())
            .spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .timeout_global(Some(WEBHOOK_TIMEOUT))
                    .http_status_as_error(false)
                    .build()
                    .into();
                for alert in rx {
                    send_alert(&agent, &url, &alert, &log);
                }
            })?;
        self.webhook = Some(tx);
        Ok(self)
    }

    /// Finding types a site had for the first time: logged, and alerted
    /// with `--webhook`.
    pub fn first_seen(&self, list: &[FirstSeen]) {
        for f in list {
            let body = alert_body(f);
            self.log(
                "info",
                "finding_type_first_seen",
                &format!("first {} finding for site {}", f.kind.as_str(), f.site),
                json!({"site": f.site, "type": f.kind.as_str(), "vendor": f.vendor, "page": f.page}),
            );
            if let Some(tx) = &self.webhook {
                if tx.try_send(body).is_err() {
                    self.log(
                        "warn",
                        "webhook_dropped",
                        "webhook queue full or stopped; alert dropped",
                        json!({"site": f.site, "type": f.kind.as_str()}),
                    );
                }
            }
        }
    }

    fn counters(&self) -> std::sync::MutexGuard<'_, Counters> {
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A log line: `message` as the text line (`tagwatch: message`), or
    /// `{"time","level","event","message",…fields}` as JSON.
    pub fn log(&self, level: &str, event: &str, message: &str, fields: Value) {
        match self.format {
            LogFormat::Text => eprintln!("tagwatch: {message}"),
            LogFormat::Json => {
                let mut line = json!({
                    "time": iso_from_ms(now_ms()),
                    "level": level,
                    "event": event,
                    "message": message,
                });
                if let (Some(obj), Value::Object(more)) = (line.as_object_mut(), fields) {
                    for (k, v) in more {
                        obj.insert(k, v);
                    }
                }
                eprintln!("{line}");
            }
        }
    }

    /// A log line only in JSON format (per-request events would flood the
    /// text log, whose lines scripts read).
    fn log_json_only(&self, level: &str, event: &str, message: &str, fields: Value) {
        if self.format == LogFormat::Json {
            self.log(level, event, message, fields);
        }
    }

    pub fn accepted(&self, endpoint: &'static str, counts: &BatchCounts) {
        {
            let mut c = self.counters();
            *c.accepted_requests.entry(endpoint).or_default() += 1;
            let total: u64 = counts.findings.values().sum();
            for (kind, n) in [
                ("finding", total),
                ("health", counts.health),
                ("inventory", counts.inventories),
            ] {
                if n > 0 {
                    *c.accepted_reports.entry((endpoint, kind)).or_default() += n;
                }
            }
            for (kind, n) in &counts.findings {
                *c.findings.entry(kind.clone()).or_default() += n;
            }
        }
        self.log_json_only(
            "info",
            "accepted",
            "accepted a batch",
            json!({
                "endpoint": endpoint,
                "sites": counts.sites,
                "findings": counts.findings,
                "health": counts.health,
                "inventories": counts.inventories,
            }),
        );
    }

    pub fn refused(
        &self,
        endpoint: &'static str,
        reason: &'static str,
        status: StatusCode,
        text: &str,
    ) {
        *self
            .counters()
            .refused
            .entry((endpoint, reason))
            .or_default() += 1;
        self.log_json_only(
            "warn",
            "refused",
            text,
            json!({"endpoint": endpoint, "reason": reason, "status": status.as_u16()}),
        );
    }

    /// The writer committed (or failed) a group after `took`.
    pub fn committed(&self, took: Duration, ok: bool) {
        let secs = took.as_secs_f64();
        let mut c = self.counters();
        let h = &mut c.write_latency;
        let i = LATENCY_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(LATENCY_BUCKETS.len());
        if let Some(slot) = h.buckets.get_mut(i) {
            *slot += 1;
        }
        h.sum += secs;
        h.count += 1;
        if !ok {
            c.write_failures += 1;
        }
    }

    /// The cap on open connections, for `tagwatch_connections_max`.
    pub fn set_max_connections(&self, max: usize) {
        let max = u64::try_from(max).unwrap_or(u64::MAX);
        self.connections_max.store(max, Ordering::Relaxed);
    }

    pub fn connection_opened(&self) {
        self.counters().connections_accepted += 1;
        self.connections_open.fetch_add(1, Ordering::Relaxed);
    }

    pub fn connection_closed(&self) {
        let _ = self
            .connections_open
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// A connection refused or closed by the collector (counted only: one
    /// log line per connection would let a flood fill the log).
    pub fn connection_dropped(&self, why: Dropped) {
        *self.counters().connections_dropped.entry(why).or_default() += 1;
    }

    pub fn queued(&self) {
        self.queued.fetch_add(1, Ordering::Relaxed);
    }

    pub fn dequeued(&self) {
        // Never below zero, whatever the interleaving.
        let _ = self
            .queued
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
    }

    /// The Prometheus text exposition format (version 0.0.4).
    pub fn render(&self) -> String {
        let c = self.counters();
        let mut out = String::with_capacity(4096);
        let _ = writeln!(
            out,
            "# HELP tagwatch_requests_accepted_total Ingest requests accepted (answered 204), by endpoint.\n\
             # TYPE tagwatch_requests_accepted_total counter"
        );
        for endpoint in ["reports", "csp"] {
            let n = c.accepted_requests.get(endpoint).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tagwatch_requests_accepted_total{{endpoint=\"{endpoint}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tagwatch_reports_accepted_total Reports accepted, by endpoint and kind (finding, health, inventory).\n\
             # TYPE tagwatch_reports_accepted_total counter"
        );
        for ((endpoint, kind), n) in &c.accepted_reports {
            let _ = writeln!(
                out,
                "tagwatch_reports_accepted_total{{endpoint=\"{endpoint}\",kind=\"{kind}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tagwatch_requests_refused_total Ingest requests refused, by endpoint and reason.\n\
             # TYPE tagwatch_requests_refused_total counter"
        );
        for ((endpoint, reason), n) in &c.refused {
            let _ = writeln!(
                out,
                "tagwatch_requests_refused_total{{endpoint=\"{endpoint}\",reason=\"{reason}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP tagwatch_findings_total Findings accepted, by type (a resent finding counts again).\n\
             # TYPE tagwatch_findings_total counter"
        );
        for (kind, n) in &c.findings {
            let _ = writeln!(
                out,
                "tagwatch_findings_total{{type=\"{}\"}} {n}",
                label(kind)
            );
        }
        let _ = writeln!(
            out,
            "# HELP tagwatch_writer_queue_depth Accepted batches waiting for the writer or its commit.\n\
             # TYPE tagwatch_writer_queue_depth gauge\n\
             tagwatch_writer_queue_depth {}",
            self.queued.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tagwatch_write_failures_total Group commits the store refused.\n\
             # TYPE tagwatch_write_failures_total counter\n\
             tagwatch_write_failures_total {}",
            c.write_failures
        );
        let _ = writeln!(
            out,
            "# HELP tagwatch_connections_accepted_total Connections accepted and served.\n\
             # TYPE tagwatch_connections_accepted_total counter\n\
             tagwatch_connections_accepted_total {}\n\
             # HELP tagwatch_connections_open Connections open now.\n\
             # TYPE tagwatch_connections_open gauge\n\
             tagwatch_connections_open {}\n\
             # HELP tagwatch_connections_max The cap on open connections (--max-connections, or the descriptor limit minus a reserve).\n\
             # TYPE tagwatch_connections_max gauge\n\
             tagwatch_connections_max {}\n\
             # HELP tagwatch_connections_closed_total Connections the collector refused or closed itself, by reason (connection_cap, header_timeout, idle_timeout).\n\
             # TYPE tagwatch_connections_closed_total counter",
            c.connections_accepted,
            self.connections_open.load(Ordering::Relaxed),
            self.connections_max.load(Ordering::Relaxed),
        );
        for why in Dropped::ALL {
            let n = c.connections_dropped.get(&why).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tagwatch_connections_closed_total{{reason=\"{}\"}} {n}",
                why.as_str()
            );
        }
        let _ = writeln!(
            out,
            "# HELP tagwatch_write_duration_seconds Time of one group commit (one transaction, fsync included).\n\
             # TYPE tagwatch_write_duration_seconds histogram"
        );
        let h = &c.write_latency;
        let mut cumulative = 0u64;
        for (i, bound) in LATENCY_BUCKETS.iter().enumerate() {
            cumulative += h.buckets.get(i).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tagwatch_write_duration_seconds_bucket{{le=\"{bound}\"}} {cumulative}"
            );
        }
        let _ = writeln!(
            out,
            "tagwatch_write_duration_seconds_bucket{{le=\"+Inf\"}} {}\n\
             tagwatch_write_duration_seconds_sum {}\n\
             tagwatch_write_duration_seconds_count {}",
            h.count, h.sum, h.count
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_a_cumulative_histogram() {
        let e = Events::new(LogFormat::Text);
        let mut counts = BatchCounts::default();
        counts.findings.insert("cookie_before_consent".into(), 2);
        counts.inventories = 1;
        e.accepted("reports", &counts);
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
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
