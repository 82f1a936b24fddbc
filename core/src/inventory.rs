//! What ran on a page view, rule-breaking or not: per vendor usage (requests,
//! bytes, hosts, regions, cookies) and the third-party hosts the catalog does
//! not know, so a site learns about tags it did not know it ran.

use alloc::{borrow::ToOwned, string::String, vec::Vec};
use serde::Serialize;

/// Most unclassified hosts kept per page view (bounds memory and payload).
pub const MAX_UNCLASSIFIED: usize = 100;
/// Most distinct hosts or cookies listed per vendor.
const MAX_LISTED: usize = 50;

/// Resource usage summed over Resource Timing entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Usage {
    /// Entries.
    pub requests: u32,
    /// Entries that were scripts.
    pub script_requests: u32,
    /// Sum of `transferSize` (0 for cross-origin without Timing-Allow-Origin).
    pub transfer_bytes: u64,
    /// Sum of `encodedBodySize` (same caveat).
    pub encoded_bytes: u64,
    /// Sum of entry durations, ms.
    pub duration_ms: u64,
}

impl Usage {
    fn add(&mut self, e: &Entry) {
        self.requests = self.requests.saturating_add(1);
        self.script_requests = self.script_requests.saturating_add(u32::from(e.script));
        self.transfer_bytes = self.transfer_bytes.saturating_add(e.transfer);
        self.encoded_bytes = self.encoded_bytes.saturating_add(e.encoded);
        self.duration_ms = self.duration_ms.saturating_add(e.duration);
    }
}

/// One entry's contribution.
#[derive(Debug, Clone, Copy, Default)]
pub struct Entry {
    /// A script load.
    pub script: bool,
    /// `transferSize`.
    pub transfer: u64,
    /// `encodedBodySize`.
    pub encoded: u64,
    /// `duration`, ms.
    pub duration: u64,
}

/// A catalog vendor seen on the page view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VendorUsage {
    /// Vendor id.
    pub vendor: &'static str,
    /// Its requests.
    #[serde(flatten)]
    pub usage: Usage,
    /// Distinct hosts.
    pub hosts: Vec<String>,
    /// Distinct known regions of processing.
    pub regions: Vec<&'static str>,
    /// Distinct cookie names.
    pub cookies: Vec<String>,
}

/// A third-party host the catalog does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostUsage {
    /// The host.
    pub host: String,
    /// Its requests.
    #[serde(flatten)]
    pub usage: Usage,
}

/// The page view's inventory.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Inventory {
    /// Catalog vendors.
    pub vendors: Vec<VendorUsage>,
    /// Unknown third parties.
    pub unclassified: Vec<HostUsage>,
    #[serde(skip)]
    changed: bool,
}

impl Inventory {
    /// Nothing seen, as a constant.
    pub(crate) const EMPTY: Inventory = Inventory {
        vendors: Vec::new(),
        unclassified: Vec::new(),
        changed: false,
    };
}

/// `item` added to `list` unless it is there or `list` is full (the
/// texts compared as `&str` before one is copied: one search of a list,
/// not a second of the copy by `<[String]>::contains`, an instance the
/// page's wasm carried for this alone: docs/benchmarks.md, sixteenth round).
fn push_distinct(list: &mut Vec<String>, item: &str) {
    if list.len() < MAX_LISTED && !list.iter().any(|x| x == item) {
        list.push(item.into());
    }
}

impl Inventory {
    /// The vendor's entry, created on first use.
    fn vendor(&mut self, id: &'static str) -> Option<&mut VendorUsage> {
        self.changed = true;
        let i = match self.vendors.iter().position(|v| v.vendor == id) {
            Some(i) => i,
            None => {
                self.vendors.push(VendorUsage {
                    vendor: id,
                    usage: Usage::default(),
                    hosts: Vec::new(),
                    regions: Vec::new(),
                    cookies: Vec::new(),
                });
                self.vendors.len() - 1
            }
        };
        self.vendors.get_mut(i)
    }

    /// A vendor request.
    pub fn vendor_request(
        &mut self,
        id: &'static str,
        host: &str,
        region: Option<&'static str>,
        e: &Entry,
    ) {
        let Some(v) = self.vendor(id) else { return };
        v.usage.add(e);
        push_distinct(&mut v.hosts, host);
        if let Some(r) = region {
            if v.regions.len() < MAX_LISTED && !v.regions.contains(&r) {
                v.regions.push(r);
            }
        }
    }

    /// A vendor cookie.
    pub fn vendor_cookie(&mut self, id: &'static str, name: &str) {
        let Some(v) = self.vendor(id) else { return };
        push_distinct(&mut v.cookies, name);
    }

    /// The vendor runs (global or marker) without a request seen yet.
    pub fn vendor_present(&mut self, id: &'static str) {
        if !self.vendors.iter().any(|v| v.vendor == id) {
            let _ = self.vendor(id);
        }
    }

    /// A third-party request no catalog vendor claims.
    pub fn unclassified(&mut self, host: &str, e: &Entry) {
        let i = match self.unclassified.iter().position(|h| h.host == host) {
            Some(i) => i,
            None if self.unclassified.len() < MAX_UNCLASSIFIED => {
                self.unclassified.push(HostUsage {
                    host: host.to_owned(),
                    usage: Usage::default(),
                });
                self.unclassified.len() - 1
            }
            None => return,
        };
        if let Some(h) = self.unclassified.get_mut(i) {
            h.usage.add(e);
            self.changed = true;
        }
    }

    /// Whether anything changed since the last `take_changed`.
    pub fn take_changed(&mut self) -> bool {
        core::mem::take(&mut self.changed)
    }
}
