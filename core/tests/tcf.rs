//! The TC string decoder: known strings, error messages, hand-built bit
//! strings round-tripped through every encoding, and property tests that
//! random input never panics.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use tagwatch_core::tcf::{self, TcfError};

const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A bit string under construction.
#[derive(Default, Clone)]
struct Bits(Vec<bool>);

impl Bits {
    fn int(&mut self, v: u64, n: u32) -> &mut Self {
        for i in (0..n).rev() {
            self.0.push((v >> i) & 1 == 1);
        }
        self
    }
    fn flag(&mut self, b: bool) -> &mut Self {
        self.0.push(b);
        self
    }
    fn fixed(&mut self, set: &BTreeSet<u16>, n: u16) -> &mut Self {
        for id in 1..=n {
            self.flag(set.contains(&id));
        }
        self
    }
    fn letters(&mut self, s: &str) -> &mut Self {
        for c in s.bytes() {
            self.int(u64::from(c - b'A'), 6);
        }
        self
    }
    /// Vendor section, bitfield or range encoded.
    fn vendors(&mut self, set: &BTreeSet<u16>, range: bool) -> &mut Self {
        let max = set.iter().max().copied().unwrap_or(0);
        self.int(u64::from(max), 16).flag(range);
        if range {
            let runs = runs(set);
            self.int(runs.len() as u64, 12);
            for (a, b) in runs {
                self.flag(a != b).int(u64::from(a), 16);
                if a != b {
                    self.int(u64::from(b), 16);
                }
            }
        } else {
            self.fixed(set, max);
        }
        self
    }
    fn base64(&self) -> String {
        let mut bits = self.0.clone();
        while !bits.len().is_multiple_of(6) {
            bits.push(false);
        }
        bits.chunks(6)
            .map(|c| B64[c.iter().fold(0usize, |a, b| a << 1 | usize::from(*b))] as char)
            .collect()
    }
}

fn runs(set: &BTreeSet<u16>) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &id in set {
        match out.last_mut() {
            Some((_, end)) if u32::from(*end) + 1 == u32::from(id) => *end = id,
            _ => out.push((id, id)),
        }
    }
    out
}

#[derive(Debug, Clone)]
struct Core {
    created: u64,
    updated: u64,
    cmp_id: u16,
    cmp_version: u16,
    screen: u8,
    vlv: u16,
    policy: u8,
    service_specific: bool,
    non_standard: bool,
    special: BTreeSet<u16>,
    purposes: BTreeSet<u16>,
    purposes_li: BTreeSet<u16>,
    p1t: bool,
    consents: BTreeSet<u16>,
    consents_range: bool,
    li: BTreeSet<u16>,
    li_range: bool,
}

fn core_bits(c: &Core) -> Bits {
    let mut b = Bits::default();
    b.int(2, 6)
        .int(c.created, 36)
        .int(c.updated, 36)
        .int(u64::from(c.cmp_id), 12)
        .int(u64::from(c.cmp_version), 12)
        .int(u64::from(c.screen), 6)
        .letters("EN")
        .int(u64::from(c.vlv), 12)
        .int(u64::from(c.policy), 6)
        .flag(c.service_specific)
        .flag(c.non_standard)
        .fixed(&c.special, 12)
        .fixed(&c.purposes, 24)
        .fixed(&c.purposes_li, 24)
        .flag(c.p1t)
        .letters("DE")
        .vendors(&c.consents, c.consents_range)
        .vendors(&c.li, c.li_range)
        .int(0, 12);
    b
}

fn ids(set: &tcf::IdSet) -> BTreeSet<u16> {
    set.iter().collect()
}

fn id_set(max: u16, len: usize) -> impl Strategy<Value = BTreeSet<u16>> {
    proptest::collection::btree_set(1..=max, 0..len)
}

fn arb_core() -> impl Strategy<Value = Core> {
    (
        (
            0u64..1 << 36,
            0u64..1 << 36,
            0u16..4096,
            0u16..4096,
            0u8..64,
            0u16..4096,
            0u8..64,
        ),
        (
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
            any::<bool>(),
        ),
        (id_set(12, 12), id_set(24, 24), id_set(24, 24)),
        (id_set(65535, 40), id_set(1200, 300)),
    )
        .prop_map(
            |(
                (created, updated, cmp_id, cmp_version, screen, vlv, policy),
                (service_specific, non_standard, p1t, consents_range, li_range),
                (special, purposes, purposes_li),
                (consents, li),
            )| Core {
                created,
                updated,
                cmp_id,
                cmp_version,
                screen,
                vlv,
                policy,
                service_specific,
                non_standard,
                special,
                purposes,
                purposes_li,
                p1t,
                consents,
                consents_range,
                li,
                li_range,
            },
        )
}

#[test]
fn decodes_a_real_string() {
    let tc = tcf::decode("COwAdDhOwAdDhN4ABAENAPCgAAQAAv___wAAAFP_AAp_4AI6ACACAA").unwrap();
    assert_eq!(tc.version, 2);
    assert_eq!(tc.cmp_id, 888);
    assert_eq!(tc.consent_language.as_str(), "EN");
    assert_eq!(
        tc.vendor_legitimate_interests.iter().collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    assert_eq!(tc.publisher_restrictions.len(), 1);
    assert_eq!(tc.publisher_restrictions[0].purpose_id, 7);
    let json = serde_json::to_value(&tc).unwrap();
    assert!(json["created"].as_str().unwrap().ends_with('Z'));
    assert!(json.get("vendorsDisclosed").is_none());
}

#[test]
fn decodes_optional_segments() {
    let tc = tcf::decode(
        "CP_jZtQP_jZtQEsACBENCWEgAIAAAAAAAAYgF5wAQF5gAAAA.IH0QAoF5gXoA-gAA.cAAACAAAAAAA",
    )
    .unwrap();
    assert_eq!(
        ids(tc.vendors_disclosed.as_ref().unwrap()),
        BTreeSet::from([755, 756, 1000])
    );
    let p = tc.publisher_tc.unwrap();
    assert_eq!(ids(&p.publisher_consents), BTreeSet::from([1]));
    assert_eq!(ids(&p.publisher_legitimate_interests), BTreeSet::from([2]));
    assert_eq!(p.num_custom_purposes, 0);
}

#[test]
fn error_messages_are_clear() {
    let msg = |s: &str| tcf::decode(s).unwrap_err().to_string();
    assert_eq!(msg(""), "empty TC string");
    assert_eq!(
        msg("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA"),
        "unsupported version 1"
    );
    assert_eq!(msg("CPXx+f"), "segment 1: not base64url (byte 4)");
    assert_eq!(msg("CPXxRf"), "core segment: truncated at bit 6 (created)");
    assert_eq!(
        msg("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAA"),
        "core segment: truncated at bit 246 (vendorLegitimateInterests)"
    );
    assert_eq!(
        msg("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA."),
        "segment 2: empty"
    );
    assert_eq!(
        msg("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA.gAAA"),
        "segment 2: unknown segment type 4"
    );
    assert!(matches!(
        tcf::decode("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA.YAAAAAAAAAAA.YAAAAAAAAAAA"),
        Err(TcfError::DuplicateSegment(_))
    ));
}

#[test]
fn range_errors() {
    let base = Core {
        created: 0,
        updated: 0,
        cmp_id: 10,
        cmp_version: 1,
        screen: 0,
        vlv: 1,
        policy: 4,
        service_specific: true,
        non_standard: false,
        special: BTreeSet::new(),
        purposes: BTreeSet::new(),
        purposes_li: BTreeSet::new(),
        p1t: false,
        consents: BTreeSet::new(),
        consents_range: false,
        li: BTreeSet::new(),
        li_range: false,
    };
    let mut b = core_bits(&base);
    // Keep everything up to PublisherCC (213 bits), then a reversed range.
    b.0.truncate(213);
    b.int(10, 16)
        .flag(true)
        .int(1, 12)
        .flag(true)
        .int(9, 16)
        .int(3, 16);
    assert_eq!(
        tcf::decode(&b.base64()).unwrap_err().to_string(),
        "core segment: vendorConsents: invalid vendor range 9-3"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn hand_built_core_round_trips(c in arb_core()) {
        let tc = tcf::decode(&core_bits(&c).base64()).unwrap();
        prop_assert_eq!(tc.created.0, c.created);
        prop_assert_eq!(tc.last_updated.0, c.updated);
        prop_assert_eq!(tc.cmp_id, c.cmp_id);
        prop_assert_eq!(tc.cmp_version, c.cmp_version);
        prop_assert_eq!(tc.consent_screen, c.screen);
        prop_assert_eq!(tc.vendor_list_version, c.vlv);
        prop_assert_eq!(tc.tcf_policy_version, c.policy);
        prop_assert_eq!(tc.is_service_specific, c.service_specific);
        prop_assert_eq!(tc.use_non_standard_texts, c.non_standard);
        prop_assert_eq!(tc.purpose_one_treatment, c.p1t);
        prop_assert_eq!(tc.publisher_cc.as_str(), "DE");
        prop_assert_eq!(ids(&tc.special_feature_optins), c.special.clone());
        prop_assert_eq!(ids(&tc.purpose_consents), c.purposes.clone());
        prop_assert_eq!(ids(&tc.purpose_legitimate_interests), c.purposes_li.clone());
        prop_assert_eq!(ids(&tc.vendor_consents), c.consents.clone());
        prop_assert_eq!(ids(&tc.vendor_legitimate_interests), c.li.clone());
        prop_assert_eq!(tc.vendor_consents.len(), c.consents.len());
    }

    #[test]
    fn hand_built_segments_round_trip(
        c in arb_core(),
        disclosed in id_set(3000, 50),
        range in any::<bool>(),
        pub_consents in id_set(24, 24),
        custom in 0u16..64,
        custom_bits in proptest::collection::vec(any::<bool>(), 128),
    ) {
        let mut d = Bits::default();
        d.int(1, 3).vendors(&disclosed, range);
        let mut p = Bits::default();
        let custom_consents: BTreeSet<u16> = (1..=custom).filter(|i| custom_bits[usize::from(*i)]).collect();
        let custom_li: BTreeSet<u16> = (1..=custom).filter(|i| !custom_bits[usize::from(*i) + 64 - 1]).collect();
        p.int(3, 3).fixed(&pub_consents, 24).fixed(&BTreeSet::new(), 24).int(u64::from(custom), 6)
            .fixed(&custom_consents, custom).fixed(&custom_li, custom);
        let s = format!("{}.{}.{}", core_bits(&c).base64(), p.base64(), d.base64());
        let tc = tcf::decode(&s).unwrap();
        prop_assert_eq!(ids(tc.vendors_disclosed.as_ref().unwrap()), disclosed);
        let pt = tc.publisher_tc.unwrap();
        prop_assert_eq!(ids(&pt.publisher_consents), pub_consents);
        prop_assert_eq!(u16::from(pt.num_custom_purposes), custom);
        prop_assert_eq!(ids(&pt.publisher_custom_consents), custom_consents);
        prop_assert_eq!(ids(&pt.publisher_custom_legitimate_interests), custom_li);
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic(c in arb_core(), cut in 0usize..10_000) {
        let s = core_bits(&c).base64();
        let cut = cut % s.len();
        // Cutting whole characters off can leave padding-only tails that
        // still decode; it must never panic, and shorter than the fixed
        // part (213 bits = 36 characters) must fail.
        let r = tcf::decode(&s[..cut]);
        if cut < 36 {
            prop_assert!(r.is_err());
        }
    }

    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let s = String::from_utf8_lossy(&bytes);
        let _ = tcf::decode(&s).map(|tc| serde_json::to_string(&tc).unwrap());
    }

    #[test]
    fn random_base64_never_panics(s in "C[A-Za-z0-9_-]{0,300}(\\.[A-Za-z0-9_.-]{0,80}){0,4}") {
        if let Ok(tc) = tcf::decode(&s) {
            let json = serde_json::to_value(&tc).unwrap();
            prop_assert!(json["created"].as_str().unwrap().len() == 24);
        }
    }
}
