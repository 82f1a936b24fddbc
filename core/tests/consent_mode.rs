//! Google Consent Mode v2: command sequences as sites and CMPs push them to
//! `dataLayer`, region-scoped defaults, the category mapping, `gcs`/`gcd`
//! parsing, and property tests that no input panics.

#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use proptest::prelude::*;
use tagwatch_core::consent::Category;
use tagwatch_core::consent_mode::{parse_gcd, parse_gcs, ConsentMode, GcdSignal};

const ALL_DENIED: &[(&str, &str)] = &[
    ("ad_storage", "denied"),
    ("ad_user_data", "denied"),
    ("ad_personalization", "denied"),
    ("analytics_storage", "denied"),
    ("functionality_storage", "denied"),
    ("personalization_storage", "denied"),
    ("security_storage", "granted"),
    ("wait_for_update", "500"),
];

fn cats(cm: &ConsentMode) -> [Option<bool>; 4] {
    Category::ALL.map(|c| cm.categories().get(c))
}

#[test]
fn nothing_seen_is_unknown() {
    let cm = ConsentMode::new(None);
    assert!(!cm.is_active());
    assert_eq!(cats(&cm), [None; 4]);
    assert!(!cm.clone().apply("set", &[("ads_data_redaction", "true")]));
}

#[test]
fn denied_default_then_accept_all() {
    // Google's documented pattern: deny by default, CMP updates on click.
    let mut cm = ConsentMode::new(Some("FR"));
    assert!(cm.apply("default", ALL_DENIED));
    assert_eq!(cm.wait_for_update(), Some(500));
    assert_eq!(
        cats(&cm),
        [Some(true), Some(false), Some(false), Some(false)]
    );
    cm.apply(
        "update",
        &[
            ("ad_storage", "granted"),
            ("ad_user_data", "granted"),
            ("ad_personalization", "granted"),
            ("analytics_storage", "granted"),
            ("functionality_storage", "granted"),
        ],
    );
    assert_eq!(cats(&cm), [Some(true); 4]);
    let t = cm.get("ad_storage").unwrap();
    assert_eq!(
        (t.default, t.update, t.effective()),
        (Some(false), Some(true), Some(true))
    );
}

#[test]
fn marketing_needs_all_three_ad_types() {
    let mut cm = ConsentMode::new(None);
    cm.apply("default", ALL_DENIED);
    // A Consent Mode v1 CMP only updates ad_storage.
    cm.apply(
        "update",
        &[("ad_storage", "granted"), ("analytics_storage", "granted")],
    );
    assert_eq!(
        cats(&cm),
        [Some(true), Some(false), Some(true), Some(false)]
    );
    // Without any default, one ad type granted is not enough to grant.
    let mut cm = ConsentMode::new(None);
    cm.apply(
        "update",
        &[("ad_storage", "granted"), ("ad_user_data", "granted")],
    );
    assert_eq!(cm.categories().get(Category::Marketing), None);
    cm.apply("update", &[("ad_personalization", "granted")]);
    assert_eq!(cm.categories().get(Category::Marketing), Some(true));
    cm.apply("update", &[("ad_user_data", "denied")]);
    assert_eq!(cm.categories().get(Category::Marketing), Some(false));
}

#[test]
fn default_after_update_does_not_override() {
    let mut cm = ConsentMode::new(None);
    cm.apply("update", &[("analytics_storage", "granted")]);
    cm.apply("default", &[("analytics_storage", "denied")]);
    assert_eq!(cm.effective("analytics_storage"), Some(true));
    assert_eq!(cm.get("analytics_storage").unwrap().default, Some(false));
}

#[test]
fn regional_defaults() {
    // Deny in the EEA, grant elsewhere (Google's documented example shape).
    let cmds: &[(&str, &[(&str, &str)])] = &[
        (
            "default",
            &[
                ("analytics_storage", "denied"),
                ("ad_storage", "denied"),
                ("region", "ES,FR,DE,US-CA"),
            ],
        ),
        (
            "default",
            &[("analytics_storage", "granted"), ("ad_storage", "granted")],
        ),
    ];
    let fold = |region: Option<&str>| {
        let mut cm = ConsentMode::new(region);
        for (c, p) in cmds {
            cm.apply(c, p);
        }
        (
            cm.effective("analytics_storage"),
            cm.effective("ad_storage"),
        )
    };
    // The region-specific default wins although the general one came later.
    assert_eq!(fold(Some("es")), (Some(false), Some(false)));
    assert_eq!(fold(Some("US-CA")), (Some(false), Some(false)));
    assert_eq!(fold(Some("US-NY")), (Some(true), Some(true)));
    assert_eq!(fold(Some("GB")), (Some(true), Some(true)));
    // Unknown visitor region: region-scoped defaults are skipped.
    assert_eq!(fold(None), (Some(true), Some(true)));

    // A subdivision beats its country; repeated `region` entries count.
    let mut cm = ConsentMode::new(Some("US-CA"));
    cm.apply("default", &[("ad_storage", "denied"), ("region", "US-CA")]);
    cm.apply(
        "default",
        &[
            ("ad_storage", "granted"),
            ("region", "GB"),
            ("region", "US"),
        ],
    );
    assert_eq!(cm.effective("ad_storage"), Some(false));
    // Same specificity: the later default wins.
    cm.apply("default", &[("ad_storage", "granted"), ("region", "us-ca")]);
    assert_eq!(cm.effective("ad_storage"), Some(true));
    // A region-scoped default that does not match records no wait.
    let mut cm = ConsentMode::new(Some("DE"));
    cm.apply("default", &[("wait_for_update", "2000"), ("region", "US")]);
    assert_eq!(cm.wait_for_update(), None);
}

#[test]
fn junk_values_are_ignored() {
    let mut cm = ConsentMode::new(None);
    cm.apply(
        "default",
        &[
            ("analytics_storage", "yes"),
            ("bogus", "granted"),
            ("wait_for_update", "-5"),
        ],
    );
    assert_eq!(cm.effective("analytics_storage"), None);
    assert_eq!(cm.wait_for_update(), None);
    cm.apply("update", &[("analytics_storage", "GRANTED")]);
    assert_eq!(cm.effective("analytics_storage"), Some(true));
    cm.apply("default", &[("wait_for_update", "1500.7")]);
    assert_eq!(cm.wait_for_update(), Some(1500));
    let json = serde_json::to_value(&cm).unwrap();
    assert_eq!(json["analytics_storage"]["update"], true);
    assert_eq!(json["waitForUpdate"], 1500);
    assert!(json.get("ad_storage").is_none());
}

#[test]
fn gcs_values() {
    assert_eq!(parse_gcs("G100"), Some((false, false)));
    assert_eq!(parse_gcs("G101"), Some((false, true)));
    assert_eq!(parse_gcs("G110"), Some((true, false)));
    assert_eq!(parse_gcs("G111"), Some((true, true)));
    for bad in ["", "G1", "G1000", "G201", "g111", "G1x1", "G1--", "Ğ111"] {
        assert_eq!(parse_gcs(bad), None, "{bad}");
    }
}

#[test]
fn gcd_values() {
    // All four denied by default, no update.
    let g = parse_gcd("11p1p1p1p5").unwrap();
    assert_eq!(
        g.ad_storage,
        GcdSignal {
            default: Some(false),
            update: None
        }
    );
    assert_eq!(g.ad_personalization.effective(), Some(false));
    // Denied by default, granted by update; trailing DMA flags ignored.
    let g = parse_gcd("13r3r3r2r5l1").unwrap();
    assert_eq!(g.analytics_storage.effective(), Some(true));
    assert_eq!(
        g.ad_user_data,
        GcdSignal {
            default: Some(false),
            update: Some(true)
        }
    );
    // Mixed: ad_storage granted both, analytics denied by update only,
    // ad_user_data not set, ad_personalization granted by default / denied by update.
    let g = parse_gcd("11v1m1l1u5").unwrap();
    assert_eq!(g.ad_storage.effective(), Some(true));
    assert_eq!(
        g.analytics_storage,
        GcdSignal {
            default: None,
            update: Some(false)
        }
    );
    assert_eq!(g.ad_user_data.effective(), None);
    assert_eq!(g.ad_personalization.effective(), Some(false));
    for bad in ["", "115", "11p1p1p", "11z1p1p1p5"] {
        assert_eq!(parse_gcd(bad), None, "{bad}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]

    #[test]
    fn arbitrary_commands_never_panic(
        region in proptest::option::of("[A-Za-z-]{0,6}"),
        cmds in proptest::collection::vec(
            ("(default|update|set|.{0,6})", proptest::collection::vec(("[a-z_]{0,24}", ".{0,12}"), 0..8)),
            0..8,
        ),
    ) {
        let mut cm = ConsentMode::new(region.as_deref());
        for (c, params) in &cmds {
            let p: Vec<(&str, &str)> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            cm.apply(c, &p);
        }
        let c = cm.categories();
        if cm.is_active() {
            prop_assert_eq!(c.get(Category::Necessary), Some(true));
        }
        let _ = serde_json::to_string(&cm).unwrap();
    }

    #[test]
    fn update_always_wins(v in any::<bool>(), d in any::<bool>(), order in any::<bool>()) {
        let val = |b: bool| if b { "granted" } else { "denied" };
        let mut cm = ConsentMode::new(None);
        if order {
            cm.apply("default", &[("analytics_storage", val(d))]);
            cm.apply("update", &[("analytics_storage", val(v))]);
        } else {
            cm.apply("update", &[("analytics_storage", val(v))]);
            cm.apply("default", &[("analytics_storage", val(d))]);
        }
        prop_assert_eq!(cm.categories().get(Category::Analytics), Some(v));
    }

    #[test]
    fn gcs_gcd_never_panic(s in ".{0,24}") {
        let _ = parse_gcs(&s);
        let _ = parse_gcd(&s);
    }
}
