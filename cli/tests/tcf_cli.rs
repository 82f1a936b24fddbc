//! `tagwatch tcf` as a process: the corpus decodes, the malformed list gives
//! one `{"error":…}` a line, exit 0, blank lines skipped.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_tagwatch");

fn fixture(name: &str) -> String {
    std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/tcf")
            .join(name),
    )
    .unwrap()
}

fn tcf(input: &str) -> (i32, Vec<Value>) {
    let mut child = Command::new(BIN)
        .arg("tcf")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let data = input.to_owned();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(data.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let lines = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    (out.status.code().unwrap(), lines)
}

#[test]
fn corpus_decodes_with_the_contract_fields() {
    let corpus = fixture("strings.txt");
    let (code, out) = tcf(&corpus);
    assert_eq!(code, 0);
    assert_eq!(
        out.len(),
        corpus.lines().filter(|l| !l.trim().is_empty()).count()
    );
    for v in &out {
        assert!(v.get("error").is_none(), "{v}");
        for key in [
            "cmpId",
            "cmpVersion",
            "vendorListVersion",
            "tcfPolicyVersion",
            "isServiceSpecific",
            "useNonStandardTexts",
            "purposeOneTreatment",
            "publisherCC",
            "purposeConsents",
            "purposeLegitimateInterests",
            "specialFeatureOptins",
            "vendorConsents",
            "vendorLegitimateInterests",
            "created",
            "lastUpdated",
        ] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
        let ids = v["vendorConsents"].as_array().unwrap();
        assert!(
            ids.windows(2).all(|w| w[0].as_u64() < w[1].as_u64()),
            "sorted ids"
        );
    }
}

#[test]
fn malformed_lines_give_errors_and_exit_0() {
    let bad = fixture("malformed.txt");
    let (code, out) = tcf(&format!("\n{bad}\n  \n"));
    assert_eq!(code, 0);
    assert_eq!(
        out.len(),
        bad.lines().filter(|l| !l.trim().is_empty()).count()
    );
    for v in &out {
        let obj = v.as_object().unwrap();
        assert_eq!(obj.len(), 1, "{v}");
        assert!(!obj["error"].as_str().unwrap().is_empty());
    }
}

#[test]
fn one_known_string_field_by_field() {
    let (code, out) = tcf("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA\r\n");
    assert_eq!(code, 0);
    let v = &out[0];
    assert_eq!(v["cmpId"], 31);
    assert_eq!(v["cmpVersion"], 640);
    assert_eq!(v["vendorListVersion"], 126);
    assert_eq!(v["tcfPolicyVersion"], 2);
    assert_eq!(v["publisherCC"], "DE");
    assert_eq!(v["created"], "2022-04-20T22:00:00.000Z");
    assert_eq!(v["vendorConsents"], serde_json::json!([]));
}
