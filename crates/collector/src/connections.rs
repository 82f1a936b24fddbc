//! The connections of `tagwatch serve`: the accept loop and the limits that
//! keep idle and slow clients from holding the collector's descriptors.
//!
//! - A cap on open connections (`--max-connections`, by default the
//!   process's descriptor limit minus [`FD_RESERVE`]): a connection beyond
//!   it is closed as soon as it is accepted, before anything is read.
//! - A header timeout (`--header-timeout`, hyper's header read timer): the
//!   whole request head must arrive within it, counted from the moment the
//!   collector waits for a head — on connect and after each answer — so
//!   bytes trickling in do not extend it.
//! - An idle timeout (`--idle-timeout`): a kept-alive connection with no
//!   request for that long is closed.
//! - Bodies have their own deadline (`--body-timeout`, in crate::http).
//! - SIGTERM/SIGINT: stop accepting, let every connection finish its
//!   request and close, wait for all of them.
//!
//! Each refused or timed-out connection is counted in `GET /metrics`
//! ([`Dropped`]). See docs/collector.md#connections.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tower_service::Service as _;

use crate::events::{Dropped, Events};

/// Descriptors the connection cap leaves to everything else: standard
/// streams, the listener, the runtime (epoll, wakers, signals), the store
/// (SQLite: three connections of up to three files each — database, WAL,
/// shared memory — plus temporary files; PostgreSQL: three sockets), the
/// webhook's socket and name look-ups, with room to spare.
pub const FD_RESERVE: u64 = 64;
/// Fewest connections a descriptor limit must leave after the reserve
/// before the default cap is usable; below, `serve` asks for a higher
/// limit or an explicit `--max-connections`.
pub const MIN_CONNECTIONS: u64 = 16;
/// Largest default cap, whatever the descriptor limit: an idle connection
/// costs about 10 KiB here, and 8192 of them serve thousands of beacons a
/// second (each holds its connection for one request and at most
/// `--idle-timeout` after it). `--max-connections` goes higher.
pub const MAX_CONNECTIONS_CEILING: usize = 8192;
/// How long a connection asked to close (idle timeout, shutdown) may still
/// take to finish writing an answer to a client that does not read it.
const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Pause after a failed `accept` (descriptors exhausted by something other
/// than connections) before the next try, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(250);
/// At most one log line this often about refused connections or failed
/// accepts (the metrics count every one).
const LOG_EVERY: Duration = Duration::from_secs(60);

/// The connection limits of one `serve`.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub header_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_connections: usize,
}

/// The process's descriptor limit (soft `RLIMIT_NOFILE`); `None` when
/// unlimited.
pub fn descriptor_limit() -> Option<u64> {
    rustix::process::getrlimit(rustix::process::Resource::Nofile).current
}

/// The default cap on connections for a descriptor limit: the limit minus
/// [`FD_RESERVE`], at most [`MAX_CONNECTIONS_CEILING`].
pub fn default_max_connections(limit: Option<u64>) -> Result<usize, String> {
    let Some(limit) = limit else {
        return Ok(MAX_CONNECTIONS_CEILING);
    };
    match limit.checked_sub(FD_RESERVE) {
        Some(room) if room >= MIN_CONNECTIONS => Ok(usize::try_from(room)
            .map_or(MAX_CONNECTIONS_CEILING, |r| r.min(MAX_CONNECTIONS_CEILING))),
        _ => Err(format!(
            "the descriptor limit ({limit}) leaves fewer than {MIN_CONNECTIONS} connections once \
             {FD_RESERVE} are kept for the store and logs: raise it (ulimit -n) or give \
             --max-connections"
        )),
    }
}

/// Whether a connection has a request in flight, and whether it answered
/// one; the service tells the connection's task when that changes.
#[derive(Debug, Default)]
struct Activity {
    in_flight: AtomicUsize,
    answered: AtomicUsize,
    changed: Notify,
}

/// One request in flight on a connection, until dropped.
struct Turn(Arc<Activity>);

impl Activity {
    fn begin(self: &Arc<Self>) -> Turn {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.changed.notify_one();
        Turn(self.clone())
    }

    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Relaxed) == 0
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.answered.fetch_add(1, Ordering::Relaxed);
        self.0.changed.notify_one();
    }
}

/// Serves `app` on `listener` until `stop` turns true, then waits for the
/// open connections to finish.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: Limits,
    events: Arc<Events>,
    mut stop: watch::Receiver<bool>,
) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    let http = Arc::new(http);
    let permits = limits.max_connections.clamp(1, Semaphore::MAX_PERMITS);
    let slots = Arc::new(Semaphore::new(permits));
    events.set_max_connections(permits);
    let mut last_log: Option<Instant> = None;
    let mut should_log = move || {
        let now = Instant::now();
        let due = last_log.is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
        if due {
            last_log = Some(now);
        }
        due
    };
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = stop.wait_for(|s| *s) => break,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) if is_per_connection(&e) => continue,
            Err(e) => {
                if should_log() {
                    tracing::warn!(
                        event = "accept_failed",
                        error = e.to_string().as_str(),
                        "cannot accept connections: {e}; retrying"
                    );
                }
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            // Closed before anything is read: the descriptor is free again
            // at once, and the client sees the connection end.
            drop(stream);
            events.connection_dropped(Dropped::Cap);
            if should_log() {
                tracing::warn!(
                    event = "connection_cap",
                    max_connections = permits,
                    "{permits} connections open: refusing new ones (see tagwatch_connections_closed_total)"
                );
            }
            continue;
        };
        events.connection_opened();
        tokio::spawn(connection(
            stream,
            peer,
            app.clone(),
            http.clone(),
            limits,
            events.clone(),
            stop.clone(),
            permit,
        ));
    }
    drop(listener);
    // Every connection holds a permit until it ends.
    let _ = slots
        .acquire_many(u32::try_from(permits).unwrap_or(u32::MAX))
        .await;
}

/// `Keep-Alive`: not in `http::header` (HTTP/1.1 leaves it to
/// implementations; RFC 9112 names it among connection options).
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");

/// `Keep-Alive: timeout=S` on every answer: how long the collector keeps
/// an idle connection open (the idle timeout, or the header timeout where
/// that is shorter: both run between requests). A client that reads it
/// (Node's fetch, many HTTP libraries) stops reusing the connection before
/// the collector closes it, instead of racing the close with its next
/// request on a loaded machine (the request then fails on a closed socket).
fn keep_alive_hint(limits: &Limits) -> HeaderValue {
    let secs = limits.idle_timeout.min(limits.header_timeout).as_secs();
    // Digits only: always a valid header value.
    HeaderValue::from_str(&format!("timeout={secs}"))
        .unwrap_or_else(|_| HeaderValue::from_static("timeout=1"))
}

/// Errors of `accept` that concern one connection (it went away before it
/// was accepted), not the listener.
fn is_per_connection(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionRefused
    )
}

/// Serves one connection until it closes, times out, or the collector
/// stops.
#[allow(clippy::too_many_arguments)]
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    http: Arc<http1::Builder>,
    limits: Limits,
    events: Arc<Events>,
    mut stop: watch::Receiver<bool>,
    permit: OwnedSemaphorePermit,
) {
    let activity = Arc::new(Activity::default());
    let keep_alive = keep_alive_hint(&limits);
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |mut req: hyper::Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            let turn = activity.begin();
            let mut app = app.clone();
            let keep_alive = keep_alive.clone();
            async move {
                let mut resp = app.call(req).await;
                drop(turn);
                if let Ok(resp) = &mut resp {
                    resp.headers_mut().insert(KEEP_ALIVE, keep_alive);
                }
                resp
            }
        })
    };
    let conn = http.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Asked to close (idle timeout or shutdown): hyper finishes the request
    // in flight, if any, then closes.
    let mut closing = false;
    // When an idle connection is closed (idle timeout), or dropped if it
    // was asked to close and is still writing (CLOSE_GRACE).
    let mut deadline: Option<Instant> = None;
    let next_deadline = |closing: bool| {
        if !activity.idle() {
            None
        } else if closing {
            Some(Instant::now() + CLOSE_GRACE)
        } else if activity.answered.load(Ordering::Relaxed) > 0 {
            Some(Instant::now() + limits.idle_timeout)
        } else {
            // Before the first request, hyper's header timer runs.
            None
        }
    };
    loop {
        let sleep = async {
            match deadline {
                Some(at) => tokio::time::sleep_until(at).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        events.connection_dropped(Dropped::HeaderTimeout);
                    }
                }
                break;
            }
            () = activity.changed.notified() => deadline = next_deadline(closing),
            _ = stop.wait_for(|s| *s), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
                deadline = next_deadline(closing);
            }
            () = sleep => {
                if closing {
                    // Still writing to a client that does not read: drop it.
                    break;
                }
                events.connection_dropped(Dropped::IdleTimeout);
                conn.as_mut().graceful_shutdown();
                closing = true;
                deadline = next_deadline(closing);
            }
        }
    }
    events.connection_closed();
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_cap_leaves_the_reserve_and_has_a_ceiling() {
        assert_eq!(default_max_connections(Some(256)), Ok(192));
        assert_eq!(default_max_connections(Some(1024)), Ok(960));
        assert_eq!(
            default_max_connections(Some(64 + 16)),
            Ok(16),
            "the smallest limit accepted"
        );
        assert_eq!(default_max_connections(Some(1 << 20)), Ok(8192));
        assert_eq!(default_max_connections(None), Ok(8192));
        for tiny in [0, 10, 64, 64 + 15] {
            let e = default_max_connections(Some(tiny)).expect_err("too few");
            assert!(e.contains("ulimit -n"), "{e}");
        }
    }
}
