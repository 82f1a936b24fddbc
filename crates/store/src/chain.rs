//! The tamper-evident chain of a site's stored findings (issue 15), pure:
//! the canonical form of a stored finding, the link of one chain entry to
//! the one before, the signed checkpoint a purge records, and the check of
//! a chain against the rows it covers. The store (`db.rs`) extends the
//! chain in the commit that stores the rows and hands what it reads to
//! [`verify`]; an evidence bundle carries a segment that the same
//! function checks offline. docs/evidence.md describes the format.
//!
//! A finding row changes after it is first stored (a resent report raises
//! its `count`, an earlier one lowers its `at`), so an entry is the state
//! of a row as one commit left it: every commit appends an entry per
//! finding row it wrote. The row as stored now must match its latest
//! entry; older entries are states it went through.
//!
//! Canonical form of a finding row (version 1), the bytes whose SHA-256 is
//! an entry's `digest`: the ASCII tag `tagwatch-finding-v1`, then each
//! field in this order, each written as described:
//!
//! | field            | written as                       |
//! |------------------|----------------------------------|
//! | id               | int                              |
//! | site             | text                             |
//! | page_view        | text                             |
//! | page             | text                             |
//! | type             | text                             |
//! | vendor           | text                             |
//! | category         | optional text                    |
//! | evidence_kind    | optional text                    |
//! | evidence         | text                             |
//! | consent_source   | optional text                    |
//! | consent          | text                             |
//! | count            | int                              |
//! | at               | text                             |
//! | received_at      | text                             |
//! | user_agent       | text                             |
//! | raw              | text                             |
//!
//! Version 2, for a row with a release (`release` not NULL): the tag
//! `tagwatch-finding-v2`, the fields of version 1, then `release` (text).
//! A row without one is written as version 1, so chains and bundles made
//! before releases verify unchanged.
//!
//! *int*: 8 bytes, little-endian two's complement. *text*: its UTF-8 length
//! as 8 bytes little-endian, then the bytes (as the store keeps them, no
//! normalisation). *optional text*: 8 bytes `ff` for NULL, else as text.
//! No length reaches 2^64 − 1, so NULL and text never meet.
//!
//! An entry's `hash` is SHA-256 of: the tag `tagwatch-chain-v1`, site
//! (text), seq (int), kind (text: `finding`, `removed` or `checkpoint`;
//! health reports' and inventories' kinds are `chain_rows.rs`'s),
//! row (int: the finding's or checkpoint's id), at (text), digest (32
//! bytes), prev (32 bytes). `prev` is the hash of the entry before
//! (seq − 1), or 32 zero bytes for seq 1. The store keeps `digest` and
//! `hash` as 32-byte blobs and no `prev` (schema 13): the entry before's
//! `hash` is its `prev`. Users see hashes in hex (`tagwatch verify`,
//! evidence bundles).
//!
//! A purge appends a `removed` entry for each finding row it deletes (its
//! last state's digest and `at`), then a `checkpoint` entry whose signed
//! record counts them: a row may be missing only after a `removed` entry
//! that a signed checkpoint after it accounts for.
//!
//! The events store (ClickHouse, `--events`) chains each finding row
//! version it inserts, which never changes, as an entry of kind
//! `version`: row (its 63-bit row key, `tagwatch_events`), at and digest
//! (the canonical form above of the row as ClickHouse holds it, id = the
//! row key). `chain_versions.rs` checks such rows; a bundle's rows are
//! checked here, as findings are.

use std::collections::BTreeMap;
use std::fmt;

use ed25519_dalek::{Signature, Signer as _, Verifier as _};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `prev` of a chain's first entry.
pub const GENESIS: Hash = [0; 32];

/// Entry kind of a stored finding's state.
pub const FINDING: &str = "finding";
/// Entry kind of a finding row a purge removed (digest: the state it had).
pub const REMOVED: &str = "removed";
/// Entry kind of a purge's checkpoint.
pub const CHECKPOINT: &str = "checkpoint";
/// Entry kind of a finding row version the events store inserted (row:
/// its row key; it never changes after).
pub const VERSION: &str = "version";

/// A stored finding row, every column the canonical form covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FindingState {
    pub id: i64,
    pub site: String,
    pub page_view: String,
    pub page: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub vendor: String,
    pub category: Option<String>,
    pub evidence_kind: Option<String>,
    pub evidence: String,
    pub consent_source: Option<String>,
    pub consent: String,
    pub count: i64,
    pub at: String,
    pub received_at: String,
    pub user_agent: String,
    pub raw: String,
    /// The site's release the report named (issue 15), absent in bundles
    /// made before releases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
}

/// Writes the canonical field encodings (see the module comment); the
/// forms of health reports and inventories (`chain_rows.rs`) use it too.
pub(crate) struct Canon(pub(crate) Vec<u8>);

impl Canon {
    pub(crate) fn new(tag: &str) -> Self {
        let mut v = Vec::with_capacity(512);
        v.extend_from_slice(tag.as_bytes());
        Self(v)
    }
    /// A form written into `buf` (emptied first; its memory kept): the
    /// writer hashes one form a row and a chain entry, ≈ 31 a batch, each
    /// in the buffer the one before used, where a buffer of their own cost
    /// an allocation each. Hashing the fields as they are written (no
    /// buffer) was measured slower: SHA-256's `update` on ≈ 35 short
    /// pieces costs more than the copy (docs/benchmarks.md, "The writer
    /// thread, fifteenth round").
    pub(crate) fn reusing(mut buf: Vec<u8>, tag: &str) -> Self {
        buf.clear();
        buf.extend_from_slice(tag.as_bytes());
        Self(buf)
    }
    pub(crate) fn int(&mut self, n: i64) -> &mut Self {
        self.0.extend_from_slice(&n.to_le_bytes());
        self
    }
    pub(crate) fn text(&mut self, s: &str) -> &mut Self {
        let len = u64::try_from(s.len()).unwrap_or(u64::MAX - 1);
        self.0.extend_from_slice(&len.to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub(crate) fn opt(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.text(s),
            None => {
                self.0.extend_from_slice(&u64::MAX.to_le_bytes());
                self
            }
        }
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.extend_from_slice(b);
        self
    }
}

/// A finding row's columns, borrowed: what [`FindingState`] holds, for a
/// writer that has the row's values in hand (the parameters of the insert
/// that stored it) and hashes it without owning its strings. The canonical
/// form is written from this one view, so an owned row and a borrowed one
/// give the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FindingStateRef<'a> {
    pub id: i64,
    pub site: &'a str,
    pub page_view: &'a str,
    pub page: &'a str,
    pub kind: &'a str,
    pub vendor: &'a str,
    pub category: Option<&'a str>,
    pub evidence_kind: Option<&'a str>,
    pub evidence: &'a str,
    pub consent_source: Option<&'a str>,
    pub consent: &'a str,
    pub count: i64,
    pub at: &'a str,
    pub received_at: &'a str,
    pub user_agent: &'a str,
    pub raw: &'a str,
    pub release: Option<&'a str>,
}

impl<'a> FindingStateRef<'a> {
    /// The row a writer stores for `f` under `id`, merged (`count`, `at`),
    /// with its release as stored (`None` for none).
    pub fn of(
        f: &'a crate::FindingRecord,
        id: i64,
        count: i64,
        at: &'a str,
        release: Option<&'a str>,
    ) -> Self {
        FindingStateRef {
            id,
            site: &f.site,
            page_view: &f.page_view,
            page: &f.page,
            kind: f.kind.as_str(),
            vendor: &f.vendor,
            category: f.category.map(|c| c.as_str()),
            evidence_kind: Some(f.evidence_kind.as_str()),
            evidence: &f.evidence,
            consent_source: f.consent_source.as_ref().map(|s| s.as_str()),
            consent: &f.consent,
            count,
            at,
            received_at: &f.received_at,
            user_agent: &f.user_agent,
            raw: &f.raw,
            release,
        }
    }
}

/// Bytes of the canonical form's fixed parts: the tag, the two ints and
/// the 8-byte length (or NULL) of each of the 15 texts.
const CANON_FIXED: usize = 19 + 2 * 8 + 15 * 8;

impl FindingStateRef<'_> {
    /// The canonical form (module comment).
    pub fn canonical(&self) -> Vec<u8> {
        self.canonical_in(Vec::new())
    }

    /// The canonical form, written in `buf` ([`Canon::reusing`]).
    pub fn canonical_in(&self, mut buf: Vec<u8>) -> Vec<u8> {
        // A row with a release is version 2 (version 1 and the release);
        // one without keeps version 1, so rows and bundles made before
        // releases still verify.
        let tag = if self.release.is_some() {
            "tagwatch-finding-v2"
        } else {
            "tagwatch-finding-v1"
        };
        let texts = [
            self.site,
            self.page_view,
            self.page,
            self.kind,
            self.vendor,
            self.evidence,
            self.consent,
            self.at,
            self.received_at,
            self.user_agent,
            self.raw,
        ];
        let optional = [
            self.category,
            self.evidence_kind,
            self.consent_source,
            self.release,
        ];
        // Sized once: the form is written without growing the buffer.
        let len = CANON_FIXED
            + texts.iter().map(|t| t.len()).sum::<usize>()
            + optional.iter().flatten().map(|t| t.len()).sum::<usize>();
        buf.clear();
        buf.reserve(len);
        let mut c = Canon::reusing(buf, tag);
        c.int(self.id)
            .text(self.site)
            .text(self.page_view)
            .text(self.page)
            .text(self.kind)
            .text(self.vendor)
            .opt(self.category)
            .opt(self.evidence_kind)
            .text(self.evidence)
            .opt(self.consent_source)
            .text(self.consent)
            .int(self.count)
            .text(self.at)
            .text(self.received_at)
            .text(self.user_agent)
            .text(self.raw);
        if let Some(release) = self.release {
            c.text(release);
        }
        c.0
    }

    pub fn digest(&self) -> Hash {
        sha256(&self.canonical())
    }

    /// [`Self::digest`], its form written in `buf` (kept for the next).
    pub fn digest_in(&self, buf: &mut Vec<u8>) -> Hash {
        *buf = self.canonical_in(std::mem::take(buf));
        sha256(buf)
    }
}

impl From<FindingStateRef<'_>> for FindingState {
    fn from(f: FindingStateRef<'_>) -> Self {
        FindingState {
            id: f.id,
            site: f.site.to_owned(),
            page_view: f.page_view.to_owned(),
            page: f.page.to_owned(),
            kind: f.kind.to_owned(),
            vendor: f.vendor.to_owned(),
            category: f.category.map(str::to_owned),
            evidence_kind: f.evidence_kind.map(str::to_owned),
            evidence: f.evidence.to_owned(),
            consent_source: f.consent_source.map(str::to_owned),
            consent: f.consent.to_owned(),
            count: f.count,
            at: f.at.to_owned(),
            received_at: f.received_at.to_owned(),
            user_agent: f.user_agent.to_owned(),
            raw: f.raw.to_owned(),
            release: f.release.map(str::to_owned),
        }
    }
}

impl FindingState {
    /// The row's columns, borrowed.
    pub fn borrowed(&self) -> FindingStateRef<'_> {
        FindingStateRef {
            id: self.id,
            site: &self.site,
            page_view: &self.page_view,
            page: &self.page,
            kind: &self.kind,
            vendor: &self.vendor,
            category: self.category.as_deref(),
            evidence_kind: self.evidence_kind.as_deref(),
            evidence: &self.evidence,
            consent_source: self.consent_source.as_deref(),
            consent: &self.consent,
            count: self.count,
            at: &self.at,
            received_at: &self.received_at,
            user_agent: &self.user_agent,
            raw: &self.raw,
            release: self.release.as_deref(),
        }
    }

    /// The canonical form (module comment).
    pub fn canonical(&self) -> Vec<u8> {
        self.borrowed().canonical()
    }

    pub fn digest(&self) -> Hash {
        self.borrowed().digest()
    }
}

pub fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// What a check needs of a stored finding row: its digest and its `at`
/// (which its latest entry repeats).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub digest: Hash,
    pub at: String,
}

impl FindingState {
    pub fn stored(&self) -> Stored {
        Stored {
            digest: self.digest(),
            at: self.at.clone(),
        }
    }
}

/// One entry of a site's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    pub seq: i64,
    /// [`FINDING`] or [`CHECKPOINT`].
    pub kind: String,
    /// The finding's id, or the checkpoint's.
    pub row: i64,
    /// The finding's `at` in this state (retention goes by it); a
    /// checkpoint's: its `before`.
    pub at: String,
    #[serde(with = "hex_hash")]
    pub digest: Hash,
    /// The hash of the entry before (seq − 1), [`GENESIS`] for seq 1.
    /// Hashed into `hash`; the store does not keep it (schema 13: it reads
    /// it as the entry before's `hash`), a bundle carries it.
    #[serde(with = "hex_hash")]
    pub prev: Hash,
    #[serde(with = "hex_hash")]
    pub hash: Hash,
}

/// An entry's hash from its fields (module comment), its form written in
/// `buf` ([`Canon::reusing`]; kept for the next entry: the writer and
/// `verify` hash entry after entry).
#[allow(clippy::too_many_arguments)]
pub fn link(
    buf: &mut Vec<u8>,
    site: &str,
    seq: i64,
    kind: &str,
    row: i64,
    at: &str,
    digest: &Hash,
    prev: &Hash,
) -> Hash {
    let mut c = Canon::reusing(std::mem::take(buf), "tagwatch-chain-v1");
    c.text(site)
        .int(seq)
        .text(kind)
        .int(row)
        .text(at)
        .bytes(digest)
        .bytes(prev);
    *buf = c.0;
    sha256(buf)
}

impl Entry {
    /// The entry after `prev_hash` at `seq`, its hash computed.
    pub fn new(
        site: &str,
        seq: i64,
        kind: &str,
        row: i64,
        at: &str,
        digest: Hash,
        prev: Hash,
    ) -> Self {
        Self {
            seq,
            kind: kind.to_owned(),
            row,
            at: at.to_owned(),
            digest,
            prev,
            hash: link(&mut Vec::new(), site, seq, kind, row, at, &digest, &prev),
        }
    }
}

/// What a purge removed from one site, recorded in its chain. The entry's
/// digest is SHA-256 of [`Checkpoint::canonical`], which is also what the
/// signature signs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    pub id: i64,
    pub site: String,
    /// The checkpoint's own entry.
    pub seq: i64,
    /// Reports observed before this were removed (ISO 8601).
    pub before: String,
    pub findings: i64,
    pub health: i64,
    pub inventories: i64,
    /// The hash of the entry before the checkpoint (seq − 1): the chain's
    /// state when the rows went.
    #[serde(with = "hex_hash")]
    pub boundary: Hash,
    /// Ed25519 over [`Checkpoint::canonical`] (hex), when the collector
    /// had a key.
    pub signature: Option<String>,
    /// The public key that signed it (hex).
    pub public_key: Option<String>,
}

impl Checkpoint {
    /// The signed bytes: the tag `tagwatch-checkpoint-v1`, then id, site,
    /// seq, before, findings, health, inventories (ints and texts as in a
    /// finding's form), boundary (32 bytes).
    pub fn canonical(&self) -> Vec<u8> {
        let mut c = Canon::new("tagwatch-checkpoint-v1");
        c.int(self.id)
            .text(&self.site)
            .int(self.seq)
            .text(&self.before)
            .int(self.findings)
            .int(self.health)
            .int(self.inventories)
            .bytes(&self.boundary);
        c.0
    }

    /// Its entry in the chain, after `prev`: what `verify` checks it
    /// against (site, seq, id, `before`, the hash of [`Self::canonical`]).
    pub fn entry(&self, prev: Hash) -> Entry {
        Entry::new(
            &self.site,
            self.seq,
            CHECKPOINT,
            self.id,
            &self.before,
            sha256(&self.canonical()),
            prev,
        )
    }

    /// Signs it with `key` (sets signature and public key).
    pub fn sign(&mut self, key: &SigningKey) {
        let sig = key.sign(&self.canonical());
        self.signature = Some(to_hex(&sig.to_bytes()));
        self.public_key = Some(to_hex(key.verifying_key().as_bytes()));
    }

    /// Whether the signature is valid under `key` (or, without one, under
    /// the key it names).
    fn signed_by(&self, key: Option<&VerifyingKey>) -> Result<(), String> {
        let Some(sig) = self.signature.as_deref() else {
            return Err("is not signed (the collector had no --signing-key when it purged)".into());
        };
        let named = match self.public_key.as_deref().map(parse_public_key) {
            Some(Ok(k)) => Some(k),
            Some(Err(e)) => return Err(format!("names a public key that is not one: {e}")),
            None => None,
        };
        let Some(key) = key.copied().or(named) else {
            return Err("has a signature but no public key to check it with".into());
        };
        let bytes: [u8; 64] = from_hex(sig)
            .and_then(|b| b.try_into().ok())
            .ok_or("has a signature that is not 64 bytes of hex")?;
        key.verify(&self.canonical(), &Signature::from_bytes(&bytes))
            .map_err(|_| {
                format!(
                    "has a signature that public key {} did not make",
                    to_hex(key.as_bytes())
                )
            })
    }
}

/// A public key in hex (64 digits).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, String> {
    let bytes: [u8; 32] = from_hex(text.trim())
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| "a public key is 64 hex digits (tagwatch keys show prints it)".to_owned())?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not a valid Ed25519 public key".to_owned())
}

/// One thing wrong with a chain, said so that a reader knows where to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem(pub String);

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Which rows a check has: all of the site's (the live database), or only
/// some (an evidence bundle: rows the segment covers but the bundle does
/// not carry are not missing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rows {
    All,
    Some,
}

/// What [`verify`] checks.
pub struct Check<'a> {
    pub site: &'a str,
    /// Entries in seq order: the whole chain, or a segment.
    pub entries: &'a [Entry],
    /// `prev` of the first entry: [`GENESIS`] for a whole chain.
    pub start: Hash,
    /// The finding rows at hand, by id.
    pub findings: &'a BTreeMap<i64, Stored>,
    pub rows: Rows,
    /// The checkpoints the entries name, by id.
    pub checkpoints: &'a BTreeMap<i64, Checkpoint>,
    /// Require checkpoints signed by this key (else by the key they name,
    /// and unsigned ones are a problem too).
    pub key: Option<&'a VerifyingKey>,
}

/// Most problems listed: a chain broken at its start would otherwise list
/// every entry after it.
pub const MAX_PROBLEMS: usize = 50;

/// Every problem of a chain (empty: it verifies), at most [`MAX_PROBLEMS`].
pub fn verify(check: &Check<'_>) -> Vec<Problem> {
    let mut out = Vec::new();
    let mut push = |s: String| {
        if out.len() < MAX_PROBLEMS {
            out.push(Problem(s));
        }
    };
    let site = check.site;
    // Links.
    let mut prev = check.start;
    let mut buf = Vec::new();
    let mut expected_seq = check.entries.first().map_or(1, |e| e.seq);
    if check.rows == Rows::All && expected_seq != 1 {
        push(format!(
            "the chain of site {site} starts at seq {expected_seq}, not 1: entries before it were deleted"
        ));
    }
    // Latest entry of each finding row; removals since the last checkpoint.
    let mut latest: BTreeMap<i64, &Entry> = BTreeMap::new();
    let mut removals: Vec<&Entry> = Vec::new();
    // Whether the entry before did not link: the store keeps no `prev`
    // (schema 13) and gives each entry the hash of the one before it as
    // its `prev`, so an entry after a deleted, inserted or changed one no
    // longer links, without being changed itself.
    let mut broken_before = false;
    for e in check.entries {
        let gap = e.seq != expected_seq;
        if gap {
            push(format!(
                "seq {expected_seq} of site {site} is missing (the next entry is seq {}): an entry was deleted or the entries reordered",
                e.seq
            ));
        }
        if e.prev != prev {
            push(format!(
                "seq {} of site {site} does not follow the entry before it (prev {} ≠ {}): an entry before it was deleted, inserted or changed",
                e.seq,
                short(&e.prev),
                short(&prev)
            ));
        }
        let hash = link(
            &mut buf, site, e.seq, &e.kind, e.row, &e.at, &e.digest, &e.prev,
        );
        let links = hash == e.hash;
        if !links && (gap || broken_before) && e.prev == prev {
            push(format!(
                "seq {} of site {site} does not follow the entry before it: an entry before it was deleted, inserted or changed (or this one was)",
                e.seq
            ));
        } else if !links {
            push(format!(
                "seq {} of site {site} was changed: its hash is not that of its fields",
                e.seq
            ));
        }
        broken_before = !links;
        match e.kind.as_str() {
            FINDING | VERSION => {
                latest.insert(e.row, e);
            }
            REMOVED => {
                latest.insert(e.row, e);
                removals.push(e);
            }
            CHECKPOINT => match check.checkpoints.get(&e.row) {
                Some(cp) => {
                    if sha256(&cp.canonical()) != e.digest || cp.seq != e.seq || cp.site != site {
                        push(format!(
                            "checkpoint {} (seq {}) was changed after it was recorded",
                            e.row, e.seq
                        ));
                    } else if cp.boundary != e.prev {
                        push(format!(
                            "checkpoint {} (seq {}) names a boundary that is not the entry before it",
                            e.row, e.seq
                        ));
                    }
                    if let Err(why) = cp.signed_by(check.key) {
                        push(format!("checkpoint {} (seq {}) {why}", e.row, e.seq));
                    }
                    let n = i64::try_from(removals.len()).unwrap_or(i64::MAX);
                    if n != cp.findings {
                        push(format!(
                            "checkpoint {} (seq {}) records {} findings removed, but {n} removals come before it",
                            cp.id, e.seq, cp.findings
                        ));
                    }
                    removals.clear();
                }
                None => push(format!(
                    "checkpoint {} (seq {}) is missing: the entry names a checkpoint row that is not there",
                    e.row, e.seq
                )),
            },
            // Health reports and inventories: checked by `chain_rows::verify`.
            kind if crate::chain_rows::KINDS.contains(&kind) => {}
            other => push(format!("seq {} has an unknown kind {other:?}", e.seq)),
        }
        prev = e.hash;
        expected_seq = e.seq.saturating_add(1);
    }
    for e in removals {
        push(format!(
            "the removal of finding {} at seq {} of site {site} has no checkpoint after it: the purge that recorded it did not finish, or its checkpoint was deleted",
            e.row, e.seq
        ));
    }
    // Rows against their latest state.
    for (id, row) in check.findings {
        match latest.get(id) {
            None => push(format!(
                "finding {id} of site {site} is not in the chain: it was inserted without the collector"
            )),
            Some(e) if e.kind == REMOVED => push(format!(
                "finding {id} of site {site} was removed at seq {} but is there again: it was put back without the collector",
                e.seq
            )),
            Some(e) if e.digest != row.digest || e.at != row.at => push(format!(
                "finding {id} of site {site} was edited after it was stored (its latest state is seq {})",
                e.seq
            )),
            Some(_) => {}
        }
    }
    if check.rows == Rows::All {
        for (id, e) in &latest {
            if e.kind == FINDING && !check.findings.contains_key(id) {
                push(format!(
                    "finding {id} of site {site} (seq {}) was deleted: no purge records its removal",
                    e.seq
                ));
            }
        }
    }
    out
}

/// The first 8 hex digits of a hash, for messages.
fn short(h: &Hash) -> String {
    to_hex(h.get(..4).unwrap_or(h))
}

/// Lower-case hex. Bytes written in place, not `char`s pushed (each
/// `push` of a `char` encodes it as UTF-8 and checks the capacity): the
/// SQLite writer wrote three hashes a chain entry as hex before schema 13,
/// 1–2% of its CPU that way (docs/benchmarks.md, "The writer thread's
/// serial work"); bundles and `verify` still show every hash so.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let digit = |n: u8| DIGITS.get(usize::from(n)).copied().unwrap_or(b'0');
    let mut s = vec![0u8; bytes.len() * 2];
    for (pair, b) in s.chunks_exact_mut(2).zip(bytes) {
        if let [high, low] = pair {
            (*high, *low) = (digit(b >> 4), digit(b & 15));
        }
    }
    // Only ASCII digits were written.
    String::from_utf8(s).unwrap_or_default()
}

pub fn from_hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    s.as_bytes()
        .chunks(2)
        .map(|p| match p {
            [a, b] => Some(digit(*a)? << 4 | digit(*b)?),
            _ => None,
        })
        .collect()
}

/// A hash as 64 hex digits.
pub fn hash_from_hex(s: &str) -> Option<Hash> {
    from_hex(s).and_then(|b| b.try_into().ok())
}

/// Serde of a [`Hash`] as hex text.
mod hex_hash {
    use super::{hash_from_hex, to_hex, Hash};

    pub fn serialize<S: serde::Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(h))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        hash_from_hex(&text).ok_or_else(|| serde::de::Error::custom("not a SHA-256 hash in hex"))
    }
}
