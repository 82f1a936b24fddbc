//! Harness shared by the integration tests: the real `tagwatch` binary,
//! started as a child process, spoken to over plain HTTP/1.1.

#![allow(dead_code, unused_imports, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub use tagwatch_store::testing as pg;

// The same report builders as the in-process tests (one copy).
#[path = "../../../crates/collector/tests/common/reports.rs"]
mod reports;
pub use reports::*;

pub const BIN: &str = env!("CARGO_BIN_EXE_tagwatch");

// ------------------------------------------------------------- harness

/// `tagwatch site add --db URL`, returning the key (asserting stdout is the
/// key alone).
pub fn site_add(db: &str, origins: &[&str]) -> String {
    let mut cmd = Command::new(BIN);
    cmd.args(["site", "add", "--db", db]);
    for o in origins {
        cmd.args(["--origin", o]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "site add failed: {out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let key = stdout.strip_suffix('\n').expect("key ends with a newline");
    assert!(
        !key.contains('\n'),
        "stdout has more than the key: {stdout:?}"
    );
    key.to_owned()
}

pub struct Server {
    pub child: Child,
    pub addr: String,
    /// The `--db` URL.
    pub db: String,
    pub stderr: Arc<Mutex<Vec<String>>>,
    /// The thread that reads the process's stderr into `stderr`: it ends
    /// at the pipe's end, after the process exited.
    reader: Option<std::thread::JoinHandle<()>>,
    /// Removed when the server is dropped (after its process ended).
    pub owned_dir: Option<TempDir>,
}

impl Server {
    /// `tagwatch serve --db URL`, once it says it listens.
    pub fn start(db: &str, extra: &[&str]) -> Server {
        Self::start_in(Command::new(BIN), db, extra)
    }

    /// The same with at most `fds` open descriptors (`ulimit -n`).
    pub fn start_with_fd_limit(db: &str, extra: &[&str], fds: u32) -> Server {
        let mut sh = Command::new("sh");
        sh.args(["-c", &format!("ulimit -n {fds} && exec \"$0\" \"$@\""), BIN]);
        Self::start_in(sh, db, extra)
    }

    /// `cmd serve …`: `cmd` runs the binary with the arguments it is given.
    fn start_in(mut cmd: Command, db: &str, extra: &[&str]) -> Server {
        let mut child = cmd
            .args(["serve", "--listen", "127.0.0.1:0", "--db", db])
            .args(extra)
            .env("TAGWATCH_ADMIN_TOKEN", TOKEN)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let keep = lines.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("tagwatch: listening on http://") {
                    let _ = tx.send(addr.to_owned());
                }
                keep.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!("server did not start: {:?}", lines.lock().unwrap());
            }
        };
        Server {
            child,
            addr,
            db: db.to_owned(),
            stderr: lines,
            reader: Some(reader),
            owned_dir: None,
        }
    }

    pub fn post(&self, origin: Option<&str>, body: &str) -> Resp {
        let mut headers = vec![("Content-Type", "text/plain;charset=UTF-8")];
        if let Some(o) = origin {
            headers.push(("Origin", o));
        }
        http(&self.addr, "POST", "/r", &headers, Some(body.as_bytes()))
    }

    pub fn get_api(&self, path: &str) -> Resp {
        let auth = format!("Bearer {TOKEN}");
        http(&self.addr, "GET", path, &[("Authorization", &auth)], None)
    }

    pub fn findings(&self, query: &str) -> Vec<Value> {
        let resp = self.get_api(&format!("/api/findings?{query}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        let v: Value = serde_json::from_str(&resp.body).unwrap();
        v["findings"].as_array().unwrap().clone()
    }

    /// SIGKILL: no draining, no clean shutdown.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    pub fn health(&self, query: &str) -> Vec<Value> {
        let resp = self.get_api(&format!("/api/health?{query}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        let v: Value = serde_json::from_str(&resp.body).unwrap();
        v["health"].as_array().unwrap().clone()
    }

    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let ok = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(40);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                // Every line it wrote read before the caller looks at
                // `stderr` (its last lines, `tagwatch: stopped`, can still
                // be in the pipe when the process has exited).
                if let Some(reader) = self.reader.take() {
                    let _ = reader.join();
                }
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
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

pub fn try_http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> std::io::Result<Resp> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    let chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if let (Some(b), false) = (body, chunked) {
        head.push_str(&format!("Content-Length: {}\r\n", b.len()));
    }
    head.push_str("\r\n");
    // A server may answer (413) before reading everything: ignore write
    // errors and read the answer anyway.
    let _ = stream.write_all(head.as_bytes());
    if let Some(b) = body {
        if chunked {
            for chunk in b.chunks(8192) {
                let _ = stream.write_all(format!("{:x}\r\n", chunk.len()).as_bytes());
                let _ = stream.write_all(chunk);
                let _ = stream.write_all(b"\r\n");
            }
            let _ = stream.write_all(b"0\r\n\r\n");
        } else {
            let _ = stream.write_all(b);
        }
    }
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    parse_response(&raw)
}

pub fn http(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    try_http(addr, method, path, headers, body).unwrap()
}

pub fn parse_response(raw: &[u8]) -> std::io::Result<Resp> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("head not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or_else(|| bad("no status line"))?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status line"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut body = raw[split + 4..].to_vec();
    let is_chunked = headers
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("transfer-encoding") && v.contains("chunked"));
    if is_chunked {
        let mut out = Vec::new();
        let mut rest = &body[..];
        loop {
            let eol = rest
                .windows(2)
                .position(|w| w == b"\r\n")
                .ok_or_else(|| bad("bad chunk"))?;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap_or("x"), 16)
                .map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            out.extend_from_slice(&rest[eol + 2..eol + 2 + size]);
            rest = &rest[eol + 2 + size + 2..];
        }
        body = out;
    }
    Ok(Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

impl Server {
    pub fn inventory(&self, query: &str) -> Value {
        let resp = self.get_api(&format!("/api/inventory?{query}"));
        assert_eq!(resp.status, 200, "{}", resp.body);
        assert_eq!(resp.header("content-type"), Some("application/json"));
        serde_json::from_str(&resp.body).unwrap()
    }
}
