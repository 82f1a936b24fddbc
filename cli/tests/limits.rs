//! Hostile clients against the collector's limits, on the real binary:
//! connections that send nothing or trickle their head under a descriptor
//! limit of 256 (`ulimit -n`), the connection cap, idle kept-alive
//! connections, trickling bodies, SIGTERM with idle connections open, and
//! a forged flood from many addresses next to a browser-like client of the
//! same site. See docs/collector.md#connections and #rate-limit.
//!
//! No timing is asserted: each test waits for a condition, bounded by
//! [`SLACK`] (far more than any timeout involved) so a failure ends.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

const PV: &str = "9f1c2e3d4b5a6978";
/// The bound on every wait: generous, for a loaded machine.
const SLACK: Duration = Duration::from_secs(60);

fn metric(server: &Server, name: &str) -> f64 {
    let resp = server.get_api("/metrics");
    assert_eq!(resp.status, 200, "{}", resp.body);
    resp.body
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} not in\n{}", resp.body))
}

fn closed_connection(name: &str) -> String {
    format!("tagwatch_connections_closed_total{{reason=\"{name}\"}}")
}

/// Whether the peer closed `stream` (EOF or reset) within `within`;
/// anything it sent before is discarded.
fn closes_within(stream: &mut TcpStream, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Sends a request head one byte a second (the head never ends: a header
/// value grows forever) until the collector closes the connection; false
/// if it has not within [`SLACK`].
fn trickle_head(addr: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return true;
    };
    let head = b"POST /r HTTP/1.1\r\nHost: collector\r\nContent-Type: text/plain\r\nX-Slow: ";
    let deadline = Instant::now() + SLACK;
    let mut sent = 0usize;
    let mut buf = [0u8; 256];
    // The read timeout paces the bytes.
    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    while Instant::now() < deadline {
        let byte = head.get(sent).copied().unwrap_or(b'a');
        if stream.write_all(&[byte]).is_err() {
            return true;
        }
        sent += 1;
        match stream.read(&mut buf) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            // EOF, a reset, or an answer to a head that never ended.
            _ => return true,
        }
    }
    false
}

/// POSTs `body` until the answer is 204, retrying refused or reset
/// connections; the answers seen, last one 204, or a panic after [`SLACK`].
fn post_until_accepted(addr: &str, body: &str, headers: &[(&str, &str)]) -> Vec<String> {
    let deadline = Instant::now() + SLACK;
    let mut seen = Vec::new();
    let mut all = vec![("Content-Type", "text/plain"), ("Origin", ORIGIN)];
    all.extend_from_slice(headers);
    loop {
        match try_http(addr, "POST", "/r", &all, Some(body.as_bytes())) {
            Ok(resp) if resp.status == 204 => {
                seen.push("204".to_owned());
                return seen;
            }
            Ok(resp) => seen.push(format!("{} {}", resp.status, resp.body.trim())),
            Err(e) => seen.push(e.kind().to_string()),
        }
        assert!(
            Instant::now() < deadline,
            "no 204 within {SLACK:?}: {seen:?}"
        );
        // Not a timing assumption: only a pause between retries.
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn idle_and_trickling_connections_under_256_descriptors_do_not_stall_a_client() {
    let dir = temp_dir("slowloris");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start_with_fd_limit(&db, &["--header-timeout", "2"], 256);

    // 300 connections that send nothing, and 20 that send their head a
    // byte a second: more than the collector has descriptors.
    let mut silent: Vec<TcpStream> = (0..300)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    let trickling: Vec<_> = (0..20)
        .map(|_| {
            let addr = server.addr.clone();
            std::thread::spawn(move || trickle_head(&addr))
        })
        .collect();

    // A real client gets through once the collector has shed them.
    let body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    let answers = post_until_accepted(&server.addr, &body, &[]);
    eprintln!("client answers before its 204: {answers:?}");

    // Every silent connection is closed (refused at the cap, or after the
    // header timeout), and every trickling one.
    for (i, stream) in silent.iter_mut().enumerate() {
        assert!(
            closes_within(stream, SLACK),
            "silent connection {i} still open"
        );
    }
    for t in trickling {
        assert!(t.join().unwrap(), "a trickling connection was never closed");
    }

    assert_eq!(metric(&server, "tagwatch_connections_max"), 192.0);
    let cap = metric(&server, &closed_connection("connection_cap"));
    let header = metric(&server, &closed_connection("header_timeout"));
    eprintln!("refused at the cap: {cap}, header timeouts: {header}");
    assert!(cap >= 1.0 && header >= 1.0, "cap {cap}, header {header}");
    // Each of the 320 was counted once, one way or the other (the client's
    // refused attempts count as connection_cap too).
    assert!(cap + header >= 320.0, "cap {cap}, header {header}");
    assert_eq!(server.findings(&format!("site={key}")).len(), 1);
}

#[test]
fn a_connection_over_the_cap_is_closed_at_once() {
    let dir = temp_dir("cap");
    let db = db_url(&dir.join("t.db"));
    // The header timeout is an hour: only the cap can close a connection.
    let server = Server::start(&db, &["--max-connections", "3", "--header-timeout", "3600"]);
    // Accepted in the order they connect.
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    let mut over = TcpStream::connect(&server.addr).unwrap();
    assert!(closes_within(&mut over, SLACK), "not refused");
    // The three are still open.
    for stream in &mut held {
        assert!(!closes_within(stream, Duration::from_millis(100)));
    }
    // A slot comes back when one of them goes.
    drop(held.pop());
    let deadline = Instant::now() + SLACK;
    let metrics = loop {
        let auth = format!("Bearer {TOKEN}");
        if let Ok(resp) = try_http(
            &server.addr,
            "GET",
            "/metrics",
            &[("Authorization", &auth)],
            None,
        ) {
            break resp.body;
        }
        assert!(Instant::now() < deadline, "no slot came back");
        std::thread::sleep(Duration::from_millis(50));
    };
    let refused: f64 = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(&closed_connection("connection_cap"))?
                .trim()
                .parse()
                .ok()
        })
        .unwrap();
    assert!(refused >= 1.0, "{metrics}");
    assert!(
        metrics.contains("tagwatch_connections_max 3\n"),
        "{metrics}"
    );
}

#[test]
fn a_kept_alive_connection_is_closed_after_the_idle_timeout() {
    let dir = temp_dir("idle");
    let db = db_url(&dir.join("t.db"));
    let server = Server::start(&db, &["--idle-timeout", "1", "--header-timeout", "3600"]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        .unwrap();
    // The whole answer (`ok\n`, 3 bytes), on a connection kept alive.
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    stream.set_read_timeout(Some(SLACK)).unwrap();
    while !raw.ends_with(b"\r\n\r\nok\n") {
        let n = stream.read(&mut buf).unwrap();
        assert!(n > 0, "closed before the answer: {raw:?}");
        raw.extend_from_slice(&buf[..n]);
    }
    let resp = parse_response(&raw).unwrap();
    assert_eq!(resp.status, 200);
    assert_ne!(resp.header("connection"), Some("close"));
    // The answer says how long the connection stays open idle, so that a
    // client stops reusing it before the collector closes it.
    assert_eq!(resp.header("keep-alive"), Some("timeout=1"));
    // Then nothing: the collector closes it.
    assert!(closes_within(&mut stream, SLACK), "idle connection kept");
    assert_eq!(metric(&server, &closed_connection("idle_timeout")), 1.0);
    assert_eq!(metric(&server, &closed_connection("header_timeout")), 0.0);
}

#[test]
fn a_trickling_body_gets_408_at_the_body_timeout_and_the_connection_closes() {
    let dir = temp_dir("slowbody");
    let db = db_url(&dir.join("t.db"));
    let server = Server::start(&db, &["--body-timeout", "1"]);
    let mut stream = TcpStream::connect(&server.addr).unwrap();
    let head = format!(
        "POST /r HTTP/1.1\r\nHost: collector\r\nContent-Type: text/plain\r\nOrigin: {ORIGIN}\r\n\
         Content-Length: 10000\r\n\r\n["
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let deadline = Instant::now() + SLACK;
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    // A byte of body every half second, until the answer comes and the
    // connection closes.
    loop {
        assert!(Instant::now() < deadline, "no answer: {raw:?}");
        let _ = stream.write_all(b" ");
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => break,
        }
    }
    let resp = parse_response(&raw).unwrap();
    assert_eq!(resp.status, 408, "{}", resp.body);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(resp.body.contains("within 1 s"), "{}", resp.body);
    assert_eq!(
        metric(
            &server,
            "tagwatch_requests_refused_total{endpoint=\"reports\",reason=\"timeout\"}"
        ),
        1.0
    );
}

#[test]
fn sigterm_closes_idle_connections_and_exits_without_waiting_for_them() {
    let dir = temp_dir("drain");
    let db = db_url(&dir.join("t.db"));
    let mut server = Server::start(&db, &["--header-timeout", "3600", "--idle-timeout", "3600"]);
    // Connections that never send a request, and one kept alive after one.
    let mut silent: Vec<TcpStream> = (0..5)
        .map(|_| TcpStream::connect(&server.addr).unwrap())
        .collect();
    let mut kept = TcpStream::connect(&server.addr).unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    let mut buf = [0u8; 1024];
    kept.set_read_timeout(Some(SLACK)).unwrap();
    while !raw.ends_with(b"ok\n") {
        let n = kept.read(&mut buf).unwrap();
        assert!(n > 0);
        raw.extend_from_slice(&buf[..n]);
    }
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let log = server.stderr.lock().unwrap().clone();
    assert!(log.iter().any(|l| l == "tagwatch: stopped"), "{log:?}");
    // Closed by the drain, not left for the 30 s grace to cut.
    assert!(
        !log.iter().any(|l| l.contains("stopping anyway")),
        "{log:?}"
    );
    for stream in silent.iter_mut().chain([&mut kept]) {
        assert!(closes_within(stream, SLACK));
    }
}

/// The flood of the forged-report attack: `addresses` forged client
/// addresses (X-Forwarded-For, the collector runs with --behind-proxy)
/// sending the site's reports as fast as `threads` threads can.
struct Flood {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Per address: requests refused as beyond the visitor pace.
    shed: Arc<Vec<AtomicU64>>,
    accepted: Arc<AtomicU64>,
    /// Answers other than 204 and 429 with Retry-After.
    unexpected: Arc<Mutex<Vec<String>>>,
}

impl Flood {
    fn start(addr: &str, body: &str, addresses: usize, threads: usize) -> Flood {
        let stop = Arc::new(AtomicBool::new(false));
        let shed: Arc<Vec<AtomicU64>> =
            Arc::new((0..addresses).map(|_| AtomicU64::new(0)).collect());
        let accepted = Arc::new(AtomicU64::new(0));
        let unexpected = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|t| {
                let (addr, body, stop, shed, accepted, unexpected) = (
                    addr.to_owned(),
                    body.to_owned(),
                    stop.clone(),
                    shed.clone(),
                    accepted.clone(),
                    unexpected.clone(),
                );
                std::thread::spawn(move || {
                    let mine: Vec<usize> = (t..addresses).step_by(threads).collect();
                    let mut turn = 0usize;
                    while !stop.load(Ordering::Relaxed) {
                        let a = mine[turn % mine.len()];
                        turn += 1;
                        let forged = format!("198.18.{}.{}", a / 250, a % 250 + 1);
                        let resp = try_http(
                            &addr,
                            "POST",
                            "/r",
                            &[
                                ("Content-Type", "text/plain"),
                                ("Origin", ORIGIN),
                                ("X-Forwarded-For", &forged),
                            ],
                            Some(body.as_bytes()),
                        );
                        let Ok(resp) = resp else { continue };
                        let retry = resp
                            .header("retry-after")
                            .and_then(|v| v.parse::<u64>().ok())
                            .is_some_and(|s| s >= 1);
                        match resp.status {
                            204 => {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            }
                            429 if retry => {
                                if resp.body.contains("more than a visitor") {
                                    shed[a].fetch_add(1, Ordering::Relaxed);
                                }
                            }
                            _ => unexpected
                                .lock()
                                .unwrap()
                                .push(format!("{} {:?} {}", resp.status, resp.headers, resp.body)),
                        }
                    }
                })
            })
            .collect();
        Flood {
            stop,
            threads,
            shed,
            accepted,
            unexpected,
        }
    }

    fn stop(self) -> (u64, u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let shed = self.shed.iter().map(|n| n.load(Ordering::Relaxed)).sum();
        let unexpected = self.unexpected.lock().unwrap().clone();
        (self.accepted.load(Ordering::Relaxed), shed, unexpected)
    }
}

#[test]
fn a_browser_gets_every_batch_through_a_forged_flood_from_many_addresses() {
    let dir = temp_dir("flood");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    // The site may store 20 requests a second (40 at once); a visitor may
    // send 8 at once, then one every 1000 s (so that, within the test, an
    // address's pace is its burst: each forged address has exactly 8
    // requests within it). The per-address limit stays at its default
    // (10/s): each forged address is within it.
    let server = Server::start(
        &db,
        &[
            "--behind-proxy",
            "--rate",
            "20",
            "--burst",
            "40",
            "--visitor-rate",
            "0.001",
            "--visitor-burst",
            "8",
        ],
    );
    let flood_body = batch(&[finding(&key, PV, "cookie_before_consent", "intercom", 0, 1)]);
    let addresses = 32;
    let flood = Flood::start(&server.addr, &flood_body, addresses, 8);

    // Wait until every forged address has spent its visitor burst (each is
    // being shed) and the flood has had a request accepted beyond those
    // bursts: the site's bucket has refilled to its reserve, and from then
    // on the flood holds it there.
    let deadline = Instant::now() + SLACK;
    let bursts = u64::try_from(addresses).unwrap() * 8;
    while flood.shed.iter().any(|n| n.load(Ordering::Relaxed) == 0)
        || flood.accepted.load(Ordering::Relaxed) <= bursts
    {
        assert!(
            Instant::now() < deadline,
            "the flood is not shed: {:?}",
            flood.shed
        );
        std::thread::sleep(Duration::from_millis(20));
    }

    // A browser: one batch per page view, 8 page views, from its own address.
    let mut answers = Vec::new();
    for view in 0..8u64 {
        let pv = format!("{:016x}", 0xb000 + view);
        let body = batch(&[finding(
            &key,
            &pv,
            "script_before_consent",
            "intercom",
            0,
            1,
        )]);
        let resp = try_http(
            &server.addr,
            "POST",
            "/r",
            &[
                ("Content-Type", "text/plain"),
                ("Origin", ORIGIN),
                ("X-Forwarded-For", "203.0.113.7"),
            ],
            Some(body.as_bytes()),
        )
        .unwrap();
        answers.push((resp.status, resp.body));
    }
    let (flood_accepted, shed, unexpected) = flood.stop();
    eprintln!("flood: {flood_accepted} accepted, {shed} shed; browser: {answers:?}");
    assert!(
        answers.iter().all(|(status, _)| *status == 204),
        "the browser's batches were refused: {answers:?}"
    );
    assert!(unexpected.is_empty(), "{unexpected:?}");

    let shed_metric = metric(
        &server,
        "tagwatch_requests_refused_total{endpoint=\"reports\",reason=\"rate_limited_site_share\"}",
    );
    assert!(shed_metric >= f64::from(u32::try_from(addresses).unwrap()));
    // Every page view is stored.
    let stored = server.findings(&format!("site={key}&type=script_before_consent"));
    assert_eq!(stored.len(), 8);
}

#[test]
fn limits_out_of_range_are_usage_errors_and_a_tiny_descriptor_limit_is_refused() {
    let dir = temp_dir("bad-limits");
    let db = db_url(&dir.join("t.db"));
    for (flag, value, says) in [
        (
            "--header-timeout",
            "0",
            "--header-timeout 0: expected a number of seconds",
        ),
        (
            "--idle-timeout",
            "3601",
            "--idle-timeout 3601: expected a number of seconds",
        ),
        ("--body-timeout", "0", "--body-timeout 0"),
        (
            "--max-connections",
            "0",
            "--max-connections 0: expected 1 to",
        ),
        ("--visitor-rate", "-1", "--visitor-rate -1"),
        (
            "--visitor-burst",
            "0",
            "--visitor-burst: expected at least 1",
        ),
    ] {
        let out = std::process::Command::new(BIN)
            .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
            .arg(format!("{flag}={value}"))
            .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag} {value}: {stderr}");
        assert!(stderr.contains(says), "{flag} {value}: {stderr}");
    }
    // 70 descriptors leave 6 connections after the reserve of 64.
    let out = std::process::Command::new("sh")
        .args(["-c", "ulimit -n 70 && exec \"$0\" \"$@\"", BIN])
        .args(["serve", "--listen", "127.0.0.1:0", "--db", &db])
        .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("the descriptor limit (70) leaves fewer than 16 connections"),
        "{stderr}"
    );
    assert!(stderr.contains("ulimit -n"), "{stderr}");
    let _ = std::fs::remove_dir_all(dir);
}
