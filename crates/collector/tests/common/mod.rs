//! Harness of the collector's in-process tests: a `Collector` over a real
//! store (a temporary SQLite file, or a PostgreSQL database of its own),
//! its routes called with `tower::ServiceExt::oneshot` — no process, no
//! socket. What needs a process (signals, crashes, descriptors, several
//! collectors, start-up refusals) is tested through the binary in `cli/tests`.

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use tagwatch_collector::{Collector, Config};
use tagwatch_store::Checks;
use tower::ServiceExt;

pub use tagwatch_events::testing as ch;
pub use tagwatch_store::testing as pg;

mod forged;
mod reports;
pub use forged::*;
pub use reports::*;

// ------------------------------------------------------------- harness

/// Registers a site in the store at `db` (as `tagwatch site add` does:
/// origins normalised), returning its key.
pub fn site_add(db: &str, origins: &[&str]) -> String {
    let store = tagwatch_store::open(db, 0, Checks::default()).unwrap();
    let origins: Vec<String> = origins
        .iter()
        .map(|o| tagwatch_collector::origin::normalize_pattern(o).unwrap())
        .collect();
    let key = tagwatch_collector::keys::new_site_key().unwrap();
    store
        .add_site(&key, &origins, "2024-01-01T00:00:00.000Z")
        .unwrap();
    key
}

/// A collector's routes, called in the process.
pub struct Server {
    runtime: tokio::runtime::Runtime,
    router: Router,
    collector: Option<Collector>,
    /// The `--db` URL.
    pub db: String,
    /// The client address requests come from.
    pub peer: SocketAddr,
    /// Removed when the server is dropped.
    pub owned_dir: Option<TempDir>,
}

/// The configuration `tagwatch serve` makes of these flags (the ones the
/// tests use), with the binary's defaults.
fn config(db: &str, flags: &[&str]) -> Config {
    let mut c = Config::new(db, TOKEN);
    c.listen = "127.0.0.1:0".into();
    let mut flags = flags.iter();
    while let Some(flag) = flags.next() {
        let mut value = || *flags.next().unwrap();
        match *flag {
            "--strict-origin" => c.strict_origin = true,
            "--behind-proxy" => c.behind_proxy = true,
            "--rate" => c.rate = value().parse().unwrap(),
            "--burst" => c.burst = value().parse().unwrap(),
            "--client-rate" => c.client_rate = value().parse().unwrap(),
            "--client-burst" => c.client_burst = value().parse().unwrap(),
            "--visitor-rate" => c.visitor_rate = value().parse().unwrap(),
            "--visitor-burst" => c.visitor_burst = value().parse().unwrap(),
            "--events" => c.events = Some(value().to_owned()),
            "--body-timeout" => c.body_timeout = Duration::from_secs(value().parse().unwrap()),
            other => panic!("the in-process harness does not know {other}"),
        }
    }
    c
}

impl Server {
    /// A collector on the store at `db` configured by `flags` (as
    /// `tagwatch serve` takes them).
    pub fn start(db: &str, flags: &[&str]) -> Server {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let collector = Collector::start(&config(db, flags)).unwrap();
        Server {
            runtime,
            router: collector.router(),
            collector: Some(collector),
            db: db.to_owned(),
            peer: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 40000),
            owned_dir: None,
        }
    }

    /// One request, as a client at `self.peer` would send it.
    pub fn http(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        let mut req = axum::http::Request::builder().method(method).uri(path);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let chunked = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
        if let (Some(b), false) = (body, chunked) {
            req = req.header("content-length", b.len());
        }
        let mut req = req
            .body(Body::from(body.map(<[u8]>::to_vec).unwrap_or_default()))
            .unwrap();
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let router = self.router.clone();
        self.runtime.block_on(async move {
            let resp = router.oneshot(req).await.unwrap();
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            Resp {
                status,
                headers,
                body: String::from_utf8_lossy(&body).into_owned(),
            }
        })
    }

    pub fn post(&self, origin: Option<&str>, body: &str) -> Resp {
        let mut headers = vec![("Content-Type", "text/plain;charset=UTF-8")];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        self.http("POST", "/r", &headers, Some(body.as_bytes()))
    }

    pub fn get_api(&self, path: &str) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        self.http("GET", path, &[("Authorization", &auth)], None)
    }

    pub fn findings(&self, query: &str) -> Vec<Value> {
        let resp = self.get_api(&format!("/api/findings?{query}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        let v: Value = serde_json::from_str(&resp.body).unwrap();
        v["findings"].as_array().unwrap().clone()
    }

    pub fn health(&self, query: &str) -> Vec<Value> {
        let resp = self.get_api(&format!("/api/health?{query}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        let v: Value = serde_json::from_str(&resp.body).unwrap();
        v["health"].as_array().unwrap().clone()
    }

    pub fn inventory(&self, query: &str) -> Value {
        let resp = self.get_api(&format!("/api/inventory?{query}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        serde_json::from_str(&resp.body).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(collector) = self.collector.take() {
            self.runtime.block_on(collector.stop());
        }
        // `owned_dir` goes with the fields, after this.
    }
}

#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}
