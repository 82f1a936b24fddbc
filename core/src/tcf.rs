//! IAB TCF v2.x TC string decoder.
//!
//! A TC string is one or more base64url segments (no padding) joined by
//! `.`. The first is the core segment; each optional segment starts with a
//! 3-bit segment type: 1 disclosed vendors, 2 allowed vendors, 3 publisher
//! TC. Field order and widths follow "Consent string and vendor list
//! formats v2" and agree with the IAB reference decoder `@iabtechlabtcf/core`
//! (a side-by-side test, `tests/e2e/tcf-reference.test.mjs`, checks this on
//! a corpus of real and generated strings).
//!
//! Core segment, in bits: Version 6 (must be 2), Created 36, LastUpdated 36
//! (deciseconds since the Unix epoch), CmpId 12, CmpVersion 12,
//! ConsentScreen 6, ConsentLanguage 12 (two letters, 6 bits each, A = 0),
//! VendorListVersion 12, TcfPolicyVersion 6, IsServiceSpecific 1,
//! UseNonStandardTexts 1, SpecialFeatureOptIns 12, PurposesConsent 24,
//! PurposesLITransparency 24, PurposeOneTreatment 1, PublisherCC 12, vendor
//! consents, vendor legitimate interests, publisher restrictions.
//!
//! A vendor section is MaxVendorId 16, IsRangeEncoding 1, then either a
//! bitfield of MaxVendorId bits (bit *i* is vendor *i + 1*) or NumEntries 12
//! followed by entries `IsARange 1, StartOrOnlyVendorId 16[, EndVendorId 16]`.
//! Publisher restrictions are NumPubRestrictions 12, then per restriction
//! PurposeId 6, RestrictionType 2 and a range list as above.
//!
//! Decoding reads bits straight from the base64url text (no intermediate
//! buffer); the only allocations are the id sets. Every read is checked: a
//! malformed string gives a [`TcfError`], never a panic.
//!
//! ```
//! let tc = tagwatch_core::tcf::decode(
//!     "COwAdDhOwAdDhN4ABAENAPCgAAQAAv___wAAAFP_AAp_4AI6ACACAA",
//! ).unwrap();
//! assert_eq!(tc.cmp_id, 888);
//! assert!(tc.vendor_legitimate_interests.contains(10));
//! assert!(tagwatch_core::tcf::decode("BOEFEAyOEFEAyAHABDENAI4AAAB9vABAASA").is_err());
//! ```

use alloc::vec::Vec;
use core::fmt;

use serde::ser::{Error as _, SerializeSeq};
use serde::{Serialize, Serializer};

use crate::bits::BitCursor;

/// Distinct (purpose id, restriction type) pairs: 6 + 2 bits.
const MAX_RESTRICTION_KEYS: usize = 64 * 4;

/// The segments of a TC string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Segment {
    /// The core segment (always first).
    Core,
    /// Segment type 1: vendors the CMP disclosed.
    DisclosedVendors,
    /// Segment type 2: vendors the publisher allows (OOB).
    AllowedVendors,
    /// Segment type 3: the publisher's own purposes.
    PublisherTc,
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Core => "core segment",
            Self::DisclosedVendors => "disclosed vendors segment",
            Self::AllowedVendors => "allowed vendors segment",
            Self::PublisherTc => "publisher TC segment",
        })
    }
}

/// Why a TC string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TcfError {
    /// The input (or one of its segments) is empty.
    Empty {
        /// 0-based index of the empty segment.
        index: usize,
    },
    /// A character outside `A-Z a-z 0-9 - _`.
    NotBase64Url {
        /// 0-based index of the segment.
        index: usize,
        /// Byte offset of the character within the segment.
        at: usize,
    },
    /// The core version is not 2.
    UnsupportedVersion(u8),
    /// An optional segment with a type other than 1, 2 or 3 (or a second
    /// core segment).
    UnknownSegment {
        /// 0-based index of the segment.
        index: usize,
        /// Its 3-bit type.
        kind: u8,
    },
    /// The same optional segment twice.
    DuplicateSegment(Segment),
    /// The segment ends before `field` does.
    Truncated {
        /// Where.
        segment: Segment,
        /// The field being read.
        field: &'static str,
        /// Bit offset where that field starts.
        bit: usize,
    },
    /// A vendor range ends before it starts, or names vendor 0.
    BadRange {
        /// Where.
        segment: Segment,
        /// The vendor section.
        field: &'static str,
        /// First id.
        start: u16,
        /// Last id.
        end: u16,
    },
    /// A two-letter code with a value outside A–Z.
    BadLetter {
        /// The field (`consentLanguage`, `publisherCC`).
        field: &'static str,
        /// The 6-bit value.
        value: u8,
    },
}

impl fmt::Display for TcfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty { index: 0 } => f.write_str("empty TC string"),
            Self::Empty { index } => write!(f, "segment {}: empty", index + 1),
            Self::NotBase64Url { index, at } => {
                write!(f, "segment {}: not base64url (byte {at})", index + 1)
            }
            Self::UnsupportedVersion(v) => write!(f, "unsupported version {v}"),
            Self::UnknownSegment { index, kind } => {
                write!(f, "segment {}: unknown segment type {kind}", index + 1)
            }
            Self::DuplicateSegment(s) => write!(f, "{s} appears twice"),
            Self::Truncated {
                segment,
                field,
                bit,
            } => write!(f, "{segment}: truncated at bit {bit} ({field})"),
            Self::BadRange {
                segment,
                field,
                start,
                end,
            } => write!(f, "{segment}: {field}: invalid vendor range {start}-{end}"),
            Self::BadLetter { field, value } => {
                write!(f, "core segment: {field}: letter value {value} is not A-Z")
            }
        }
    }
}

impl core::error::Error for TcfError {}

/// A set of ids (purposes, special features, vendors: 1..=65535) as a
/// bitset. Serializes as the sorted list of ids.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IdSet {
    words: Vec<u64>,
}

impl IdSet {
    /// Whether `id` is in the set.
    pub fn contains(&self, id: u16) -> bool {
        let id = usize::from(id);
        self.words
            .get(id / 64)
            .is_some_and(|w| w & (1u64 << (id % 64)) != 0)
    }

    /// Adds `id`.
    pub fn insert(&mut self, id: u16) {
        self.insert_range(id, id);
    }

    /// Adds every id in `start..=end` (nothing when `end < start`).
    pub fn insert_range(&mut self, start: u16, end: u16) {
        if end < start {
            return;
        }
        let (start, end) = (usize::from(start), usize::from(end));
        let need = end / 64 + 1;
        if self.words.len() < need {
            self.words.resize(need, 0);
        }
        for (i, word) in self
            .words
            .iter_mut()
            .enumerate()
            .take(need)
            .skip(start / 64)
        {
            let lo = if i == start / 64 { start % 64 } else { 0 };
            let hi = if i == end / 64 { end % 64 } else { 63 };
            // Bits lo..=hi set.
            let mask = (u64::MAX >> (63 - (hi - lo))) << lo;
            *word |= mask;
        }
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.words.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.words.iter().all(|w| *w == 0)
    }

    /// The ids, ascending.
    pub fn iter(&self) -> impl Iterator<Item = u16> + '_ {
        self.words.iter().enumerate().flat_map(|(i, w)| {
            let base = i * 64;
            (0..64usize)
                .filter(move |b| w & (1u64 << b) != 0)
                .filter_map(move |b| u16::try_from(base + b).ok())
        })
    }
}

impl Serialize for IdSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.len()))?;
        for id in self.iter() {
            seq.serialize_element(&id)?;
        }
        seq.end()
    }
}

/// A TC string timestamp: deciseconds since the Unix epoch. Serializes as
/// ISO 8601 UTC with milliseconds (`2020-01-26T17:01:00.000Z`), as the
/// reference decoder's `Date.toISOString()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Deciseconds(pub u64);

impl Deciseconds {
    /// Milliseconds since the Unix epoch.
    pub fn as_millis(self) -> u64 {
        self.0.saturating_mul(100)
    }

    /// `YYYY-MM-DDTHH:MM:SS.mmmZ` (36 bits of deciseconds stay before 2188).
    pub fn iso8601(self) -> [u8; 24] {
        let secs = self.0 / 10;
        let ms = (self.0 % 10) * 100;
        let days = secs / 86_400;
        let rem = secs % 86_400;
        let (y, m, d) = civil_from_days(days);
        let (hh, mm, ss) = (rem / 3600, rem / 60 % 60, rem % 60);
        let dg = |v: u64, p: u64| b'0' + (v / p % 10) as u8;
        [
            dg(y, 1000),
            dg(y, 100),
            dg(y, 10),
            dg(y, 1),
            b'-',
            dg(m, 10),
            dg(m, 1),
            b'-',
            dg(d, 10),
            dg(d, 1),
            b'T',
            dg(hh, 10),
            dg(hh, 1),
            b':',
            dg(mm, 10),
            dg(mm, 1),
            b':',
            dg(ss, 10),
            dg(ss, 1),
            b'.',
            dg(ms, 100),
            dg(ms, 10),
            dg(ms, 1),
            b'Z',
        ]
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (H. Hinnant's algorithm, unsigned: days are never negative here).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

impl Serialize for Deciseconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buf = self.iso8601();
        match core::str::from_utf8(&buf) {
            Ok(text) => s.serialize_str(text),
            Err(_) => Err(S::Error::custom("timestamp is not ASCII")),
        }
    }
}

/// Two upper-case letters (`consentLanguage`, `publisherCC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Letters(pub [u8; 2]);

impl Letters {
    /// The code as text.
    pub fn as_str(&self) -> &str {
        core::str::from_utf8(&self.0).unwrap_or("")
    }
}

impl Serialize for Letters {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Vendors restricted for one purpose with one restriction type. Entries of
/// the string with the same purpose and type are merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherRestriction {
    /// Purpose id.
    pub purpose_id: u8,
    /// 0 not allowed, 1 require consent, 2 require legitimate interest.
    pub restriction_type: u8,
    /// The vendors.
    pub vendors: IdSet,
}

/// The publisher TC segment (type 3).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PublisherTc {
    /// PubPurposesConsent: purposes the user consented to for the publisher.
    pub publisher_consents: IdSet,
    /// PubPurposesLITransparency.
    pub publisher_legitimate_interests: IdSet,
    /// NumCustomPurposes.
    pub num_custom_purposes: u8,
    /// CustomPurposesConsent.
    pub publisher_custom_consents: IdSet,
    /// CustomPurposesLITransparency.
    pub publisher_custom_legitimate_interests: IdSet,
}

/// A decoded TC string. Field names (camelCase) are those of the IAB
/// reference decoder and the `__tcfapi` TCData (`tcfPolicyVersion`,
/// `publisherCC`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TcString {
    /// Encoding version (2).
    pub version: u8,
    /// When the string was first created.
    pub created: Deciseconds,
    /// When it was last updated.
    pub last_updated: Deciseconds,
    /// CMP id.
    pub cmp_id: u16,
    /// CMP version.
    pub cmp_version: u16,
    /// CMP screen number.
    pub consent_screen: u8,
    /// Language of the CMP UI (`EN`).
    pub consent_language: Letters,
    /// Global Vendor List version.
    pub vendor_list_version: u16,
    /// TCF policy version (4 for TCF 2.2).
    pub tcf_policy_version: u8,
    /// Service-specific rather than global.
    pub is_service_specific: bool,
    /// UseNonStandardTexts (formerly UseNonStandardStacks).
    pub use_non_standard_texts: bool,
    /// Special features opted in (1..=12).
    pub special_feature_optins: IdSet,
    /// Purposes consented (1..=24).
    pub purpose_consents: IdSet,
    /// Purposes with legitimate interest established (1..=24).
    pub purpose_legitimate_interests: IdSet,
    /// Purpose 1 was not disclosed (publisher country rules).
    pub purpose_one_treatment: bool,
    /// Publisher country code.
    #[serde(rename = "publisherCC")]
    pub publisher_cc: Letters,
    /// Vendors with consent.
    pub vendor_consents: IdSet,
    /// Vendors with legitimate interest established.
    pub vendor_legitimate_interests: IdSet,
    /// Publisher restrictions, sorted by purpose id then type.
    pub publisher_restrictions: Vec<PublisherRestriction>,
    /// Disclosed vendors segment, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendors_disclosed: Option<IdSet>,
    /// Allowed vendors segment, when present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vendors_allowed: Option<IdSet>,
    /// Publisher TC segment, when present (its fields inline).
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub publisher_tc: Option<PublisherTc>,
}

/// Decodes a TC string (surrounding white space is not trimmed).
pub fn decode(input: &str) -> Result<TcString, TcfError> {
    let mut segments = crate::fields(input, b'.').enumerate();
    let (_, first) = segments.next().ok_or(TcfError::Empty { index: 0 })?;
    let mut tc = decode_core(Bits::new(first, 0, Segment::Core)?)?;
    for (index, text) in segments {
        let mut bits = Bits::new(text, index, Segment::Core)?;
        let kind = bits.take_u8(3, "segmentType")?;
        let segment = match kind {
            1 => Segment::DisclosedVendors,
            2 => Segment::AllowedVendors,
            3 => Segment::PublisherTc,
            _ => return Err(TcfError::UnknownSegment { index, kind }),
        };
        bits.segment = segment;
        match segment {
            Segment::DisclosedVendors => {
                if tc.vendors_disclosed.is_some() {
                    return Err(TcfError::DuplicateSegment(segment));
                }
                tc.vendors_disclosed = Some(bits.vendors("vendorsDisclosed")?);
            }
            Segment::AllowedVendors => {
                if tc.vendors_allowed.is_some() {
                    return Err(TcfError::DuplicateSegment(segment));
                }
                tc.vendors_allowed = Some(bits.vendors("vendorsAllowed")?);
            }
            _ => {
                if tc.publisher_tc.is_some() {
                    return Err(TcfError::DuplicateSegment(segment));
                }
                tc.publisher_tc = Some(decode_publisher_tc(&mut bits)?);
            }
        }
    }
    Ok(tc)
}

fn decode_core(mut b: Bits<'_>) -> Result<TcString, TcfError> {
    let version = b.take_u8(6, "version")?;
    if version != 2 {
        return Err(TcfError::UnsupportedVersion(version));
    }
    let created = Deciseconds(b.take(36, "created")?);
    let last_updated = Deciseconds(b.take(36, "lastUpdated")?);
    let cmp_id = b.take_u16(12, "cmpId")?;
    let cmp_version = b.take_u16(12, "cmpVersion")?;
    let consent_screen = b.take_u8(6, "consentScreen")?;
    let consent_language = b.letters("consentLanguage")?;
    let vendor_list_version = b.take_u16(12, "vendorListVersion")?;
    let tcf_policy_version = b.take_u8(6, "tcfPolicyVersion")?;
    let is_service_specific = b.flag("isServiceSpecific")?;
    let use_non_standard_texts = b.flag("useNonStandardTexts")?;
    let special_feature_optins = b.fixed(12, "specialFeatureOptins")?;
    let purpose_consents = b.fixed(24, "purposeConsents")?;
    let purpose_legitimate_interests = b.fixed(24, "purposeLegitimateInterests")?;
    let purpose_one_treatment = b.flag("purposeOneTreatment")?;
    let publisher_cc = b.letters("publisherCC")?;
    let vendor_consents = b.vendors("vendorConsents")?;
    let vendor_legitimate_interests = b.vendors("vendorLegitimateInterests")?;
    let publisher_restrictions = b.restrictions()?;
    Ok(TcString {
        version,
        created,
        last_updated,
        cmp_id,
        cmp_version,
        consent_screen,
        consent_language,
        vendor_list_version,
        tcf_policy_version,
        is_service_specific,
        use_non_standard_texts,
        special_feature_optins,
        purpose_consents,
        purpose_legitimate_interests,
        purpose_one_treatment,
        publisher_cc,
        vendor_consents,
        vendor_legitimate_interests,
        publisher_restrictions,
        vendors_disclosed: None,
        vendors_allowed: None,
        publisher_tc: None,
    })
}

fn decode_publisher_tc(b: &mut Bits<'_>) -> Result<PublisherTc, TcfError> {
    let publisher_consents = b.fixed(24, "publisherConsents")?;
    let publisher_legitimate_interests = b.fixed(24, "publisherLegitimateInterests")?;
    let num_custom_purposes = b.take_u8(6, "numCustomPurposes")?;
    let n = u16::from(num_custom_purposes);
    let publisher_custom_consents = b.fixed(n, "publisherCustomConsents")?;
    let publisher_custom_legitimate_interests = b.fixed(n, "publisherCustomLegitimateInterests")?;
    Ok(PublisherTc {
        publisher_consents,
        publisher_legitimate_interests,
        num_custom_purposes,
        publisher_custom_consents,
        publisher_custom_legitimate_interests,
    })
}

/// A checked big-endian bit reader over base64url text.
struct Bits<'a> {
    cursor: BitCursor<'a>,
    segment: Segment,
}

impl<'a> Bits<'a> {
    /// Validates the alphabet up front, so a bad character is reported as
    /// such rather than as a later decoding error.
    fn new(text: &'a str, index: usize, segment: Segment) -> Result<Self, TcfError> {
        if text.is_empty() {
            return Err(TcfError::Empty { index });
        }
        let cursor = BitCursor::new(text).map_err(|at| TcfError::NotBase64Url { index, at })?;
        Ok(Self { cursor, segment })
    }

    /// Reads `n` ≤ 64 bits as an unsigned integer.
    fn take(&mut self, n: u8, field: &'static str) -> Result<u64, TcfError> {
        let bit = self.cursor.pos;
        self.cursor.take(n).ok_or(TcfError::Truncated {
            segment: self.segment,
            field,
            bit,
        })
    }

    fn take_u8(&mut self, n: u8, field: &'static str) -> Result<u8, TcfError> {
        // n ≤ 8 at every call site; the fallback is unreachable.
        Ok(u8::try_from(self.take(n.min(8), field)?).unwrap_or(u8::MAX))
    }

    fn take_u16(&mut self, n: u8, field: &'static str) -> Result<u16, TcfError> {
        Ok(u16::try_from(self.take(n.min(16), field)?).unwrap_or(u16::MAX))
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, TcfError> {
        Ok(self.take(1, field)? == 1)
    }

    fn letters(&mut self, field: &'static str) -> Result<Letters, TcfError> {
        let mut out = [b'A'; 2];
        for slot in &mut out {
            let value = self.take_u8(6, field)?;
            if value > 25 {
                return Err(TcfError::BadLetter { field, value });
            }
            *slot = b'A' + value;
        }
        Ok(Letters(out))
    }

    /// A bitfield of `n` bits: bit i set → id i + 1.
    fn fixed(&mut self, n: u16, field: &'static str) -> Result<IdSet, TcfError> {
        let mut set = IdSet::default();
        for id in 1..=n {
            if self.flag(field)? {
                set.insert(id);
            }
        }
        Ok(set)
    }

    /// A vendor section: MaxVendorId, IsRangeEncoding, bitfield or ranges.
    fn vendors(&mut self, field: &'static str) -> Result<IdSet, TcfError> {
        let max_id = self.take_u16(16, field)?;
        if self.flag(field)? {
            let mut set = IdSet::default();
            self.ranges(&mut set, field)?;
            Ok(set)
        } else {
            self.fixed(max_id, field)
        }
    }

    /// NumEntries 12, then `IsARange 1, Start 16[, End 16]` each.
    fn ranges(&mut self, set: &mut IdSet, field: &'static str) -> Result<(), TcfError> {
        let entries = self.take_u16(12, field)?;
        for _ in 0..entries {
            let is_range = self.flag(field)?;
            let start = self.take_u16(16, field)?;
            let end = if is_range {
                self.take_u16(16, field)?
            } else {
                start
            };
            if start == 0 || end < start {
                return Err(TcfError::BadRange {
                    segment: self.segment,
                    field,
                    start,
                    end,
                });
            }
            set.insert_range(start, end);
        }
        Ok(())
    }

    /// NumPubRestrictions 12, then PurposeId 6, RestrictionType 2, ranges.
    fn restrictions(&mut self) -> Result<Vec<PublisherRestriction>, TcfError> {
        const FIELD: &str = "publisherRestrictions";
        let count = self.take_u16(12, FIELD)?;
        let mut out: Vec<PublisherRestriction> = Vec::new();
        for _ in 0..count {
            let purpose_id = self.take_u8(6, FIELD)?;
            let restriction_type = self.take_u8(2, FIELD)?;
            let slot = match out
                .iter()
                .position(|r| r.purpose_id == purpose_id && r.restriction_type == restriction_type)
            {
                Some(i) => i,
                None => {
                    out.push(PublisherRestriction {
                        purpose_id,
                        restriction_type,
                        vendors: IdSet::default(),
                    });
                    out.len() - 1
                }
            };
            debug_assert!(out.len() <= MAX_RESTRICTION_KEYS);
            if let Some(r) = out.get_mut(slot) {
                self.ranges(&mut r.vendors, FIELD)?;
            }
        }
        out.sort_by_key(|r| (r.purpose_id, r.restriction_type));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates() {
        let iso = |d: u64| String::from_utf8(Deciseconds(d).iso8601().to_vec()).unwrap();
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(15_800_580_605), "2020-01-26T17:01:00.500Z");
        assert_eq!(iso((1u64 << 36) - 1), "2187-10-06T10:21:13.500Z");
        // 2000-02-29 (leap day)
        assert_eq!(iso(9_517_824_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn id_set_ranges() {
        let mut s = IdSet::default();
        s.insert_range(60, 130);
        s.insert(1);
        s.insert_range(65535, 65535);
        s.insert_range(5, 4);
        assert_eq!(s.len(), 73);
        assert!(s.contains(60) && s.contains(64) && s.contains(130) && !s.contains(131));
        assert!(s.contains(65535) && !s.contains(0));
        let ids: Vec<u16> = s.iter().collect();
        assert_eq!(ids.first(), Some(&1));
        assert_eq!(ids.last(), Some(&65535));
    }
}
