//! The GPP decoder: golden strings (tests/fixtures/gpp/cases.jsonl, from the
//! IAB reference library's tests and the spec's header examples), malformed
//! strings with their errors, hand-built headers and sections, and property
//! tests that random input never panics.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use serde_json::{json, Value};
use tagwatch_core::consent::{Categories, Category};
use tagwatch_core::gpp::{self, GppError, Section};

const CASES: &str = include_str!("../../tests/fixtures/gpp/cases.jsonl");
const MALFORMED: &str = include_str!("../../tests/fixtures/gpp/malformed.txt");
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn cats(c: Categories) -> Value {
    json!({
        "necessary": c.get(Category::Necessary),
        "functional": c.get(Category::Functional),
        "analytics": c.get(Category::Analytics),
        "marketing": c.get(Category::Marketing),
    })
}

#[test]
fn golden_cases() {
    let mut n = 0;
    for line in CASES.lines().filter(|l| !l.trim().is_empty()) {
        let case: Value = serde_json::from_str(line).unwrap();
        let s = case["gpp"].as_str().unwrap();
        let g = gpp::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        let ids: Vec<u64> = g.section_ids.iter().map(|i| u64::from(*i)).collect();
        assert_eq!(json!(ids), case["ids"], "{s}");
        assert_eq!(
            g.sections.iter().map(Section::id).collect::<Vec<_>>(),
            g.section_ids,
            "{s}"
        );
        assert_eq!(
            cats(g.categories()),
            case["categories"],
            "{s} ({})",
            case["source"]
        );
        n += 1;
    }
    assert!(n >= 20);
}

#[test]
fn malformed_strings() {
    for line in MALFORMED.lines().filter(|l| !l.starts_with('#')) {
        let (s, want) = line.split_once('\t').unwrap();
        let err = gpp::decode(s).expect_err(s).to_string();
        assert!(err.starts_with(want), "{s:?}: got {err:?}, want {want:?}");
    }
}

#[test]
fn usnat_fields() {
    // iabgpp-es UsNat.test.ts: encode() of these values is "BVVVkkkklWA.YA".
    let g = gpp::decode("DBABL~BVVVkkkklWA.YA").unwrap();
    let Section::Us(s) = &g.sections[0] else {
        panic!("not usnat")
    };
    assert_eq!(s.api, "usnat");
    assert_eq!(
        (
            s.version,
            s.value("SharingNotice"),
            s.value("SaleOptOut"),
            s.value("TargetedAdvertisingOptOut")
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(
        s.field("SensitiveDataProcessing"),
        [2, 1, 0, 2, 1, 0, 2, 1, 0, 2, 1, 0]
    );
    assert_eq!(s.field("KnownChildSensitiveDataConsents"), [2, 1]);
    assert_eq!(
        (
            s.value("PersonalDataConsents"),
            s.value("MspaCoveredTransaction"),
            s.value("MspaOptOutOptionMode"),
            s.value("MspaServiceProviderMode")
        ),
        (1, 1, 1, 2)
    );
    assert_eq!(s.gpc, Some(true));
    // Without the sub-section, GPC is absent (not false).
    let Section::Us(s) = &gpp::decode("DBABL~BVQqAAAAAa").unwrap().sections[0] else {
        panic!()
    };
    assert_eq!(
        (s.value("SaleOptOut"), s.value("SharingOptOut"), s.gpc),
        (2, 2, None)
    );
    // v2: 16 sensitive categories, 3 child consents.
    let Section::Us(s) = &gpp::decode("DBABL~CVVVkkkkkpFY.YA").unwrap().sections[0] else {
        panic!()
    };
    assert_eq!(s.field("SensitiveDataProcessing").len(), 16);
    assert_eq!(s.field("KnownChildSensitiveDataConsents"), [2, 1, 0]);
    assert_eq!(s.value("MspaServiceProviderMode"), 2);
}

#[test]
fn usca_fields_and_json() {
    let g = gpp::decode("DBABBg~BVWSSSVY.YA").unwrap();
    let v = serde_json::to_value(&g).unwrap();
    assert_eq!(v["sectionIds"], json!([8]));
    let s = &v["sections"][0];
    assert_eq!(s["api"], "usca");
    assert_eq!(s["SaleOptOut"], 1);
    assert_eq!(
        s["SensitiveDataProcessing"],
        json!([2, 1, 0, 2, 1, 0, 2, 1, 0])
    );
    assert_eq!(s["Gpc"], true);
    let v = serde_json::to_value(gpp::decode("DBABTA~1YNN").unwrap()).unwrap();
    assert_eq!(v["sections"][0], json!({"api": "other", "id": 6}));
}

#[test]
fn tcf_section_is_the_tcf_decoder() {
    let g = gpp::decode("DBABMA~CPSG_8APSG_8ANwAAAENAwCAAAAAAAAAAAAAAAAAAAAA.QAAA.IAAA").unwrap();
    let Section::TcfEuV2(tc) = &g.sections[0] else {
        panic!()
    };
    assert_eq!((tc.cmp_id, tc.vendor_list_version), (880, 48));
    assert_eq!(tc.consent_language.as_str(), "EN");
    assert!(tc.vendors_allowed.is_some() && tc.vendors_disclosed.is_some());
}

#[test]
fn applicable_sections_restrict_the_mapping() {
    let g = gpp::decode(
        "DBADMNg~CP_jZtQP_jZtQACAAAEN__FgAP_gAAAAAAYgf_wAQf_gAAAA~BVQqAAAAAa~BVWSSSVY.YA",
    )
    .unwrap();
    assert_eq!(g.categories().get(Category::Marketing), Some(false));
    assert_eq!(
        g.categories_for(Some(&[2])).get(Category::Marketing),
        Some(true)
    );
    assert_eq!(
        g.categories_for(Some(&[8])).get(Category::Marketing),
        Some(false)
    );
    assert_eq!(g.categories_for(Some(&[8])).get(Category::Analytics), None);
    assert_eq!(g.categories_for(Some(&[])), Categories::default());
}

// ------------------------------------------------------------ hand-built

#[derive(Default, Clone)]
struct Bits(String);

impl Bits {
    fn int(mut self, v: u64, n: usize) -> Self {
        self.0 += &format!("{v:0n$b}");
        self
    }
    fn fib(mut self, mut v: u64) -> Self {
        let mut fibs = vec![1u64, 2];
        while *fibs.last().unwrap() <= v {
            let k = fibs.len();
            fibs.push(fibs[k - 1] + fibs[k - 2]);
        }
        let mut out = vec!['0'; fibs.len()];
        for i in (0..fibs.len()).rev() {
            if fibs[i] <= v {
                out[i] = '1';
                v -= fibs[i];
            }
        }
        let s: String = out.into_iter().collect();
        self.0 += s.trim_end_matches('0');
        self.0 += "1";
        self
    }
    fn b64(&self) -> String {
        let mut bits = self.0.clone();
        while !bits.len().is_multiple_of(6) {
            bits.push('0');
        }
        bits.as_bytes()
            .chunks(6)
            .map(|c| {
                B64[usize::from_str_radix(std::str::from_utf8(c).unwrap(), 2).unwrap()] as char
            })
            .collect()
    }
}

/// Header with `entries` of (start, Some(end)) ranges or singles.
fn header(entries: &[(u64, Option<u64>)]) -> String {
    let mut b = Bits::default()
        .int(3, 6)
        .int(1, 6)
        .int(entries.len() as u64, 12);
    let mut last = 0;
    for (start, end) in entries {
        b = b.int(u64::from(end.is_some()), 1).fib(start - last);
        last = *start;
        if let Some(end) = end {
            b = b.fib(end - start);
            last = *end;
        }
    }
    b.b64()
}

#[test]
fn spec_header_examples() {
    assert_eq!(header(&[(2, None)]), "DBABM");
    assert_eq!(header(&[(2, None), (6, None)]), "DBACNY");
    assert_eq!(header(&[(5, Some(6))]), "DBABjw");
    let g = gpp::decode("DBABjw~x~y").unwrap();
    assert_eq!(g.section_ids, [5, 6]);
    assert_eq!(
        g.sections,
        [Section::Other { id: 5 }, Section::Other { id: 6 }]
    );
}

#[test]
fn hostile_range_does_not_allocate() {
    // One range 1..=65535 with a single section part.
    let h = header(&[(1, Some(65534))]);
    assert!(matches!(
        gpp::decode(&format!("{h}~x")),
        Err(GppError::SectionCount { .. })
    ));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_text_never_panics(s in ".{0,80}") {
        let _ = gpp::decode(&s);
    }

    #[test]
    fn arbitrary_base64_sections_never_panic(
        h in "[A-Za-z0-9_-]{0,12}",
        parts in proptest::collection::vec("[A-Za-z0-9_.-]{0,24}", 0..5),
    ) {
        let s = std::iter::once(h).chain(parts).collect::<Vec<_>>().join("~");
        if let Ok(g) = gpp::decode(&s) {
            let _ = g.categories();
            let _ = serde_json::to_string(&g).unwrap();
        }
    }

    #[test]
    fn valid_headers_round_trip(ids in proptest::collection::btree_set(1u64..200, 0..8)) {
        let entries: Vec<(u64, Option<u64>)> = ids.iter().map(|i| (*i, None)).collect();
        let parts: Vec<String> = ids.iter().map(|_| "x".to_string()).collect();
        let s = std::iter::once(header(&entries)).chain(parts).collect::<Vec<_>>().join("~");
        // ids 2 and 7-12 are decoded as sections; "x" is not a valid one.
        let skip = ids.iter().any(|i| [2, 7, 8, 9, 10, 11, 12].contains(i));
        match gpp::decode(&s) {
            Ok(g) => {
                prop_assert!(!skip);
                prop_assert_eq!(g.section_ids.iter().map(|i| u64::from(*i)).collect::<Vec<_>>(),
                    ids.iter().copied().collect::<Vec<_>>());
            }
            Err(e) => prop_assert!(skip, "{}", e),
        }
    }

    #[test]
    fn usnat_v1_fields_round_trip(
        notices in proptest::collection::vec(0u64..3, 6),
        optouts in proptest::collection::vec(0u64..3, 3),
        sdp in proptest::collection::vec(0u64..3, 12),
        child in proptest::collection::vec(0u64..3, 2),
        gpc in proptest::option::of(any::<bool>()),
    ) {
        let mut b = Bits::default().int(1, 6);
        for v in notices.iter().chain(&optouts).chain(&sdp).chain(&child) {
            b = b.int(*v, 2);
        }
        b = b.int(0, 2).int(1, 2).int(0, 2).int(0, 2);
        let mut section = b.b64();
        if let Some(g) = gpc {
            section = format!("{section}.{}", Bits::default().int(1, 2).int(u64::from(g), 1).b64());
        }
        let g = gpp::decode(&format!("DBABL~{section}")).unwrap();
        let Section::Us(s) = &g.sections[0] else { panic!() };
        prop_assert_eq!(u64::from(s.value("SaleOptOut")), optouts[0]);
        prop_assert_eq!(u64::from(s.value("TargetedAdvertisingOptOut")), optouts[2]);
        prop_assert_eq!(s.field("SensitiveDataProcessing").iter().map(|v| u64::from(*v)).collect::<Vec<_>>(), sdp);
        prop_assert_eq!(s.gpc, gpc);
        let marketing = g.categories().get(Category::Marketing);
        let refused = optouts.contains(&1) || child.contains(&1) || gpc == Some(true);
        let granted = !refused && optouts.contains(&2);
        prop_assert_eq!(marketing, if refused { Some(false) } else if granted { Some(true) } else { None });
    }
}

/// State sections 9-12, strings encoded by the IAB reference library
/// `@iabgpp/cmpapi` 3.2.0 (`GppModel.setFieldValue` then `encode`).
#[test]
fn us_state_sections() {
    use tagwatch_core::consent::Category::Marketing;
    let cases = [
        ("DBABJg~BAQAAEA.QA", vec![10], Some(false)), // usco SaleOptOut 1, GPC segment with Gpc false
        ("DBABRg~BAoAABA", vec![9], Some(true)), // usva did not opt out of sale or targeted ads
        ("DBABVg~BAgAABEA.QA", vec![12], Some(false)), // usct a known child without consent
        ("DBABFg~BAJAAAQA", vec![11], Some(false)), // usut TargetedAdvertisingOptOut 1
    ];
    for (s, ids, marketing) in cases {
        let g = gpp::decode(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(g.section_ids, ids, "{s}");
        assert_eq!(g.categories().get(Marketing), marketing, "{s}");
        let json = serde_json::to_value(&g).unwrap();
        assert!(
            json["sections"][0]["api"]
                .as_str()
                .unwrap()
                .starts_with("us"),
            "{json}"
        );
    }
    let usut = serde_json::to_value(gpp::decode("DBABFg~BAJAAAQA").unwrap()).unwrap();
    assert_eq!(
        usut["sections"][0]["KnownChildSensitiveDataConsents"], 0,
        "a single value, as the reference has it"
    );
    assert_eq!(
        usut["sections"][0]["SensitiveDataProcessing"],
        serde_json::json!([0, 0, 0, 0, 0, 0, 0, 0])
    );
    assert!(
        gpp::decode("DBABFg~CAJAAAQA").is_err(),
        "version 2 of usut is not known"
    );
}

/// Read as `@iabgpp/cmpapi` 3.2.0 reads them (values from its
/// `GppModel.toObject`): a US National version 1 core segment padded beyond
/// its 66 bits is read at version 2's field positions; the second segment
/// is the GPC sub-section whatever its GpcSegmentType, which is reported.
#[test]
fn us_national_read_as_the_reference_reads_it() {
    let usnat = |s: &str| {
        let Section::Us(s) = gpp::decode(s).unwrap().sections.remove(0) else {
            panic!("{s}")
        };
        s
    };
    let mspa = |s: &gpp::UsSection| {
        [
            "PersonalDataConsents",
            "MspaCoveredTransaction",
            "MspaOptOutOptionMode",
            "MspaServiceProviderMode",
        ]
        .map(|f| s.value(f))
    };
    // As the reference encodes version 1 (66 bits).
    let plain = usnat("DBABLA~BAAqAAAACmA");
    assert_eq!(plain.field("KnownChildSensitiveDataConsents"), [0, 0]);
    assert_eq!(mspa(&plain), [2, 2, 1, 2]);
    // The same, padded by a CMP to 78 bits.
    let padded = usnat("DBABLA~BAAqAAAACmAgA");
    assert_eq!(padded.field("SensitiveDataProcessing").len(), 12);
    assert_eq!(padded.field("KnownChildSensitiveDataConsents"), [1, 2]);
    assert_eq!(mspa(&padded), [0, 0, 2, 0]);
    // A GPC sub-section of type 2 still carries GPC.
    let g = gpp::decode("DBABLA~BAAqAAAACmA.o").unwrap();
    let v = serde_json::to_value(&g).unwrap();
    let s = &v["sections"][0];
    assert_eq!(
        (&s["GpcSegmentType"], &s["GpcSegmentIncluded"], &s["Gpc"]),
        (&json!(2), &json!(true), &json!(true))
    );
    assert_eq!(g.categories().get(Category::Marketing), Some(false));
    // Without the sub-section: the reference's defaults.
    let v = serde_json::to_value(gpp::decode("DBABLA~BAAqAAAACmA").unwrap()).unwrap();
    let s = &v["sections"][0];
    assert_eq!(
        (&s["GpcSegmentType"], &s["GpcSegmentIncluded"], &s["Gpc"]),
        (&json!(1), &json!(false), &json!(false))
    );
}
