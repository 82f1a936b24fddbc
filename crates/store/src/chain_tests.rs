//! The chain's contract: the canonical form byte for byte (golden), and
//! that any edit, deletion, reordering or insertion of rows or entries is
//! named by `chain::verify` (property tests).

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::chain::{self, Check, Checkpoint, Entry, FindingState, Rows, Stored, GENESIS};

fn state(id: i64, count: i64) -> FindingState {
    FindingState {
        id,
        site: "tw_a".into(),
        page_view: format!("pv{id}"),
        page: "https://shop.example/".into(),
        kind: "cookie_before_consent".into(),
        vendor: "intercom".into(),
        category: Some("functional".into()),
        evidence_kind: Some("cookie".into()),
        evidence: r#"{"kind":"cookie","name":"intercom-id"}"#.into(),
        consent_source: None,
        consent: r#"{"source":"default"}"#.into(),
        count,
        at: "2024-05-01T12:00:00.000Z".into(),
        received_at: "2024-05-01T12:00:01.000Z".into(),
        user_agent: "Mozilla/5.0".into(),
        raw: "{}".into(),
        release: None,
    }
}

/// If this fails, the canonical form changed: every stored chain and every
/// evidence bundle made before no longer verifies. Do not change it; add a
/// new version (a new tag, `tagwatch-finding-v2`) that verification reads
/// beside this one, and document it in docs/evidence.md.
#[test]
fn the_canonical_form_of_a_finding_is_fixed() {
    let f = FindingState {
        id: 258,
        site: "s".into(),
        page_view: "p".into(),
        page: "".into(),
        kind: "t".into(),
        vendor: "v".into(),
        category: None,
        evidence_kind: Some("k".into()),
        evidence: "e".into(),
        consent_source: None,
        consent: "c".into(),
        count: -1,
        at: "a".into(),
        received_at: "r".into(),
        user_agent: "u".into(),
        raw: "é".into(),
        release: None,
    };
    let mut want = b"tagwatch-finding-v1".to_vec();
    want.extend([2, 1, 0, 0, 0, 0, 0, 0]); // id 258
    for text in ["s", "p", "", "t", "v"] {
        want.extend(u64::try_from(text.len()).unwrap().to_le_bytes());
        want.extend(text.as_bytes());
    }
    want.extend([0xff; 8]); // category NULL
    want.extend([1, 0, 0, 0, 0, 0, 0, 0, b'k']);
    want.extend([1, 0, 0, 0, 0, 0, 0, 0, b'e']);
    want.extend([0xff; 8]); // consent_source NULL
    want.extend([1, 0, 0, 0, 0, 0, 0, 0, b'c']);
    want.extend([0xff; 8]); // count -1
    for text in ["a", "r", "u"] {
        want.extend([1, 0, 0, 0, 0, 0, 0, 0]);
        want.extend(text.as_bytes());
    }
    want.extend([2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0xa9]);
    assert_eq!(
        f.canonical(),
        want,
        "the canonical form changed: see this test's comment for what to do"
    );
    assert_eq!(
        chain::to_hex(&f.digest()),
        chain::to_hex(&chain::sha256(&want))
    );
    // Version 2: a row with a release is version 1's fields and the
    // release, under its own tag.
    let v2 = FindingState {
        release: Some("r1".into()),
        ..f.clone()
    };
    let mut want2 = b"tagwatch-finding-v2".to_vec();
    want2.extend(&want[b"tagwatch-finding-v1".len()..]);
    want2.extend([2, 0, 0, 0, 0, 0, 0, 0, b'r', b'1']);
    assert_eq!(
        v2.canonical(),
        want2,
        "the canonical form changed: see this test's comment for what to do"
    );
    // And one entry's hash, fixed.
    let e = Entry::new("s", 1, chain::FINDING, 258, "a", f.digest(), GENESIS);
    assert_eq!(
        chain::to_hex(&e.hash),
        GOLDEN_ENTRY_HASH,
        "the entry hash changed: see the comment of this test for what to do"
    );
    // The writer's forms, each written in the buffer the one before used
    // (`digest_in`, `link`): the same bytes whatever the buffer held.
    let mut buf = b"a longer form left by the row before".repeat(20);
    assert_eq!(v2.borrowed().digest_in(&mut buf), chain::sha256(&want2));
    assert_eq!(f.borrowed().digest_in(&mut buf), chain::sha256(&want));
    let hash = chain::link(
        &mut buf,
        "s",
        1,
        chain::FINDING,
        258,
        "a",
        &f.digest(),
        &GENESIS,
    );
    assert_eq!(chain::to_hex(&hash), GOLDEN_ENTRY_HASH);
}

/// The hash of the entry in `the_canonical_form_of_a_finding_is_fixed`.
const GOLDEN_ENTRY_HASH: &str = "b05cef0c161901185b563068e7d94d66291f02d51eccf050bc21ee0c5868c93a";

#[test]
fn null_and_empty_text_differ() {
    let mut a = state(1, 1);
    a.category = None;
    let mut b = a.clone();
    b.category = Some(String::new());
    assert_ne!(a.canonical(), b.canonical());
}

/// A chain of `n` findings (ids 1..=n), some updated again later.
fn build(n: usize, updates: &[usize]) -> (Vec<Entry>, BTreeMap<i64, Stored>) {
    let mut rows: BTreeMap<i64, FindingState> = BTreeMap::new();
    let mut entries = Vec::new();
    let mut prev = GENESIS;
    let mut push = |f: &FindingState, entries: &mut Vec<Entry>| {
        let seq = i64::try_from(entries.len()).unwrap() + 1;
        let e = Entry::new("tw_a", seq, chain::FINDING, f.id, &f.at, f.digest(), prev);
        prev = e.hash;
        entries.push(e);
    };
    for id in 1..=n {
        let f = state(i64::try_from(id).unwrap(), 1);
        push(&f, &mut entries);
        rows.insert(f.id, f);
    }
    for (i, u) in updates.iter().enumerate() {
        let id = i64::try_from(u % n + 1).unwrap();
        let f = rows.get_mut(&id).unwrap();
        f.count += i64::try_from(i).unwrap() + 1;
        let f = f.clone();
        push(&f, &mut entries);
    }
    (
        entries,
        rows.iter().map(|(id, f)| (*id, f.stored())).collect(),
    )
}

fn problems(entries: &[Entry], findings: &BTreeMap<i64, Stored>) -> Vec<chain::Problem> {
    chain::verify(&Check {
        site: "tw_a",
        entries,
        start: GENESIS,
        findings,
        rows: Rows::All,
        checkpoints: &BTreeMap::new(),
        key: None,
    })
}

#[derive(Debug, Clone)]
enum Tamper {
    /// A row's count changed.
    EditRow(usize),
    /// An entry's `at` changed (hash left).
    EditEntry(usize),
    /// An entry's `at` changed and its hash recomputed (not the ones after).
    RehashEntry(usize),
    DeleteEntry(usize),
    SwapEntries(usize, usize),
    /// A copy of an entry inserted after another.
    InsertEntry(usize, usize),
    DeleteRow(usize),
    /// A row the collector never stored.
    InsertRow,
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        any::<usize>().prop_map(Tamper::EditRow),
        any::<usize>().prop_map(Tamper::EditEntry),
        any::<usize>().prop_map(Tamper::RehashEntry),
        any::<usize>().prop_map(Tamper::DeleteEntry),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::SwapEntries(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::InsertEntry(a, b)),
        any::<usize>().prop_map(Tamper::DeleteRow),
        Just(Tamper::InsertRow),
    ]
}

proptest! {
    #[test]
    fn an_untouched_chain_verifies(n in 1usize..30, updates in prop::collection::vec(any::<usize>(), 0..20)) {
        let (entries, rows) = build(n, &updates);
        prop_assert!(problems(&entries, &rows).is_empty());
    }

    #[test]
    fn any_tampering_is_named(
        n in 1usize..30,
        updates in prop::collection::vec(any::<usize>(), 0..20),
        t in tamper(),
    ) {
        let (mut entries, mut rows) = build(n, &updates);
        let len = entries.len();
        match t {
            Tamper::EditRow(i) => {
                let id = i64::try_from(i % n + 1).unwrap();
                let mut f = state(id, 1);
                f.count = -7;
                rows.insert(id, f.stored());
            }
            Tamper::EditEntry(i) => entries[i % len].at.push('x'),
            Tamper::RehashEntry(i) => {
                let e = &mut entries[i % len];
                e.at.push('x');
                e.hash = chain::link(&mut Vec::new(), "tw_a", e.seq, &e.kind, e.row, &e.at, &e.digest, &e.prev);
            }
            Tamper::DeleteEntry(i) => {
                entries.remove(i % len);
            }
            Tamper::SwapEntries(a, b) => {
                let (a, b) = (a % len, b % len);
                prop_assume!(a != b);
                entries.swap(a, b);
            }
            Tamper::InsertEntry(a, b) => {
                let copy = entries[a % len].clone();
                entries.insert(b % (len + 1), copy);
            }
            Tamper::DeleteRow(i) => {
                rows.remove(&i64::try_from(i % n + 1).unwrap());
            }
            Tamper::InsertRow => {
                rows.insert(1000, state(1000, 1).stored());
            }
        }
        let found = problems(&entries, &rows);
        prop_assert!(!found.is_empty(), "{t:?} went unnoticed");
    }

    /// Rehashing an edited entry and every entry after it (what someone
    /// who can write the whole chain can do) is only caught by the rows:
    /// the limit docs/evidence.md states. An edited finding still is.
    #[test]
    fn rewriting_the_chain_still_leaves_an_edited_row_named(n in 1usize..20, i in any::<usize>()) {
        let (entries, mut rows) = build(n, &[]);
        let id = i64::try_from(i % n + 1).unwrap();
        let mut f = state(id, 1);
        f.count = 99;
        rows.insert(id, f.stored());
        let found = problems(&entries, &rows);
        let want = format!("finding {id} of site tw_a was edited");
        prop_assert!(found.iter().any(|p| p.0.contains(&want)));
    }
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[3; 32])
}

/// A chain of 3 findings, then a purge removing the first two.
fn purged(signed: bool) -> (Vec<Entry>, BTreeMap<i64, Stored>, BTreeMap<i64, Checkpoint>) {
    let (mut entries, mut rows) = build(3, &[]);
    for id in [1, 2] {
        let last = entries.last().unwrap();
        let (seq, prev) = (last.seq + 1, last.hash);
        let s = &rows[&id];
        let e = Entry::new("tw_a", seq, chain::REMOVED, id, &s.at, s.digest, prev);
        entries.push(e);
    }
    let prev = entries.last().unwrap().hash;
    let mut cp = Checkpoint {
        id: 1,
        site: "tw_a".into(),
        seq: 6,
        before: "2025-01-01T00:00:00.000Z".into(),
        findings: 2,
        health: 0,
        inventories: 0,
        boundary: prev,
        signature: None,
        public_key: None,
    };
    if signed {
        cp.sign(&key());
    }
    entries.push(cp.entry(prev));
    rows.remove(&1);
    rows.remove(&2);
    (entries, rows, BTreeMap::from([(1, cp)]))
}

fn check<'a>(
    entries: &'a [Entry],
    rows: &'a BTreeMap<i64, Stored>,
    cps: &'a BTreeMap<i64, Checkpoint>,
    key: Option<&'a ed25519_dalek::VerifyingKey>,
) -> Vec<chain::Problem> {
    chain::verify(&Check {
        site: "tw_a",
        entries,
        start: GENESIS,
        findings: rows,
        rows: Rows::All,
        checkpoints: cps,
        key,
    })
}

#[test]
fn a_signed_checkpoint_explains_the_rows_it_removed() {
    let (entries, rows, cps) = purged(true);
    let public = key().verifying_key();
    assert_eq!(check(&entries, &rows, &cps, Some(&public)), []);
    assert_eq!(check(&entries, &rows, &cps, None), []);
    // Another key: named.
    let other = ed25519_dalek::SigningKey::from_bytes(&[4; 32]).verifying_key();
    let p = check(&entries, &rows, &cps, Some(&other));
    assert!(
        p[0].0
            .contains("checkpoint 1 (seq 6) has a signature that public key"),
        "{p:?}"
    );
    // A count changed: the signature and the digest no longer match.
    let mut changed = cps.clone();
    changed.get_mut(&1).unwrap().findings = 3;
    let p = check(&entries, &rows, &changed, Some(&public));
    assert!(
        p.iter()
            .any(|p| p.0.contains("checkpoint 1 (seq 6) was changed")),
        "{p:?}"
    );
    // One more row gone than the checkpoint says.
    let mut fewer = rows.clone();
    fewer.remove(&3);
    let p = check(&entries, &fewer, &cps, Some(&public));
    assert!(
        p.iter().any(|p| p
            .0
            .contains("finding 3 of site tw_a (seq 3) was deleted: no purge records its removal")),
        "{p:?}"
    );
}

#[test]
fn an_unsigned_checkpoint_proves_nothing() {
    let (entries, rows, cps) = purged(false);
    let p = check(&entries, &rows, &cps, None);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(
        p[0].0.contains("checkpoint 1 (seq 6) is not signed"),
        "{p:?}"
    );
}
