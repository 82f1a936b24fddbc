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
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::http::{HeaderName, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
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

/// Whether a connection has a request in flight, and when it last
/// answered one. The service updates it; the connection's task reads it
/// only when its timer fires (see [`connection`]), so a request costs no
/// wake-up of that task and no timer of its own.
#[derive(Debug)]
struct Activity {
    in_flight: AtomicUsize,
    /// When the last answer was given, as nanoseconds after `since` plus
    /// one (0: no answer yet).
    answered_at: AtomicU64,
    since: Instant,
}

/// One request in flight on a connection, until dropped.
struct Turn(Arc<Activity>);

impl Activity {
    fn new() -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            answered_at: AtomicU64::new(0),
            since: Instant::now(),
        }
    }

    fn begin(self: &Arc<Self>) -> Turn {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        Turn(self.clone())
    }

    /// Acquire: an idle connection's [`Activity::last_answer`] is then
    /// the answer that made it idle (stored before the release in
    /// [`Turn`]'s drop), never an older one that would close it early.
    fn idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
    }

    /// When the last answer was given; `None` before the first.
    fn last_answer(&self) -> Option<Instant> {
        match self.answered_at.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.since + Duration::from_nanos(n - 1)),
        }
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let after = self.0.since.elapsed().as_nanos();
        let at = u64::try_from(after)
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1);
        self.0.answered_at.store(at, Ordering::Relaxed);
        self.0.in_flight.fetch_sub(1, Ordering::Release);
    }
}

/// What a connection's timer found when it fired.
#[derive(Debug, PartialEq, Eq)]
enum Due {
    /// The connection has waited long enough: close it (idle) or drop it
    /// (asked to close and still writing).
    Now,
    /// Not yet: look again then.
    At(Instant),
}

/// When a connection is due, looked at `now`: `wait` (the idle timeout,
/// or [`CLOSE_GRACE`] once it was asked to close at `closing_since`) after
/// the later of its last answer and `closing_since`, and never while a
/// request is in flight or before its first request when not closing
/// (hyper's header timer runs then).
fn due(activity: &Activity, now: Instant, wait: Duration, closing_since: Option<Instant>) -> Due {
    if !activity.idle() {
        // Looked at again after `wait`; counted from the answer then.
        return Due::At(now + wait);
    }
    let from = match (activity.last_answer(), closing_since) {
        (Some(a), Some(c)) => a.max(c),
        (Some(a), None) => a,
        (None, Some(c)) => c,
        (None, None) => return Due::At(now + wait),
    };
    let at = from + wait;
    if at <= now {
        Due::Now
    } else {
        Due::At(at)
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
    let activity = Arc::new(Activity::new());
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
    // Asked to close (idle timeout or shutdown) since then: hyper finishes
    // the request in flight, if any, then closes.
    let mut closing_since: Option<Instant> = None;
    // One timer a connection, armed once per idle timeout (not once per
    // request): when it fires, `due` says from the last answer whether the
    // connection is idle long enough, or when to look again. A timer reset
    // and two wake-ups of this task on every request cost the HTTP workers
    // ≈ 5,800 instructions a batch (1 %; docs/benchmarks.md, "the workers'
    // parse and handling, fifteenth round").
    let timer = tokio::time::sleep(limits.idle_timeout);
    tokio::pin!(timer);
    loop {
        tokio::select! {
            biased;
            result = conn.as_mut() => {
                if let Err(e) = result {
                    if e.is_timeout() {
                        events.connection_dropped(Dropped::HeaderTimeout);
                    }
                }
                break;
            }
            _ = stop.wait_for(|s| *s), if closing_since.is_none() => {
                conn.as_mut().graceful_shutdown();
                let now = Instant::now();
                closing_since = Some(now);
                if let Due::At(at) = due(&activity, now, CLOSE_GRACE, closing_since) {
                    timer.as_mut().reset(at);
                }
            }
            () = timer.as_mut() => {
                let now = Instant::now();
                let wait = if closing_since.is_some() { CLOSE_GRACE } else { limits.idle_timeout };
                match due(&activity, now, wait, closing_since) {
                    Due::At(at) => timer.as_mut().reset(at),
                    Due::Now if closing_since.is_some() => {
                        // Still writing to a client that does not read: drop it.
                        break;
                    }
                    Due::Now => {
                        events.connection_dropped(Dropped::IdleTimeout);
                        conn.as_mut().graceful_shutdown();
                        closing_since = Some(now);
                        timer.as_mut().reset(now + CLOSE_GRACE);
                    }
                }
            }
        }
    }
    events.connection_closed();
    drop(permit);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An activity begun 100 s before `now`, whose last answer was `ago`
    /// before `now` (`None`: no answer yet), with `in_flight` requests.
    fn activity(now: Instant, ago: Option<Duration>, in_flight: usize) -> Activity {
        let since = now - HISTORY;
        let a = Activity {
            in_flight: AtomicUsize::new(in_flight),
            answered_at: AtomicU64::new(0),
            since,
        };
        if let Some(ago) = ago {
            let n = u64::try_from((now - ago - since).as_nanos()).unwrap();
            a.answered_at.store(n + 1, Ordering::Relaxed);
        }
        a
    }

    /// How long before the tests' `now` their connections began.
    const HISTORY: Duration = Duration::from_secs(100);

    #[test]
    fn a_connection_is_due_its_wait_after_its_last_answer_and_never_mid_request() {
        // A `now` in the future: `due` is a function of the times it is
        // given, and the connections' start stays after the clock's.
        let now = Instant::now() + HISTORY;
        let s = Duration::from_secs;
        let idle = s(5);
        // Answered 2 s ago: due 3 s from now; 5 s ago: due now.
        assert_eq!(
            due(&activity(now, Some(s(2)), 0), now, idle, None),
            Due::At(now + s(3))
        );
        assert_eq!(
            due(&activity(now, Some(s(5)), 0), now, idle, None),
            Due::Now
        );
        assert_eq!(
            due(&activity(now, Some(s(9)), 0), now, idle, None),
            Due::Now
        );
        // A request in flight, however old the last answer: looked at
        // again a whole wait later, never due.
        assert_eq!(
            due(&activity(now, Some(s(9)), 1), now, idle, None),
            Due::At(now + idle)
        );
        assert_eq!(
            due(&activity(now, None, 1), now, idle, None),
            Due::At(now + idle)
        );
        // No answer yet: hyper's header timer runs; looked at again.
        assert_eq!(
            due(&activity(now, None, 0), now, idle, None),
            Due::At(now + idle)
        );
        // Asked to close: the grace runs from the later of the last answer
        // and the moment it was asked.
        let grace = CLOSE_GRACE;
        let asked = Some(now - s(1));
        assert_eq!(
            due(&activity(now, Some(s(9)), 0), now, grace, asked),
            Due::At(now - s(1) + grace)
        );
        assert_eq!(
            due(&activity(now, None, 0), now, grace, asked),
            Due::At(now - s(1) + grace)
        );
        assert_eq!(
            due(&activity(now, Some(Duration::ZERO), 0), now, grace, asked),
            Due::At(now + grace)
        );
        assert_eq!(
            due(&activity(now, Some(s(1)), 0), now, grace, Some(now - grace)),
            Due::At(now - s(1) + grace)
        );
        assert_eq!(
            due(
                &activity(now, Some(grace), 0),
                now,
                grace,
                Some(now - grace - s(1))
            ),
            Due::Now
        );
        assert_eq!(
            due(&activity(now, Some(grace), 1), now, grace, asked),
            Due::At(now + grace)
        );
    }

    #[test]
    fn an_answer_is_remembered_when_its_turn_ends() {
        let a = Arc::new(Activity::new());
        assert_eq!(a.last_answer(), None);
        assert!(a.idle());
        let before = Instant::now();
        let turn = a.begin();
        assert!(!a.idle());
        assert_eq!(a.last_answer(), None);
        drop(turn);
        let after = Instant::now();
        assert!(a.idle());
        let at = a.last_answer().expect("answered");
        assert!(before <= at && at <= after, "{before:?} {at:?} {after:?}");
    }

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
