//! The tagwatch collector: receives report batches (`POST /r`) and the
//! browser's CSP reports (`POST /csp/KEY`), checks them (origin, rate,
//! limits), stores them through one writer thread that acknowledges only
//! what is committed, and shows them (the read API, `GET /metrics`, the
//! dashboard, exports). docs/collector.md is the reference.
//!
//! The way of a report: [`connections`] (HTTP/1, timeouts, the cap) →
//! `http` (routes, CORS, auth, limits) → `ingest` / `csp` (typed parse,
//! redaction) → `writer` (group commit) → `tagwatch_store`; back out
//! through `http`'s read API, [`dashboard`] and [`export`].

pub mod connections;
mod csp;
pub mod dashboard;
pub mod events;
pub mod export;
mod http;
mod ingest;
pub mod keys;
pub mod logging;
pub mod origin;
mod ratelimit;
pub mod release;
mod scrub;
mod serve;
mod sites;
mod writer;

pub use http::read_request_body;
pub use ingest::{Malformed, Parsed};
pub use serve::{defaults, serve, Collector, Config, ServeError};
