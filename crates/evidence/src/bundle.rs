//! Evidence bundles (docs/evidence.md): a zip of what the store holds about
//! some findings, a manifest naming each file with its SHA-256, and an
//! Ed25519 signature over the manifest. [`write`] makes one; [`verify`]
//! checks one offline — signature, manifest, every file's hash, the chain
//! segment against the findings — and names each thing that is wrong. The
//! reader takes any bytes (a bundle is evidence passed between parties):
//! it refuses names it does not know, reads no file past its limit, and
//! never panics (fuzzed: fuzz/fuzz_targets/bundle.rs).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Seek, Write};

use ed25519_dalek::{Signature, Signer as _, SigningKey, Verifier as _, VerifyingKey};
use serde::{Deserialize, Serialize};
use tagwatch_store::chain::{self, sha256, to_hex, Checkpoint, Entry, FindingState, Hash, Rows};
use tagwatch_store::chain_rows::{self, HealthState, InventoryState, Unchained};

/// The format's name and version, in the manifest.
pub const FORMAT: &str = "tagwatch-evidence-v1";
pub const MANIFEST: &str = "manifest.json";
pub const SIGNATURE: &str = "manifest.sig";
pub const FINDINGS: &str = "findings.json";
pub const CHAIN: &str = "chain.json";
pub const PAGE_VIEWS: &str = "page_views.json";
pub const CATALOG: &str = "catalog.json";
pub const POLICY: &str = "policy.json";
pub const ABOUT: &str = "about.json";
pub const REPORT: &str = "report.html";
/// Every file a bundle may hold: any other name (a path, `..`, a name a
/// later format adds) is refused, so nothing is ever written or read
/// outside this list.
pub const FILES: [&str; 9] = [
    MANIFEST, SIGNATURE, FINDINGS, CHAIN, PAGE_VIEWS, CATALOG, POLICY, ABOUT, REPORT,
];
/// Most entries a zip may list before it is refused unread (a bundle has
/// nine).
const MAX_ENTRIES: usize = 64;
/// Most bytes of the manifest and of its signature: a manifest lists nine
/// files (≈ 1 KB); a larger one is refused unparsed.
const MAX_MANIFEST_BYTES: u64 = 64 * 1024;
/// Most bytes read of one file, whatever its header claims (a zip bomb's
/// sizes lie): 512 MiB holds ≈ a million findings.
const MAX_FILE_BYTES: u64 = 512 * 1024 * 1024;
/// Most bytes read of all files together.
const MAX_TOTAL_BYTES: u64 = 1024 * 1024 * 1024;

/// What a bundle holds, before it is written.
pub struct Contents<'a> {
    pub site: &'a str,
    pub since: Option<&'a str>,
    pub until: Option<&'a str>,
    pub finding: Option<i64>,
    pub created_at: &'a str,
    pub collector_version: &'a str,
    pub evidence: &'a tagwatch_store::Evidence,
}

#[derive(Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub site: String,
    pub created_at: String,
    /// The key that signed it (hex); check it against the one the
    /// operator published (`tagwatch verify --key`).
    pub public_key: String,
    pub files: Vec<FileEntry>,
}

#[derive(Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Serialize, Deserialize)]
struct ChainFile {
    site: String,
    /// `prev` of the first entry: the hash before the segment.
    #[serde(with = "hex")]
    start: Hash,
    entries: Vec<Entry>,
    checkpoints: Vec<Checkpoint>,
}

mod hex {
    use tagwatch_store::chain::{hash_from_hex, to_hex, Hash};

    pub fn serialize<S: serde::Serializer>(h: &Hash, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&to_hex(h))
    }

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Hash, D::Error> {
        let text: String = serde::Deserialize::deserialize(d)?;
        hash_from_hex(&text).ok_or_else(|| serde::de::Error::custom("not a SHA-256 hash in hex"))
    }
}

/// `page_views.json`: the findings' page views' inventories and health
/// reports, whole, each checked against its latest entry in the segment.
#[derive(Serialize)]
struct PageViews<'a> {
    inventories: &'a [InventoryState],
    health: &'a [HealthState],
    /// Rows at or below these ids with no entry were stored before
    /// inventories and health reports were chained: not proven. A bundle
    /// without this field predates their chaining (nothing in its
    /// page_views.json is checked).
    unchained: Unchained,
}

/// `page_views.json` as read: bundles made before inventories and health
/// reports were chained have no `unchained` and fewer fields.
#[derive(Deserialize)]
struct PageViewsFile {
    #[serde(default)]
    unchained: Option<Unchained>,
    #[serde(default)]
    inventories: serde_json::Value,
    #[serde(default)]
    health: serde_json::Value,
}

fn json<T: Serialize>(value: &T) -> Result<Vec<u8>, String> {
    let mut out =
        serde_json::to_vec_pretty(value).map_err(|e| format!("cannot write JSON: {e}"))?;
    out.push(b'\n');
    Ok(out)
}

/// The catalog entries of the findings' vendors, and the catalog's
/// version: SHA-256 over every entry (in id order) of the catalog this
/// build carries.
fn catalog(findings: &[FindingState], collector_version: &str) -> serde_json::Value {
    let mut all = Vec::new();
    for v in tagwatch_core::catalog::vendors() {
        all.extend(
            tagwatch_audit::catalog::entry_json(v.id)
                .unwrap_or_default()
                .into_bytes(),
        );
    }
    let vendors: BTreeSet<&str> = findings.iter().map(|f| f.vendor.as_str()).collect();
    let entries: serde_json::Map<String, serde_json::Value> = vendors
        .into_iter()
        .map(|id| {
            let entry = tagwatch_audit::catalog::entry_json(id)
                .and_then(|text| serde_json::from_str(&text).ok())
                .unwrap_or(serde_json::Value::Null);
            (id.to_owned(), entry)
        })
        .collect();
    serde_json::json!({
        "collector_version": collector_version,
        "catalog_sha256": to_hex(&sha256(&all)),
        "note": "the catalog this collector build carries (tagwatch catalog show --json); a vendor with null is not in it (unclassified, or a CSP report's host)",
        "vendors": entries,
    })
}

/// Writes a bundle of `c` to `out`, signed with `key`.
pub fn write<W: Write + Seek>(out: W, c: &Contents<'_>, key: &SigningKey) -> Result<(), String> {
    let ev = c.evidence;
    let chain_file = ChainFile {
        site: c.site.to_owned(),
        start: ev.chain.start,
        entries: ev.chain.entries.clone(),
        checkpoints: ev.chain.checkpoints.values().cloned().collect(),
    };
    let about = serde_json::json!({
        "site": c.site,
        "since": c.since,
        "until": c.until,
        "finding": c.finding,
        "created_at": c.created_at,
        "collector_version": c.collector_version,
        "findings": ev.findings.len(),
        "chain_entries": ev.chain.entries.len(),
    });
    let policy = serde_json::json!({
        "stored": false,
        "note": "the collector stores no site policy: a site's policy lives in its embed config, in the page (docs/policy.md). Each finding's consent field is the consent state it was judged on, as the monitor reported it.",
    });
    let files: Vec<(&str, Vec<u8>)> = vec![
        (ABOUT, json(&about)?),
        (FINDINGS, json(&ev.findings)?),
        (CHAIN, json(&chain_file)?),
        (
            PAGE_VIEWS,
            json(&PageViews {
                inventories: &ev.inventories,
                health: &ev.health,
                unchained: ev.chain.unchained,
            })?,
        ),
        (CATALOG, json(&catalog(&ev.findings, c.collector_version))?),
        (POLICY, json(&policy)?),
        (
            REPORT,
            crate::report::html(c, &ev.findings, &chain_file.entries, &key.verifying_key())
                .into_bytes(),
        ),
    ];
    let manifest = Manifest {
        format: FORMAT.into(),
        site: c.site.to_owned(),
        created_at: c.created_at.to_owned(),
        public_key: to_hex(key.verifying_key().as_bytes()),
        files: files
            .iter()
            .map(|(name, bytes)| FileEntry {
                name: (*name).to_owned(),
                sha256: to_hex(&sha256(bytes)),
                bytes: u64::try_from(bytes.len()).unwrap_or(u64::MAX),
            })
            .collect(),
    };
    let manifest = json(&manifest)?;
    let signature = format!("{}\n", to_hex(&key.sign(&manifest).to_bytes()));
    let mut zip = zip::ZipWriter::new(out);
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    let mut put = |name: &str, bytes: &[u8]| -> Result<(), String> {
        zip.start_file(name, options)
            .and_then(|()| zip.write_all(bytes).map_err(Into::into))
            .map_err(|e| format!("cannot write {name} into the bundle: {e}"))
    };
    put(MANIFEST, &manifest)?;
    put(SIGNATURE, signature.as_bytes())?;
    for (name, bytes) in &files {
        put(name, bytes)?;
    }
    zip.finish()
        .map_err(|e| format!("cannot finish the bundle: {e}"))?;
    Ok(())
}

/// What [`verify`] found.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Each thing wrong, said with the file or seq it is in. Empty: the
    /// bundle verifies.
    pub problems: Vec<String>,
    /// What was checked, for the reader (key, counts).
    pub notes: Vec<String>,
}

impl Verdict {
    fn fail(mut self, problem: String) -> Self {
        self.problems.push(problem);
        self
    }
}

/// Reads at most `limit` bytes of a zip entry; more is an error.
fn read_entry(entry: &mut impl Read, limit: u64, name: &str) -> Result<Vec<u8>, String> {
    let mut bytes = Vec::new();
    #[allow(clippy::disallowed_methods)] // Bounded: take(limit + 1), then checked.
    entry
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| {
            format!("file {name} cannot be read ({e}): the bundle was damaged or changed")
        })?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(format!(
            "file {name} is larger than {limit} bytes once unpacked: refused (a bundle tagwatch writes is never that large)"
        ));
    }
    Ok(bytes)
}

/// Checks a bundle offline. With `key`, the manifest must be signed by it;
/// without, by the key the manifest names (said in the notes: check it is
/// the operator's).
pub fn verify<R: Read + Seek>(input: R, key: Option<&VerifyingKey>) -> Verdict {
    let verdict = Verdict::default();
    let mut zip = match zip::ZipArchive::new(input) {
        Ok(z) => z,
        Err(e) => {
            return verdict.fail(format!(
                "not a readable zip file ({e}): the bundle was damaged or is not a bundle"
            ))
        }
    };
    if zip.len() > MAX_ENTRIES {
        return verdict.fail(format!(
            "the zip lists {} files (a bundle has {}): refused unread",
            zip.len(),
            FILES.len()
        ));
    }
    let mut verdict = verdict;
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    let mut total: u64 = 0;
    for i in 0..zip.len() {
        let mut entry = match zip.by_index(i) {
            Ok(e) => e,
            Err(e) => {
                verdict.problems.push(format!(
                    "zip entry {i} cannot be read ({e}): the bundle was damaged or changed"
                ));
                continue;
            }
        };
        let name = entry.name().to_owned();
        if !FILES.contains(&name.as_str()) {
            verdict.problems.push(format!(
                "file {name:?} is not part of a bundle (a bundle holds only {}): refused",
                FILES.join(", ")
            ));
            continue;
        }
        if files.contains_key(&name) {
            verdict
                .problems
                .push(format!("file {name} is in the zip twice: refused"));
            continue;
        }
        let limit = if name == MANIFEST || name == SIGNATURE {
            MAX_MANIFEST_BYTES
        } else {
            MAX_FILE_BYTES.min(MAX_TOTAL_BYTES.saturating_sub(total))
        };
        match read_entry(&mut entry, limit, &name) {
            Ok(bytes) => {
                total = total.saturating_add(u64::try_from(bytes.len()).unwrap_or(u64::MAX));
                files.insert(name, bytes);
            }
            Err(e) => verdict.problems.push(e),
        }
    }
    let (Some(manifest_bytes), Some(signature)) = (files.get(MANIFEST), files.get(SIGNATURE))
    else {
        verdict.problems.push(format!(
            "the bundle has no {MANIFEST} or no {SIGNATURE}: nothing in it can be checked"
        ));
        return verdict;
    };
    let manifest: Manifest = match serde_json::from_slice(manifest_bytes) {
        Ok(m) => m,
        Err(e) => return verdict.fail(format!("{MANIFEST} is not a manifest ({e})")),
    };
    if manifest.format != FORMAT {
        verdict.problems.push(format!(
            "{MANIFEST} is format {:?}; this tagwatch reads {FORMAT}",
            manifest.format
        ));
    }
    // The signature.
    let named = chain::parse_public_key(&manifest.public_key);
    let signer = match (key, &named) {
        (Some(k), _) => Some(*k),
        (None, Ok(k)) => {
            verdict.notes.push(format!(
                "signed by the key the manifest names, {}: check that it is the operator's published key (or pass --key)",
                manifest.public_key
            ));
            Some(*k)
        }
        (None, Err(e)) => {
            verdict.problems.push(format!(
                "{MANIFEST} names no usable public key ({e}); pass --key"
            ));
            None
        }
    };
    if let Some(k) = signer {
        let sig: Option<[u8; 64]> = std::str::from_utf8(signature)
            .ok()
            .and_then(|t| chain::from_hex(t.trim()))
            .and_then(|b| b.try_into().ok());
        match sig {
            None => verdict.problems.push(format!(
                "{SIGNATURE} is not an Ed25519 signature (128 hex digits)"
            )),
            Some(sig) => {
                if k.verify(manifest_bytes, &Signature::from_bytes(&sig))
                    .is_err()
                {
                    verdict.problems.push(format!(
                        "{SIGNATURE}: the manifest was not signed by key {} (the manifest or the signature was changed, or another key signed it)",
                        to_hex(k.as_bytes())
                    ));
                } else if key.is_some() {
                    verdict
                        .notes
                        .push(format!("signed by {}", to_hex(k.as_bytes())));
                }
            }
        }
    }
    // Every file against the manifest.
    let listed: BTreeSet<&str> = manifest.files.iter().map(|f| f.name.as_str()).collect();
    for f in &manifest.files {
        match files.get(&f.name) {
            None => verdict.problems.push(format!(
                "file {} is listed in the manifest but missing",
                f.name
            )),
            Some(bytes) if to_hex(&sha256(bytes)) != f.sha256 => verdict.problems.push(format!(
                "file {} was changed: its SHA-256 is not the one in the manifest",
                f.name
            )),
            Some(_) => {}
        }
    }
    for name in files.keys() {
        if name != MANIFEST && name != SIGNATURE && !listed.contains(name.as_str()) {
            verdict
                .problems
                .push(format!("file {name} is not in the manifest: it was added"));
        }
    }
    // The chain segment against the findings.
    let findings: Option<Vec<FindingState>> =
        match files.get(FINDINGS).map(|b| serde_json::from_slice(b)) {
            Some(Ok(f)) => Some(f),
            Some(Err(e)) => {
                verdict
                    .problems
                    .push(format!("{FINDINGS} cannot be read ({e})"));
                None
            }
            None => None,
        };
    let chain_file: Option<ChainFile> = match files.get(CHAIN).map(|b| serde_json::from_slice(b)) {
        Some(Ok(c)) => Some(c),
        Some(Err(e)) => {
            verdict
                .problems
                .push(format!("{CHAIN} cannot be read ({e})"));
            None
        }
        None => None,
    };
    let page_views: Option<PageViewsFile> =
        match files.get(PAGE_VIEWS).map(|b| serde_json::from_slice(b)) {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                verdict
                    .problems
                    .push(format!("{PAGE_VIEWS} cannot be read ({e})"));
                None
            }
            None => None,
        };
    if let (Some(findings), Some(c)) = (findings, chain_file) {
        if c.site != manifest.site || findings.iter().any(|f| f.site != c.site) {
            verdict.problems.push(format!(
                "{FINDINGS} and {CHAIN} are not of the manifest's site {}",
                manifest.site
            ));
        }
        let rows = findings.iter().map(|f| (f.id, f.stored())).collect();
        let checkpoints = c.checkpoints.into_iter().map(|cp| (cp.id, cp)).collect();
        let problems = chain::verify(&chain::Check {
            site: &c.site,
            entries: &c.entries,
            start: c.start,
            findings: &rows,
            rows: Rows::Some,
            checkpoints: &checkpoints,
            key,
        });
        verdict
            .problems
            .extend(problems.into_iter().map(|p| format!("{CHAIN}: {p}")));
        if let Some(p) = page_views {
            check_page_views(&mut verdict, p, &c.site, &c.entries, &checkpoints);
        }
        verdict.notes.push(format!(
            "{} findings, chain seq {}..{} of site {}",
            findings.len(),
            c.entries.first().map_or(0, |e| e.seq),
            c.entries.last().map_or(0, |e| e.seq),
            c.site
        ));
    }
    verdict
}

/// The page views' inventories and health reports against their latest
/// entries in the segment (`chain_rows::verify`), or a note that the bundle
/// predates their chaining.
fn check_page_views(
    verdict: &mut Verdict,
    p: PageViewsFile,
    site: &str,
    entries: &[Entry],
    checkpoints: &BTreeMap<i64, Checkpoint>,
) {
    let Some(unchained) = p.unchained else {
        verdict.notes.push(format!(
            "{PAGE_VIEWS} carries no chain mark (made before inventories and health reports were chained, or from an events store before it chained them): they are not proven"
        ));
        return;
    };
    let parsed: Result<(Vec<InventoryState>, Vec<HealthState>), String> =
        serde_json::from_value(p.inventories)
            .and_then(|i| Ok((i, serde_json::from_value(p.health)?)))
            .map_err(|e| e.to_string());
    let (inventories, health) = match parsed {
        Ok(x) => x,
        Err(e) => {
            verdict
                .problems
                .push(format!("{PAGE_VIEWS} cannot be read ({e})"));
            return;
        }
    };
    if inventories.iter().any(|i| i.site != site) || health.iter().any(|h| h.site != site) {
        verdict.problems.push(format!(
            "{PAGE_VIEWS} holds rows of a site other than {site}"
        ));
    }
    let inventories = inventories.iter().map(|i| (i.id, i.stored())).collect();
    let health = health.iter().map(|h| (h.id, h.stored())).collect();
    let check = chain_rows::Check {
        site,
        entries,
        health: &health,
        inventories: &inventories,
        rows: Rows::Some,
        checkpoints,
        unchained,
    };
    verdict.problems.extend(
        chain_rows::verify(&check)
            .into_iter()
            .map(|p| format!("{PAGE_VIEWS}: {p}")),
    );
    let (h, i) = chain_rows::unproven(&check);
    verdict.notes.push(format!(
        "{} inventories and {} health reports of the findings' page views, checked against the chain",
        inventories.len().saturating_sub(i),
        health.len().saturating_sub(h)
    ));
    if h + i > 0 {
        verdict.notes.push(format!(
            "{PAGE_VIEWS}: {i} inventories and {h} health reports were stored before they were chained: not proven"
        ));
    }
}
