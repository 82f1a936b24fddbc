//! `tagwatch consent` on the real binary: every golden case of
//! tests/fixtures/cmp/cases.jsonl streamed through one process, answers
//! matched line for line with the exact wire shape of the contract.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tagwatch");
const CASES: &str = include_str!("../../tests/fixtures/cmp/cases.jsonl");

fn run(stdin: &[u8]) -> (String, i32) {
    let mut child = Command::new(BIN)
        .arg("consent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let data = stdin.to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    assert!(
        out.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8(out.stdout).unwrap(),
        out.status.code().unwrap(),
    )
}

#[test]
fn golden_cases_through_the_binary() {
    let cases: Vec<Value> = CASES
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let mut input = String::new();
    for case in &cases {
        input.push_str(case["header"].as_str().unwrap());
        // Blank lines in between produce no output.
        input.push_str("\n\n");
    }
    let (out, code) = run(input.as_bytes());
    assert_eq!(code, 0);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), cases.len());
    for (line, case) in lines.iter().zip(&cases) {
        // Exactly the contract's keys, in the contract's order, nothing else.
        let e = &case["expect"];
        let c = &e["categories"];
        // `vendors` (per-service choices) only where there are some.
        let vendors = e
            .get("vendors")
            .map_or(String::new(), |v| format!(r#","vendors":{v}"#));
        let expected = format!(
            r#"{{"cmp":{},"decided":{},"basis":{},"categories":{{"necessary":{},"functional":{},"analytics":{},"marketing":{}}}{vendors}}}"#,
            e["cmp"],
            e["decided"],
            e["basis"],
            c["necessary"],
            c["functional"],
            c["analytics"],
            c["marketing"]
        );
        assert_eq!(*line, expected, "{}", case["name"]);
    }
}

#[test]
fn streams_one_answer_per_line() {
    let mut child = Command::new(BIN)
        .arg("consent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    let mut output = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    // The answer arrives before stdin is closed.
    input
        .write_all(b"Cookie: cmplz_statistics=allow; cmplz_banner-status=dismissed\n")
        .unwrap();
    input.flush().unwrap();
    output.read_line(&mut line).unwrap();
    let v: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["cmp"], "complianz");
    assert_eq!(v["categories"]["analytics"], true);
    drop(input);
    assert!(child.wait().unwrap().success());
}

#[test]
fn garbage_and_empty_input_exit_zero() {
    let (out, code) = run(b"");
    assert_eq!((out.as_str(), code), ("", 0));
    let (out, code) = run(b"\xff\xfe; didomi_token=%%%; ;;\n=\nCookieConsent={stamp:'\n");
    assert_eq!(code, 0);
    let lines: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert_eq!(lines[0]["cmp"], "didomi");
    assert_eq!(lines[0]["decided"], false);
    assert_eq!(lines[1]["cmp"], Value::Null);
    assert_eq!(lines[2]["cmp"], "cookiebot");
}
