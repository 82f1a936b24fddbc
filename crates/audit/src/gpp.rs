//! `tagwatch gpp`: stdin, one GPP string a line; stdout, one JSON object a
//! line: `{"version","sectionIds","sections":[{"api":"usnat",…}],
//! "categories":{…}}` — sections with the field names of the GPP client API
//! (`SaleOptOut`), a TCF EU section as `tagwatch tcf` prints it, other
//! sections as `{"api":"other","id"}`, and the normalised categories the
//! monitor derives (`docs/policy.md`) — or `{"error":"…"}`.
//!
//! Lines are trimmed; blank lines are skipped. Exit 0 whatever the lines
//! hold. The decoder is [`tagwatch_core::gpp`], the one the monitor runs.

use serde::Serialize;
use tagwatch_core::consent::{Categories, Category};
use tagwatch_core::gpp;

use super::lines;
use crate::Failure;

/// Longest line decoded, in bytes.
pub const MAX_LINE: usize = 65_536;

#[derive(Serialize)]
struct Decoded {
    #[serde(flatten)]
    gpp: gpp::Gpp,
    categories: CategoriesJson,
}

#[derive(Serialize)]
struct CategoriesJson {
    necessary: Option<bool>,
    functional: Option<bool>,
    analytics: Option<bool>,
    marketing: Option<bool>,
}

impl From<Categories> for CategoriesJson {
    fn from(c: Categories) -> Self {
        CategoriesJson {
            necessary: c.get(Category::Necessary),
            functional: c.get(Category::Functional),
            analytics: c.get(Category::Analytics),
            marketing: c.get(Category::Marketing),
        }
    }
}

/// Runs the command on the process's stdin and stdout.
pub fn run() -> Result<(), Failure> {
    lines::run(MAX_LINE, respond)
}

fn respond(text: &str, overlong: bool, json: &mut Vec<u8>) {
    if overlong {
        return lines::write_error(json, "line longer than 65536 bytes");
    }
    lines::write_result(
        json,
        gpp::decode(text).map(|g| Decoded {
            categories: g.categories().into(),
            gpp: g,
        }),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noise;

    #[test]
    fn decodes_and_reports_errors() {
        let out = String::from_utf8(lines::run_on(
            b"DBABL~BVQqAAAAAa.Y\n\nDBABM\n",
            16,
            MAX_LINE,
            respond,
        ))
        .unwrap();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["sectionIds"], serde_json::json!([7]));
        assert_eq!(lines[0]["sections"][0]["api"], "usnat");
        assert_eq!(lines[0]["sections"][0]["Gpc"], true);
        assert_eq!(lines[0]["categories"]["marketing"], false);
        assert!(
            lines[1]["error"].as_str().unwrap().contains("header"),
            "{}",
            lines[1]
        );
    }

    #[test]
    fn stream_never_panics_on_noise() {
        for seed in 0..100 {
            let bytes = noise(
                seed,
                (seed * 131 % 9_000) as usize,
                b"\r\n~.DBABLMAQCYgZa-_",
            );
            let out = lines::run_on(&bytes, 7, MAX_LINE, respond);
            for line in out.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let _: serde_json::Value = serde_json::from_slice(line).unwrap();
            }
        }
    }
}
