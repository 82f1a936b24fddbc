//! `tagwatch serve`: the store, the writer thread, the async runtime and the
//! connection loop put together, and the orderly stop (SIGTERM/SIGINT:
//! finish the requests in flight, commit what was accepted).

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use tagwatch_store::{self as store, Checks, StoreError};

use crate::connections;
use crate::events::Events;
use crate::http;
use crate::ratelimit::{RateLimiter, SiteLimiter};
use crate::writer::Writer;

/// Time connections get to finish after SIGTERM/SIGINT.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Accepted batches waiting for the writer.
const WRITE_QUEUE: usize = 1024;
/// Most client addresses the per-client rate limit tracks at once, and most
/// (site, client address) pairs the site limit tracks the pace of.
const CLIENT_BUCKETS: usize = 65_536;
/// How often `serve --retain` deletes old reports (and once at start).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Everything `serve` needs, already checked by the caller (the `tagwatch`
/// binary turns flags into this; docs/collector.md#tagwatch-serve).
#[derive(Debug, Clone)]
pub struct Config {
    /// Address to listen on (`127.0.0.1:0` picks a port).
    pub listen: String,
    /// The store's URL (`sqlite:PATH`, `postgres://…`).
    pub db: String,
    /// `--events`: the reports in ClickHouse (`clickhouse://HOST:PORT/DB`),
    /// the control plane staying in `db`. `None`: everything in `db`.
    pub events: Option<String>,
    pub checks: Checks,
    /// Requests per second and site (0: no limit), and the burst.
    pub rate: f64,
    pub burst: u32,
    /// Requests per second and client address (0: no limit), and the burst.
    pub client_rate: f64,
    pub client_burst: u32,
    /// The pace of a visitor per site and address, and its burst.
    pub visitor_rate: f64,
    pub visitor_burst: u32,
    /// The client address is the last `X-Forwarded-For` entry.
    pub behind_proxy: bool,
    pub strict_origin: bool,
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub body_timeout: Duration,
    /// `None`: from the descriptor limit.
    pub max_connections: Option<usize>,
    pub webhook: Option<String>,
    /// Delete reports observed longer ago than this, at start and hourly.
    pub retain: Option<Duration>,
    /// The bearer token of the read API.
    pub admin_token: String,
    /// `--signing-key`: signs the checkpoints retention records in each
    /// site's chain (docs/evidence.md).
    pub signing_key: Option<tagwatch_store::chain::SigningKey>,
}

/// The defaults of `tagwatch serve`'s flags (docs/collector.md#tagwatch-serve),
/// written once: the binary's flags and [`Config::new`] take them from here.
pub mod defaults {
    /// `--listen`.
    pub const LISTEN: &str = "127.0.0.1:8080";
    /// `--rate`, requests per second and site.
    pub const RATE: f64 = 50.0;
    /// `--burst`.
    pub const BURST: u32 = 100;
    /// `--client-rate`, requests per second and client address.
    pub const CLIENT_RATE: f64 = 10.0;
    /// `--client-burst`.
    pub const CLIENT_BURST: u32 = 100;
    /// `--visitor-rate`, requests per second a visitor sends one site.
    pub const VISITOR_RATE: f64 = 0.1;
    /// `--visitor-burst`.
    pub const VISITOR_BURST: u32 = 20;
    /// `--header-timeout`, seconds.
    pub const HEADER_TIMEOUT: u64 = 10;
    /// `--idle-timeout`, seconds.
    pub const IDLE_TIMEOUT: u64 = 5;
    /// `--body-timeout`, seconds.
    pub const BODY_TIMEOUT: u64 = 15;
}

impl Config {
    /// The configuration of `tagwatch serve --db DB` with every other flag
    /// at its default, and the read API's bearer token.
    pub fn new(db: impl Into<String>, admin_token: impl Into<String>) -> Self {
        Self {
            listen: defaults::LISTEN.into(),
            db: db.into(),
            events: None,
            checks: Checks::default(),
            rate: defaults::RATE,
            burst: defaults::BURST,
            client_rate: defaults::CLIENT_RATE,
            client_burst: defaults::CLIENT_BURST,
            visitor_rate: defaults::VISITOR_RATE,
            visitor_burst: defaults::VISITOR_BURST,
            behind_proxy: false,
            strict_origin: false,
            header_timeout: Duration::from_secs(defaults::HEADER_TIMEOUT),
            idle_timeout: Duration::from_secs(defaults::IDLE_TIMEOUT),
            body_timeout: Duration::from_secs(defaults::BODY_TIMEOUT),
            max_connections: None,
            webhook: None,
            signing_key: None,
            retain: None,
            admin_token: admin_token.into(),
        }
    }
}

/// Why `serve` stopped before it could serve.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store named by `Config::db` cannot be opened or trusted.
    #[error("cannot open the store: {0}")]
    Store(#[source] StoreError),
    /// The events store named by `Config::events` cannot be opened.
    #[error("cannot open the events store: {0}")]
    Events(#[source] StoreError),
    /// Anything else (listening, threads, descriptors).
    #[error("{0}")]
    Failed(String),
}

impl From<String> for ServeError {
    fn from(e: String) -> Self {
        Self::Failed(e)
    }
}

/// A collector whose store and writer are running: its routes answer
/// requests, in the process (`router`) or on a socket ([`serve`]).
pub struct Collector {
    state: Arc<http::AppState>,
    writer: Writer,
    writer_thread: Option<JoinHandle<()>>,
}

impl Collector {
    /// Opens the store (checking it can be trusted) and starts the writer
    /// thread (and the webhook's). Nothing listens yet.
    pub fn start(config: &Config) -> Result<Self, ServeError> {
        let mut events = Events::new();
        if let Some(url) = &config.webhook {
            events = events
                .with_webhook(url.clone())
                .map_err(|e| format!("cannot start the webhook thread: {e}"))?;
        }
        let events = Arc::new(events);
        let mut store = store::open(&config.db, 2, config.checks).map_err(ServeError::Store)?;
        if let Some(key) = &config.signing_key {
            store.sign_checkpoints(key.clone());
        }
        if let Some(url) = &config.events {
            store = tagwatch_events::open(url, store).map_err(ServeError::Events)?;
        }
        let (writer, writer_thread) = Writer::spawn(store.clone(), WRITE_QUEUE, events.clone())
            .map_err(|e| format!("cannot start the writer thread: {e}"))?;
        let state = Arc::new(http::AppState {
            store,
            sites: Arc::default(),
            writer: writer.clone(),
            limiter: SiteLimiter::new(
                config.rate,
                config.burst,
                config.visitor_rate,
                config.visitor_burst,
            )
            .with_max_clients(CLIENT_BUCKETS),
            client_limiter: RateLimiter::new(config.client_rate, config.client_burst)
                .with_max_keys(CLIENT_BUCKETS),
            behind_proxy: config.behind_proxy,
            admin_token: config.admin_token.clone(),
            strict_origin: config.strict_origin,
            body_timeout: config.body_timeout,
            events,
        });
        Ok(Self {
            state,
            writer,
            writer_thread: Some(writer_thread),
        })
    }

    /// The routes (docs/collector.md#endpoints). A request's client address
    /// is its `ConnectInfo<SocketAddr>` extension, as the connection loop
    /// sets it.
    pub fn router(&self) -> axum::Router {
        http::router(self.state.clone())
    }

    /// The store it writes to.
    pub fn store(&self) -> &Arc<dyn store::Store> {
        &self.state.store
    }

    /// Asks the writer to delete reports observed more than `keep` ago,
    /// now and every hour (in the runtime it is called from).
    fn retain(&self, keep: Duration) {
        let writer = self.writer.clone();
        tokio::spawn(async move {
            // The first tick is immediate: retention runs at start.
            let mut every = tokio::time::interval(RETENTION_EVERY);
            every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                every.tick().await;
                if writer.retain(keep).await.is_err() {
                    break;
                }
            }
        });
    }

    /// Commits what was accepted and stops the writer.
    pub async fn stop(mut self) {
        self.writer.stop().await;
        let thread = self.writer_thread.take();
        // The writer has been told to stop; it ends after its commit. The
        // collector is dropped off the runtime too: closing the store's
        // PostgreSQL connections blocks while each session ends (on a
        // thread of its own, `PgConn`'s `Drop`, which is what makes a store
        // dropped on a runtime thread safe when a connection task holds the
        // last reference), so not on an async worker.
        let joined = tokio::task::spawn_blocking(move || {
            let joined = thread.map(JoinHandle::join);
            drop(self);
            joined
        })
        .await;
        if !matches!(joined, Ok(None | Some(Ok(())))) {
            tracing::error!(event = "writer_panicked", "the writer thread panicked");
        }
    }
}

/// Runs the collector until SIGTERM or SIGINT, then commits what was
/// accepted and returns.
pub fn serve(config: Config) -> Result<(), ServeError> {
    let limits = connection_limits(&config)?;
    let collector = Collector::start(&config)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let served = runtime.block_on(async {
        if let Some(keep) = config.retain {
            collector.retain(keep);
        }
        let served = run_server(&config.listen, collector.state.clone(), limits).await;
        // Whatever happened, commit what was accepted before exiting.
        collector.stop().await;
        served
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    served?;
    tracing::info!(event = "stopped", "stopped");
    Ok(())
}

/// The timeouts and the connection cap: the default cap from the
/// descriptor limit, and a warning when the cap given is above it.
fn connection_limits(config: &Config) -> Result<connections::Limits, String> {
    let fd_limit = connections::descriptor_limit();
    let max_connections = match config.max_connections {
        Some(n) => {
            let room = fd_limit.map(|l| l.saturating_sub(connections::FD_RESERVE));
            if let (Some(limit), Some(room)) = (fd_limit, room) {
                if u64::try_from(n).map_or(true, |n| n > room) {
                    tracing::warn!(
                        event = "max_connections_high",
                        max_connections = n,
                        descriptor_limit = limit,
                        "warning: --max-connections {n} is more than the descriptor limit \
                         ({limit}) leaves once {} are kept for the store and logs; connections \
                         beyond that wait in the listen queue",
                        connections::FD_RESERVE
                    );
                }
            }
            n
        }
        None => connections::default_max_connections(fd_limit)?,
    };
    Ok(connections::Limits {
        header_timeout: config.header_timeout,
        idle_timeout: config.idle_timeout,
        max_connections,
    })
}

async fn run_server(
    listen: &str,
    state: Arc<http::AppState>,
    limits: connections::Limits,
) -> Result<(), String> {
    let events = state.events.clone();
    use tokio::signal::unix::{signal, SignalKind};

    let mut term =
        signal(SignalKind::terminate()).map_err(|e| format!("cannot watch SIGTERM: {e}"))?;
    let mut int =
        signal(SignalKind::interrupt()).map_err(|e| format!("cannot watch SIGINT: {e}"))?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    tracing::info!(
        event = "listening",
        addr = addr.to_string().as_str(),
        max_connections = limits.max_connections,
        header_timeout_s = limits.header_timeout.as_secs(),
        idle_timeout_s = limits.idle_timeout.as_secs(),
        "listening on http://{addr}"
    );

    let (stopping_tx, mut stopping_rx) = tokio::sync::watch::channel(false);
    let shutdown = async move {
        let signal = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        tracing::info!(
            event = "shutdown",
            signal,
            "{signal}, finishing accepted reports"
        );
        let _ = stopping_tx.send(true);
    };
    tokio::spawn(shutdown);
    let server = connections::serve(
        listener,
        http::router(state),
        limits,
        events.clone(),
        stopping_rx.clone(),
    );
    let grace = async move {
        // Resolves only SHUTDOWN_GRACE after a signal.
        if stopping_rx.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(SHUTDOWN_GRACE).await;
    };
    tokio::select! {
        () = server => Ok(()),
        () = grace => {
            tracing::warn!(
                event = "shutdown_forced",
                "connections still open {} s after the signal; stopping anyway",
                SHUTDOWN_GRACE.as_secs()
            );
            Ok(())
        }
    }
}
