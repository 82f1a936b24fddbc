//! docs/openapi.json against the running collector: the document is served
//! at /openapi.json, every documented path and method answers with a status
//! the document lists for it, and every JSON answer validates against the
//! documented schema (OpenAPI 3.1 schemas are JSON Schema 2020-12).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::disallowed_methods
)] // A test fails by panicking; it reads fixtures of its own.

mod common;

use std::collections::BTreeSet;

use serde_json::{json, Value};

use common::*;

const DOC: &str = include_str!("../../../docs/openapi.json");

/// A validator for `#/components/schemas/NAME`-style references inside the
/// document.
fn validator(doc: &Value, schema: &Value) -> jsonschema::Validator {
    let root = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "components": doc["components"],
        "allOf": [schema],
    });
    jsonschema::draft202012::new(&root).unwrap()
}

fn operations(doc: &Value) -> Vec<(String, String, Value, Vec<Value>)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let shared: Vec<Value> = item["parameters"].as_array().cloned().unwrap_or_default();
        for (method, op) in item.as_object().unwrap() {
            if method == "parameters" {
                continue;
            }
            let mut params = shared.clone();
            params.extend(op["parameters"].as_array().cloned().unwrap_or_default());
            out.push((path.clone(), method.clone(), op.clone(), params));
        }
    }
    out
}

#[test]
fn every_documented_operation_answers_as_documented() {
    let doc: Value = serde_json::from_str(DOC).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let ops = operations(&doc);
    let ids: BTreeSet<&str> = ops
        .iter()
        .map(|(_, _, op, _)| op["operationId"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), ops.len(), "operationIds are unique");

    let dir = temp_dir("openapi");
    let db = db_url(&dir.join("t.db"));
    let key = site_add(&db, &[ORIGIN]);
    let server = Server::start(&db, &[]);
    let auth = format!("Bearer {TOKEN}");

    // The served document is the file.
    let served = server.http("GET", "/openapi.json", &[], None);
    assert_eq!(served.status, 200);
    assert_eq!(serde_json::from_str::<Value>(&served.body).unwrap(), doc);

    // Writes first, so that the reads have something to validate.
    let mut ops = ops;
    ops.sort_by_key(|(_, method, _, _)| (method != "post", method != "options"));
    let mut checked = 0;
    for (path, method, op, params) in &ops {
        let url_path = path.replace("{key}", &key);
        let mut query: Vec<String> = Vec::new();
        for p in params {
            if p["in"] == "query" && p["required"] == true {
                match p["name"].as_str() {
                    Some("site") => query.push(format!("site={key}")),
                    // The release of the documented report example.
                    Some(end @ ("from" | "to")) => query.push(format!("{end}=shop-2026.12.1")),
                    _ => panic!("{path}: a required query parameter the test does not know"),
                }
            }
        }
        let target = if query.is_empty() {
            url_path.clone()
        } else {
            format!("{url_path}?{}", query.join("&"))
        };
        let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
        let mut headers: Vec<(&str, String)> = Vec::new();
        if secured {
            headers.push(("Authorization", auth.clone()));
        }
        let mut body: Option<Vec<u8>> = None;
        if let Some(content) = op["requestBody"]["content"].as_object() {
            let (ctype, media) = content
                .iter()
                .find(|(_, m)| m.get("example").is_some())
                .unwrap_or_else(|| panic!("{method} {path}: no request example"));
            headers.push(("Content-Type", ctype.clone()));
            let example = media["example"].to_string().replace("SITE_KEY", &key);
            body = Some(example.into_bytes());
            if !path.starts_with("/csp/") {
                headers.push(("Origin", ORIGIN.to_owned()));
            }
        }
        if method == "options" {
            headers.push(("Origin", ORIGIN.to_owned()));
            headers.push(("Access-Control-Request-Method", "POST".to_owned()));
        }
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let resp = server.http(&method.to_uppercase(), &target, &h, body.as_deref());
        let documented = &op["responses"][resp.status.to_string()];
        assert!(
            documented.is_object(),
            "{method} {target} answered {} ({}), which docs/openapi.json does not list",
            resp.status,
            resp.body
        );
        assert!(
            resp.status < 300,
            "{method} {target}: {} {}",
            resp.status,
            resp.body
        );
        if let Some(schema) = documented["content"]["application/json"]["schema"].as_object() {
            let v: Value = serde_json::from_str(&resp.body).unwrap();
            let validator = validator(&doc, &Value::Object(schema.clone()));
            if let Some(e) = validator.iter_errors(&v).next() {
                panic!(
                    "{method} {target}: the answer does not match its schema: {e} at {}\n{v}",
                    e.instance_path()
                );
            }
            if path == "/api/findings" {
                let types: BTreeSet<&str> = v["findings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|f| f["type"].as_str().unwrap())
                    .collect();
                assert_eq!(
                    types,
                    BTreeSet::from(["csp_blocked", "script_before_consent"]),
                    "the examples were stored"
                );
            }
        }
        for (name, header) in documented["headers"].as_object().into_iter().flatten() {
            let value = resp
                .header(name)
                .unwrap_or_else(|| panic!("{method} {target}: no {name} header"));
            if let Some(c) = header["schema"]["const"].as_str() {
                assert_eq!(value, c, "{method} {target}: {name}");
            }
        }
        // Without the token: the documented 401.
        if secured {
            let resp = server.http(&method.to_uppercase(), &target, &[], None);
            assert_eq!(resp.status, 401);
            assert!(
                op["responses"]["401"].is_object(),
                "{method} {path}: 401 undocumented"
            );
        }
        // Errors the document lists are answered as documented too.
        if path.contains("{key}") && method == "get" {
            let resp = server.http("GET", &path.replace("{key}", "tw_unknown"), &[], None);
            assert!(
                op["responses"][resp.status.to_string()].is_object(),
                "{path} unknown key: {}",
                resp.status
            );
        }
        if op["responses"]["400"].is_object() && method == "get" {
            let resp = server.http("GET", &url_path, &[("Authorization", &auth)], None);
            assert_eq!(resp.status, 400, "{path} without site");
        }
        checked += 1;
    }
    assert!(checked >= 12, "{checked} operations");
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
}
