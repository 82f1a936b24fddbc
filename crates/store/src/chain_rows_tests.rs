//! The contract of health reports and inventories in the chain: their
//! canonical forms byte for byte (golden), and that any edit, deletion,
//! insertion or reordering of their rows (an inventory's child rows
//! included) is named by the chain's check (property tests), and that a
//! signed purge explains the rows it removed.

use std::collections::BTreeMap;

use proptest::prelude::*;

use crate::chain::{self, Checkpoint, Entry, Hash, Rows, GENESIS};
use crate::chain_rows::{
    self, HealthState, HostRow, InventoryState, RowUsage, Unchained, VendorRow, HEALTH, INVENTORY,
};
use crate::ChainDump;

const SITE: &str = "tw_a";

fn health(id: i64) -> HealthState {
    HealthState {
        id,
        site: SITE.into(),
        page_view: Some(format!("pv{id}")),
        page: "https://shop.example/".into(),
        status: "ok".into(),
        reason: None,
        at: "2024-05-01T12:00:00.000Z".into(),
        received_at: "2024-05-01T12:00:01.000Z".into(),
        user_agent: "Mozilla/5.0".into(),
        raw: "{}".into(),
        release: None,
    }
}

fn inventory(id: i64) -> InventoryState {
    InventoryState {
        id,
        site: SITE.into(),
        page_view: format!("pv{id}"),
        page: "https://shop.example/".into(),
        at: "2024-05-01T12:00:00.000Z".into(),
        received_at: "2024-05-01T12:00:01.000Z".into(),
        user_agent: "Mozilla/5.0".into(),
        raw: "{}".into(),
        release: Some("r1".into()),
        vendors: vec![
            VendorRow {
                vendor: "google-analytics".into(),
                usage: use_(3, 1, 2000, 900, 40),
                hosts: r#"["www.google-analytics.com"]"#.into(),
                regions: r#"["US"]"#.into(),
                cookies: r#"["_ga"]"#.into(),
            },
            VendorRow {
                vendor: "intercom".into(),
                usage: use_(1, 1, 100, 50, 5),
                hosts: "[]".into(),
                regions: "[]".into(),
                cookies: "[]".into(),
            },
        ],
        hosts: vec![
            HostRow {
                host: "cdn.example".into(),
                usage: use_(2, 0, 10, 10, 1),
            },
            HostRow {
                host: "api.example".into(),
                usage: use_(1, 0, 5, 5, 1),
            },
        ],
    }
}

fn use_(
    requests: i64,
    script_requests: i64,
    transfer_bytes: i64,
    encoded_bytes: i64,
    duration_ms: i64,
) -> RowUsage {
    RowUsage {
        requests,
        script_requests,
        transfer_bytes,
        encoded_bytes,
        duration_ms,
    }
}

fn text(want: &mut Vec<u8>, s: &str) {
    want.extend(u64::try_from(s.len()).unwrap().to_le_bytes());
    want.extend(s.as_bytes());
}

fn int(want: &mut Vec<u8>, n: i64) {
    want.extend(n.to_le_bytes());
}

/// If this fails, the canonical form of a health row changed: every chain
/// and bundle that holds one no longer verifies. Do not change it; add a
/// new version (a new tag, `tagwatch-health-v2`) that verification reads
/// beside this one, and document it in docs/evidence.md.
#[test]
fn the_canonical_form_of_a_health_row_is_fixed() {
    let h = HealthState {
        id: 258,
        site: "s".into(),
        page_view: None,
        page: "p".into(),
        status: "blocked".into(),
        reason: Some("csp".into()),
        at: "a".into(),
        received_at: "r".into(),
        user_agent: "u".into(),
        raw: "é".into(),
        release: None,
    };
    let mut want = b"tagwatch-health-v1".to_vec();
    want.extend([2, 1, 0, 0, 0, 0, 0, 0]); // id 258
    text(&mut want, "s");
    want.extend([0xff; 8]); // page_view NULL
    text(&mut want, "p");
    text(&mut want, "blocked");
    text(&mut want, "csp");
    for t in ["a", "r", "u"] {
        text(&mut want, t);
    }
    want.extend([2, 0, 0, 0, 0, 0, 0, 0, 0xc3, 0xa9]);
    want.extend([0xff; 8]); // release NULL
    assert_eq!(
        h.canonical(),
        want,
        "the canonical form of a health row changed: see this test's comment for what to do"
    );
    let e = Entry::new("s", 1, HEALTH, 258, "a", h.digest(), GENESIS);
    assert_eq!(
        (chain::to_hex(&h.digest()), chain::to_hex(&e.hash)),
        (GOLDEN_HEALTH.0.to_owned(), GOLDEN_HEALTH.1.to_owned()),
        "the health form or entry hash changed: see this test's comment for what to do"
    );
}

/// (digest, entry hash) of the row in `the_canonical_form_of_a_health_row_is_fixed`.
const GOLDEN_HEALTH: (&str, &str) = (
    "51285239b1e954604252189d74602771eb16b5b168f8ef00d003e9ce0d00b5bf",
    "b5bfab6e5183f6ee3d44cc2f77548a4ffc26a1db6293910420a3e1ee0e416973",
);

/// If this fails, the canonical form of an inventory changed: every chain
/// and bundle that holds one no longer verifies. Do not change it; add a
/// new version (a new tag, `tagwatch-inventory-v2`) that verification
/// reads beside this one, and document it in docs/evidence.md.
#[test]
fn the_canonical_form_of_an_inventory_is_fixed() {
    let i = InventoryState {
        id: 3,
        site: "s".into(),
        page_view: "pv".into(),
        page: "p".into(),
        at: "a".into(),
        received_at: "r".into(),
        user_agent: "u".into(),
        raw: "{}".into(),
        release: Some("r1".into()),
        // Not in key order: the form sorts them.
        vendors: vec![
            VendorRow {
                vendor: "b".into(),
                usage: use_(1, 2, 3, 4, 5),
                hosts: "[\"h\"]".into(),
                regions: "[]".into(),
                cookies: "[\"c\"]".into(),
            },
            VendorRow {
                vendor: "a".into(),
                usage: use_(0, 0, 0, 0, -1),
                hosts: "[]".into(),
                regions: "[\"EU\"]".into(),
                cookies: "[]".into(),
            },
        ],
        hosts: vec![HostRow {
            host: "x.example".into(),
            usage: use_(7, 0, 0, 0, 0),
        }],
    };
    let mut want = b"tagwatch-inventory-v1".to_vec();
    int(&mut want, 3);
    for t in ["s", "pv", "p", "a", "r", "u", "{}", "r1"] {
        text(&mut want, t);
    }
    int(&mut want, 2); // vendors
    text(&mut want, "a");
    for n in [0, 0, 0, 0, -1] {
        int(&mut want, n);
    }
    for t in ["[]", "[\"EU\"]", "[]"] {
        text(&mut want, t);
    }
    text(&mut want, "b");
    for n in [1, 2, 3, 4, 5] {
        int(&mut want, n);
    }
    for t in ["[\"h\"]", "[]", "[\"c\"]"] {
        text(&mut want, t);
    }
    int(&mut want, 1); // hosts
    text(&mut want, "x.example");
    for n in [7, 0, 0, 0, 0] {
        int(&mut want, n);
    }
    assert_eq!(
        i.canonical(),
        want,
        "the canonical form of an inventory changed: see this test's comment for what to do"
    );
    let e = Entry::new("s", 2, INVENTORY, 3, "a", i.digest(), [1; 32]);
    assert_eq!(
        (chain::to_hex(&i.digest()), chain::to_hex(&e.hash)),
        (GOLDEN_INVENTORY.0.to_owned(), GOLDEN_INVENTORY.1.to_owned()),
        "the inventory form or entry hash changed: see this test's comment for what to do"
    );
}

/// (digest, entry hash) of the inventory in
/// `the_canonical_form_of_an_inventory_is_fixed`.
const GOLDEN_INVENTORY: (&str, &str) = (
    "abf9ac4cdc76f8c2b42f3498596ce52c7931755d3d01c92238f269568f2d76e7",
    "00b02cbe58c07b8c402887044a57d9958eeb84650f3bbc7f58ce25f59289962d",
);

#[test]
fn no_vendor_and_no_host_differ_from_empty_lists() {
    let mut a = inventory(1);
    a.vendors.clear();
    let mut b = a.clone();
    b.hosts.clear();
    assert_ne!(a.canonical(), b.canonical());
    // A vendor's row moved to the hosts table is another state.
    let mut c = inventory(1);
    c.hosts.truncate(1);
    let mut d = inventory(1);
    d.hosts.truncate(1);
    d.hosts[0].host = "api.example".into();
    assert_ne!(c.canonical(), d.canonical());
}

/// A site's rows and chain as commits and purges leave them.
#[derive(Clone, Debug)]
struct Site {
    entries: Vec<Entry>,
    health: BTreeMap<i64, HealthState>,
    inventories: BTreeMap<i64, InventoryState>,
    checkpoints: BTreeMap<i64, Checkpoint>,
}

impl Site {
    fn push(&mut self, kind: &str, row: i64, at: &str, digest: Hash) {
        let prev = self.entries.last().map_or(GENESIS, |e| e.hash);
        let seq = i64::try_from(self.entries.len()).unwrap() + 1;
        self.entries
            .push(Entry::new(SITE, seq, kind, row, at, digest, prev));
    }

    /// `n` health reports and `n` inventories (ids 1..=n), some inventories
    /// replaced later (a page view goes on).
    fn build(n: usize, replaced: &[usize]) -> Self {
        let mut s = Site {
            entries: Vec::new(),
            health: BTreeMap::new(),
            inventories: BTreeMap::new(),
            checkpoints: BTreeMap::new(),
        };
        for id in 1..=i64::try_from(n).unwrap() {
            let h = health(id);
            s.push(HEALTH, id, &h.at, h.digest());
            s.health.insert(id, h);
            let i = inventory(id);
            s.push(INVENTORY, id, &i.at, i.digest());
            s.inventories.insert(id, i);
        }
        for (k, r) in replaced.iter().enumerate() {
            let id = i64::try_from(r % n + 1).unwrap();
            let i = s.inventories.get_mut(&id).unwrap();
            i.vendors[0].usage.requests += i64::try_from(k).unwrap() + 1;
            i.at = format!("2024-05-01T13:00:{:02}.000Z", k % 60);
            let i = i.clone();
            s.push(INVENTORY, id, &i.at, i.digest());
        }
        s
    }

    fn dump(&self) -> ChainDump {
        ChainDump {
            site: SITE.into(),
            entries: self.entries.clone(),
            start: GENESIS,
            findings: BTreeMap::new(),
            checkpoints: self.checkpoints.clone(),
            versions: None,
            versions_read_at: None,
            health: self
                .health
                .iter()
                .map(|(id, h)| (*id, h.stored()))
                .collect(),
            inventories: self
                .inventories
                .iter()
                .map(|(id, i)| (*id, i.stored()))
                .collect(),
            unchained: Unchained::default(),
        }
    }

    fn problems(&self, key: Option<&ed25519_dalek::VerifyingKey>) -> Vec<chain::Problem> {
        self.dump().verify(Rows::All, key)
    }
}

#[derive(Debug, Clone)]
enum Tamper {
    /// A health row's column changed.
    EditHealth(usize),
    /// A column of an inventory's row changed.
    EditInventory(usize),
    /// A vendor child row's number changed.
    EditVendor(usize),
    /// A host child row deleted.
    DeleteHost(usize),
    /// A vendor child row the collector never stored.
    InsertVendor(usize),
    DeleteHealth(usize),
    DeleteInventory(usize),
    /// Rows the collector never stored.
    InsertHealth,
    InsertInventory,
    /// Two health rows' ids swapped (their order changed).
    SwapHealth(usize, usize),
    /// Two inventories' child rows swapped between them.
    SwapChildren(usize, usize),
    /// Two entries swapped.
    SwapEntries(usize, usize),
    DeleteEntry(usize),
}

fn tamper() -> impl Strategy<Value = Tamper> {
    prop_oneof![
        any::<usize>().prop_map(Tamper::EditHealth),
        any::<usize>().prop_map(Tamper::EditInventory),
        any::<usize>().prop_map(Tamper::EditVendor),
        any::<usize>().prop_map(Tamper::DeleteHost),
        any::<usize>().prop_map(Tamper::InsertVendor),
        any::<usize>().prop_map(Tamper::DeleteHealth),
        any::<usize>().prop_map(Tamper::DeleteInventory),
        Just(Tamper::InsertHealth),
        Just(Tamper::InsertInventory),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::SwapHealth(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::SwapChildren(a, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Tamper::SwapEntries(a, b)),
        any::<usize>().prop_map(Tamper::DeleteEntry),
    ]
}

proptest! {
    #[test]
    fn untouched_health_and_inventories_verify(n in 1usize..20, replaced in prop::collection::vec(any::<usize>(), 0..20)) {
        let s = Site::build(n, &replaced);
        prop_assert_eq!(s.problems(None), vec![]);
    }

    #[test]
    fn any_tampering_with_health_or_inventories_is_named(
        n in 1usize..20,
        replaced in prop::collection::vec(any::<usize>(), 0..20),
        t in tamper(),
    ) {
        let mut s = Site::build(n, &replaced);
        let id = |i: usize| i64::try_from(i % n + 1).unwrap();
        let len = s.entries.len();
        // What the message must name (None: a link problem, any message).
        let named: Option<String> = match t.clone() {
            Tamper::EditHealth(i) => {
                s.health.get_mut(&id(i)).unwrap().status = "blocked".into();
                Some(format!("health report {} of site {SITE} was edited", id(i)))
            }
            Tamper::EditInventory(i) => {
                s.inventories.get_mut(&id(i)).unwrap().page.push('x');
                Some(format!("inventory {} of site {SITE} was edited", id(i)))
            }
            Tamper::EditVendor(i) => {
                s.inventories.get_mut(&id(i)).unwrap().vendors[1].usage.transfer_bytes += 1;
                Some(format!("inventory {} of site {SITE} was edited", id(i)))
            }
            Tamper::DeleteHost(i) => {
                s.inventories.get_mut(&id(i)).unwrap().hosts.pop();
                Some(format!("inventory {} of site {SITE} was edited", id(i)))
            }
            Tamper::InsertVendor(i) => {
                let inv = s.inventories.get_mut(&id(i)).unwrap();
                let mut v = inv.vendors[0].clone();
                v.vendor = "facebook".into();
                inv.vendors.push(v);
                Some(format!("inventory {} of site {SITE} was edited", id(i)))
            }
            Tamper::DeleteHealth(i) => {
                s.health.remove(&id(i));
                Some(format!("health report {} of site {SITE}", id(i)))
            }
            Tamper::DeleteInventory(i) => {
                s.inventories.remove(&id(i));
                Some(format!("inventory {} of site {SITE}", id(i)))
            }
            Tamper::InsertHealth => {
                s.health.insert(1000, health(1000));
                Some(format!("health report 1000 of site {SITE} is not in the chain"))
            }
            Tamper::InsertInventory => {
                s.inventories.insert(1000, inventory(1000));
                Some(format!("inventory 1000 of site {SITE} is not in the chain"))
            }
            Tamper::SwapHealth(a, b) => {
                let (a, b) = (id(a), id(b));
                prop_assume!(a != b);
                let mut ha = s.health.remove(&a).unwrap();
                let mut hb = s.health.remove(&b).unwrap();
                std::mem::swap(&mut ha.id, &mut hb.id);
                s.health.insert(ha.id, ha);
                s.health.insert(hb.id, hb);
                Some(format!("health report {a} of site {SITE} was edited"))
            }
            Tamper::SwapChildren(a, b) => {
                let (a, b) = (id(a), id(b));
                prop_assume!(a != b);
                let va = s.inventories[&a].vendors.clone();
                let vb = s.inventories[&b].vendors.clone();
                prop_assume!(va != vb);
                s.inventories.get_mut(&a).unwrap().vendors = vb;
                s.inventories.get_mut(&b).unwrap().vendors = va;
                Some(format!("inventory {a} of site {SITE} was edited"))
            }
            Tamper::SwapEntries(a, b) => {
                let (a, b) = (a % len, b % len);
                prop_assume!(a != b);
                s.entries.swap(a, b);
                None
            }
            Tamper::DeleteEntry(i) => {
                s.entries.remove(i % len);
                None
            }
        };
        let found = s.problems(None);
        prop_assert!(!found.is_empty(), "{:?} went unnoticed", t);
        if let Some(want) = named {
            prop_assert!(found.iter().any(|p| p.0.contains(&want)), "{:?}: {:?} does not name {}", t, found, want);
        }
    }
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[3; 32])
}

/// `Site::build(3)`, then a purge of health report 1 and inventory 2.
fn purged(signed: bool) -> Site {
    let mut s = Site::build(3, &[1]);
    let h = s.health.remove(&1).unwrap();
    s.push(chain_rows::HEALTH_REMOVED, 1, &h.at, h.digest());
    let i = s.inventories.remove(&2).unwrap();
    s.push(chain_rows::INVENTORY_REMOVED, 2, &i.at, i.digest());
    let prev = s.entries.last().unwrap().hash;
    let seq = i64::try_from(s.entries.len()).unwrap() + 1;
    let mut cp = Checkpoint {
        id: 1,
        site: SITE.into(),
        seq,
        before: "2025-01-01T00:00:00.000Z".into(),
        findings: 0,
        health: 1,
        inventories: 1,
        boundary: prev,
        signature: None,
        public_key: None,
    };
    if signed {
        cp.sign(&key());
    }
    s.push(
        chain::CHECKPOINT,
        1,
        &cp.before.clone(),
        chain::sha256(&cp.canonical()),
    );
    s.checkpoints.insert(1, cp);
    s
}

#[test]
fn a_signed_checkpoint_explains_the_health_and_inventories_it_removed() {
    let s = purged(true);
    let public = key().verifying_key();
    assert_eq!(s.problems(Some(&public)), []);
    // Unsigned: proves nothing.
    let p = purged(false).problems(None);
    assert!(p.len() == 1 && p[0].0.contains("is not signed"), "{p:?}");
    // One more inventory gone than the purge recorded.
    let mut fewer = s.clone();
    fewer.inventories.remove(&3);
    let p = fewer.problems(Some(&public));
    assert!(
        p.iter().any(|p| p.0.contains(
            "inventory 3 of site tw_a (seq 6) was deleted: no purge records its removal"
        )),
        "{p:?}"
    );
    // A removed row put back.
    let mut back = s.clone();
    back.health.insert(1, health(1));
    let p = back.problems(Some(&public));
    assert!(
        p.iter().any(|p| p
            .0
            .contains("health report 1 of site tw_a was removed at seq")),
        "{p:?}"
    );
    // A removal without the checkpoint that counts it.
    let mut cut = s.clone();
    cut.entries.pop();
    let p = cut.problems(Some(&public));
    assert!(
        p.iter().any(|p| p
            .0
            .contains("the removal of health report 1 at seq 8 of site tw_a has no checkpoint")),
        "{p:?}"
    );
}

/// A checkpoint recorded before health reports and inventories were
/// chained counted them with no removal entries: still verifies (its signed
/// boundary fixes what came before); rows stored before are not proven,
/// not tampered.
#[test]
fn chains_from_before_health_and_inventories_were_chained_still_verify() {
    let mut s = Site::build(0, &[]);
    let mut cp = Checkpoint {
        id: 1,
        site: SITE.into(),
        seq: 1,
        before: "2025-01-01T00:00:00.000Z".into(),
        findings: 0,
        health: 5,
        inventories: 2,
        boundary: GENESIS,
        signature: None,
        public_key: None,
    };
    cp.sign(&key());
    s.push(
        chain::CHECKPOINT,
        1,
        &cp.before.clone(),
        chain::sha256(&cp.canonical()),
    );
    s.checkpoints.insert(1, cp);
    s.health.insert(4, health(4));
    s.inventories.insert(9, inventory(9));
    let mut dump = s.dump();
    dump.unchained = Unchained {
        health: 4,
        inventories: 9,
    };
    assert_eq!(dump.verify(Rows::All, Some(&key().verifying_key())), []);
    assert_eq!(dump.unproven(), (1, 1));
    // A row above the mark with no entry was inserted behind the collector.
    dump.unchained.health = 3;
    let p = dump.verify(Rows::All, None);
    assert!(
        p.iter().any(|p| p
            .0
            .contains("health report 4 of site tw_a is not in the chain")),
        "{p:?}"
    );
}
