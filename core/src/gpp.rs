//! IAB Global Privacy Platform (GPP) string decoder.
//!
//! A GPP string is a header followed by discrete sections, joined by `~`
//! ("Consent String Specification", IAB Tech Lab GPP v1). The header is
//! base64url: Type 6 (always 3), Version 6 (1), then the section ids as a
//! Fibonacci range: NumEntries 12, then per entry IsRange 1 and either one
//! Fibonacci-coded id or a start and an end, each coded as the *offset*
//! from the previous id (so `[2, 6]` is `0 F(2) 0 F(4)`). The sections follow
//! in the header's order, one per `~` part.
//!
//! Sections decoded here:
//! - **2 `tcfeuv2`**: an ordinary TC string, decoded by [`crate::tcf::decode`].
//! - **7–12, the US sections** (`usnat` versions 1 and 2, `usca`, `usva`,
//!   `usco`, `usut`, `usct`), read from one field table ([`US_SECTIONS`])
//!   with the optional GPC sub-section where the section has one.
//!
//! Every other section is listed by id and skipped. US sections are
//! `.`-separated segments: the core segment, then, in the sections that
//! have one, the GPC sub-section: GpcSegmentType 2 (`1` = GPC), Gpc 1.
//! Field names serialize as the GPP client API names them (`SaleOptOut`,
//! `GpcSegmentType`), so the output lines up with `__gpp('getField',
//! 'usnat.SaleOptOut')`.
//!
//! Where the specification leaves room, the string is read as the IAB
//! reference library `@iabgpp/cmpapi` (3.x) reads it, since that is what
//! CMPs test their strings against and what the vendors downstream decode:
//! - the second `.` segment is the GPC sub-section whatever its
//!   GpcSegmentType says, and later segments are not read;
//! - a US National core segment is read by its length in bits, not its
//!   Version: 60 or 66 bits (version 1's layout, optionally padded) keep
//!   version 1's field positions; any other length is read with version
//!   2's positions (16 sensitive-data and 3 known-child values), then, for
//!   Version 1, cut back to 12 and 2. So a version 1 segment a CMP padded
//!   beyond 66 bits (OneTrust writes such strings) has its
//!   PersonalDataConsents and MSPA fields taken from version 2's place.
//!   `tests/e2e/gpp-reference.test.mjs` holds both readings to the
//!   reference.
//!
//! Every read is checked: a malformed string gives a [`GppError`], never a
//! panic. [`Gpp::categories`] maps the decoded sections onto the normalised
//! categories (rules in its docs and in `docs/policy.md`).
//!
//! ```
//! use tagwatch_core::consent::Category;
//! // Header [7], then usnat v1: notices given, did not opt out, GPC set.
//! let gpp = tagwatch_core::gpp::decode("DBABL~BVQqAAAAAa.Y").unwrap();
//! assert_eq!(gpp.section_ids, vec![7]);
//! assert_eq!(gpp.categories().get(Category::Marketing), Some(false));
//! assert!(tagwatch_core::gpp::decode("DBABM").is_err());
//! ```

use alloc::{boxed::Box, vec::Vec};
use core::fmt;

use serde::Serialize;

use crate::bits::BitCursor;
use crate::consent::{Categories, Category};
use crate::tcf::{self, TcString, TcfError};

/// Header type: the header is section id 3.
pub const HEADER_ID: u16 = 3;
/// Section id of the EU TCF v2 section.
pub const TCF_EU_V2: u16 = 2;
/// Section id of the US National section.
pub const US_NAT: u16 = 7;
/// Section id of the California section.
pub const US_CA: u16 = 8;

/// One US section's layout: `(id, version, api prefix, has a GPC
/// sub-section, fields after Version)`; a field is `(name, count)`, 2 bits
/// per value, `count` > 1 a list.
pub type UsLayout = (u16, u8, &'static str, bool, &'static [(&'static str, u8)]);

/// The US sections, decoded from one field table: national (id 7, versions
/// 1 and 2), California (8), Virginia (9), Colorado (10), Utah (11),
/// Connecticut (12). Layouts from the section specifications of the GPP
/// repository (shared/reference/consent.md §1.2), checked field by field
/// against `@iabgpp/cmpapi` by tests/e2e/gpp-reference.test.mjs.
pub const US_SECTIONS: [UsLayout; 7] = [
    (
        US_NAT,
        1,
        "usnat",
        true,
        &[
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("SharingOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SensitiveDataProcessingOptOutNotice", 1),
            ("SensitiveDataLimitUseNotice", 1),
            ("SaleOptOut", 1),
            ("SharingOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 12),
            ("KnownChildSensitiveDataConsents", 2),
            ("PersonalDataConsents", 1),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
    (
        US_NAT,
        2,
        "usnat",
        true,
        &[
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("SharingOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SensitiveDataProcessingOptOutNotice", 1),
            ("SensitiveDataLimitUseNotice", 1),
            ("SaleOptOut", 1),
            ("SharingOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 16),
            ("KnownChildSensitiveDataConsents", 3),
            ("PersonalDataConsents", 1),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
    (
        US_CA,
        1,
        "usca",
        true,
        &[
            ("SaleOptOutNotice", 1),
            ("SharingOptOutNotice", 1),
            ("SensitiveDataLimitUseNotice", 1),
            ("SaleOptOut", 1),
            ("SharingOptOut", 1),
            ("SensitiveDataProcessing", 9),
            ("KnownChildSensitiveDataConsents", 2),
            ("PersonalDataConsents", 1),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
    (
        9,
        1,
        "usva",
        false,
        &[
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 1),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
    (
        10,
        1,
        "usco",
        true,
        &[
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 7),
            ("KnownChildSensitiveDataConsents", 1),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
    (
        11,
        1,
        "usut",
        false,
        &[
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SensitiveDataProcessingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 1),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
    (
        12,
        1,
        "usct",
        true,
        &[
            ("SharingNotice", 1),
            ("SaleOptOutNotice", 1),
            ("TargetedAdvertisingOptOutNotice", 1),
            ("SaleOptOut", 1),
            ("TargetedAdvertisingOptOut", 1),
            ("SensitiveDataProcessing", 8),
            ("KnownChildSensitiveDataConsents", 3),
            ("MspaCoveredTransaction", 1),
            ("MspaOptOutOptionMode", 1),
            ("MspaServiceProviderMode", 1),
        ],
    ),
];

/// Section ids longer than this many Fibonacci bits are rejected (F(25) =
/// 121393 > u16::MAX).
const MAX_FIB_BITS: u8 = 24;

/// Why a GPP string could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum GppError {
    /// The input is empty.
    Empty,
    /// A character outside `A-Z a-z 0-9 - _` in the header or a US section.
    NotBase64Url {
        /// Section id (3 for the header).
        section: u16,
        /// Byte offset of the character within the section.
        at: usize,
    },
    /// The header's Type is not 3.
    NotHeader(u8),
    /// The header's Version is not 1.
    UnsupportedVersion(u8),
    /// A section ends before `field` does.
    Truncated {
        /// Section id (3 for the header).
        section: u16,
        /// The field being read.
        field: &'static str,
        /// Bit offset where that field starts.
        bit: usize,
    },
    /// A Fibonacci-coded section id is too long, or an id overflows.
    BadSectionId,
    /// The header lists a different number of sections than the string has.
    SectionCount {
        /// Ids in the header.
        declared: usize,
        /// `~`-separated parts after the header.
        found: usize,
    },
    /// A section's own version is not one this decoder knows.
    UnsupportedSectionVersion {
        /// Section id.
        section: u16,
        /// Its version field.
        version: u8,
    },
    /// The EU TCF v2 section is not a valid TC string.
    Tcf(TcfError),
}

impl fmt::Display for GppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty GPP string"),
            Self::NotBase64Url { section, at } => {
                write!(f, "section {section}: not base64url (byte {at})")
            }
            Self::NotHeader(t) => write!(f, "header: type {t}, expected 3"),
            Self::UnsupportedVersion(v) => write!(f, "header: unsupported GPP version {v}"),
            Self::Truncated {
                section,
                field,
                bit,
            } => write!(f, "section {section}: truncated at bit {bit} ({field})"),
            Self::BadSectionId => f.write_str("header: invalid section id"),
            Self::SectionCount { declared, found } => {
                write!(f, "header lists {declared} sections, string has {found}")
            }
            Self::UnsupportedSectionVersion { section, version } => {
                write!(f, "section {section}: unsupported version {version}")
            }
            Self::Tcf(e) => write!(f, "section 2 (tcfeuv2): {e}"),
        }
    }
}

impl core::error::Error for GppError {}

/// One decoded section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "api")]
#[non_exhaustive]
pub enum Section {
    /// Id 2.
    #[serde(rename = "tcfeuv2")]
    TcfEuV2(Box<TcString>),
    /// A section this decoder skips.
    #[serde(rename = "other")]
    Other {
        /// Its id.
        id: u16,
    },
    /// Ids 7–12: a US section decoded from its field table
    /// ([`US_SECTIONS`]); it names its own `api`.
    #[serde(untagged)]
    Us(UsSection),
}

impl Section {
    /// The section id.
    pub fn id(&self) -> u16 {
        match self {
            Self::TcfEuV2(_) => TCF_EU_V2,
            Self::Us(s) => s.id,
            Self::Other { id } => *id,
        }
    }
}

/// A decoded GPP string.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Gpp {
    /// GPP version from the header (1).
    pub version: u8,
    /// Section ids, in string order.
    pub section_ids: Vec<u16>,
    /// The sections, in the same order.
    pub sections: Vec<Section>,
}

/// Decodes a GPP string (surrounding white space is not trimmed).
pub fn decode(input: &str) -> Result<Gpp, GppError> {
    decode_with::<true>(input)
}

/// Decodes a GPP string but lists a TCF EU section as
/// [`Section::Other`]: for the page, where `__tcfapi` reports that
/// section's state already decoded, and the TC string decoder would
/// double the monitor's consent code.
pub fn decode_us(input: &str) -> Result<Gpp, GppError> {
    decode_with::<false>(input)
}

// A const parameter, so the page's build links no TC string decoder.
fn decode_with<const TCF: bool>(input: &str) -> Result<Gpp, GppError> {
    if input.is_empty() {
        return Err(GppError::Empty);
    }
    let mut parts = crate::fields(input, b'~');
    let header = parts.next().ok_or(GppError::Empty)?;
    let parts: Vec<&str> = parts.collect();
    let mut b = Bits::new(header, HEADER_ID)?;
    let kind = b.take_u8(6, "Type")?;
    if kind != 3 {
        return Err(GppError::NotHeader(kind));
    }
    let version = b.take_u8(6, "Version")?;
    if version != 1 {
        return Err(GppError::UnsupportedVersion(version));
    }
    let section_ids = b.fibonacci_range("SectionIds", parts.len())?;
    if section_ids.len() != parts.len() {
        return Err(GppError::SectionCount {
            declared: section_ids.len(),
            found: parts.len(),
        });
    }
    let mut sections = Vec::with_capacity(parts.len());
    for (id, text) in section_ids.iter().zip(parts) {
        sections.push(match *id {
            TCF_EU_V2 if !TCF => Section::Other { id: TCF_EU_V2 },
            TCF_EU_V2 => decode_tcf(text)?,
            id => decode_section(id, text)?,
        });
    }
    Ok(Gpp {
        version,
        section_ids,
        sections,
    })
}

/// The categories a GPP event's US sections give (see
/// [`Gpp::categories_for`]): the GPP string and the CMP's
/// `applicableSections` (`-1` and other ids out of range: none). Nothing
/// known (`Categories::default()`) when no section applies or the string
/// does not decode. The TCF EU section is not read: `__tcfapi`, which every
/// TCF CMP must offer, reports it already decoded. What the page's GPP
/// piece (`pieces/gpp-us`) computes, and `Engine::gpp`.
pub fn us_categories(gpp_string: &str, applicable: &[i32]) -> Categories {
    let ids: Vec<u16> = applicable
        .iter()
        .filter_map(|id| u16::try_from(*id).ok())
        .collect();
    if ids.is_empty() {
        return Categories::default();
    }
    decode_us(gpp_string)
        .map(|gpp| gpp.categories_for(Some(&ids)))
        .unwrap_or_default()
}

fn decode_tcf(text: &str) -> Result<Section, GppError> {
    Ok(Section::TcfEuV2(Box::new(
        tcf::decode(text).map_err(GppError::Tcf)?,
    )))
}

/// A US section: its fields by name, in string order, and the GPC
/// sub-section where the section has one. Serialises flat, with `api` and
/// the GPP client API's field names (`SaleOptOut`), like the other sections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsSection {
    /// Section id.
    pub id: u16,
    /// API prefix (`usnat`, `usca`, `usva`, …).
    pub api: &'static str,
    /// Section version.
    pub version: u8,
    /// `(name, values)`, one value per 2-bit field, several for a list.
    pub fields: Vec<(&'static str, Vec<u8>)>,
    /// The GPC sub-section's flag, when present.
    pub gpc: Option<bool>,
    /// The GPC sub-section's GpcSegmentType (1 = GPC), when present.
    pub gpc_segment_type: Option<u8>,
    /// The section has a GPC sub-section in its specification.
    pub has_gpc: bool,
    /// The field table the section was read with (which fields are lists).
    layout: &'static [(&'static str, u8)],
}

impl UsSection {
    /// The values of field `name` (empty when the section has no such field).
    pub fn field(&self, name: &str) -> &[u8] {
        self.fields
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&[], |(_, v)| v.as_slice())
    }

    /// A single-valued field (0, "not applicable", when absent).
    pub fn value(&self, name: &str) -> u8 {
        self.field(name).first().copied().unwrap_or(0)
    }
}

impl Serialize for UsSection {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("api", self.api)?;
        m.serialize_entry("Version", &self.version)?;
        for ((name, values), (_, count)) in self.fields.iter().zip(self.layout) {
            match values.as_slice() {
                [one] if *count == 1 => m.serialize_entry(name, one)?,
                list => m.serialize_entry(name, list)?,
            }
        }
        // As the reference reports them: without the sub-section its
        // defaults (type 1, GPC off) and GpcSegmentIncluded false.
        if self.has_gpc {
            m.serialize_entry("GpcSegmentType", &self.gpc_segment_type.unwrap_or(1))?;
            m.serialize_entry("GpcSegmentIncluded", &self.gpc.is_some())?;
            m.serialize_entry("Gpc", &self.gpc.unwrap_or(false))?;
        }
        m.end()
    }
}

/// Decodes a US section; `None` when `id` is not one.
fn decode_us_section(id: u16, text: &str) -> Option<Result<UsSection, GppError>> {
    US_SECTIONS.iter().any(|(i, ..)| *i == id).then(|| {
        let mut segments = crate::fields(text, b'.');
        let core = segments.next().unwrap_or_default();
        let mut b = Bits::new(core, id)?;
        let version = b.take_u8(6, "Version")?;
        let Some((_, _, api, has_gpc, layout)) = US_SECTIONS
            .iter()
            .find(|(i, v, ..)| *i == id && *v == version)
        else {
            return Err(GppError::UnsupportedSectionVersion {
                section: id,
                version,
            });
        };
        let fields = if id == US_NAT {
            usnat_fields(&mut b, core.len().saturating_mul(6), layout)?
        } else {
            let mut fields = Vec::with_capacity(layout.len());
            for (name, count) in layout.iter() {
                fields.push((*name, b.list(usize::from(*count), name)?));
            }
            fields
        };
        let gpc = match (has_gpc, segments.next()) {
            (true, Some(text)) => {
                let mut b = Bits::new(text, id)?;
                let kind = b.take_u8(2, "GpcSegmentType")?;
                Some((kind, b.flag("Gpc")?))
            }
            _ => None,
        };
        Ok(UsSection {
            id,
            api,
            version,
            fields,
            gpc: gpc.map(|(_, on)| on),
            gpc_segment_type: gpc.map(|(kind, _)| kind),
            has_gpc: *has_gpc,
            layout,
        })
    })
}

/// Core segment lengths, in bits, that `@iabgpp/cmpapi` reads with US
/// National version 1's field positions (version 1's 60 bits, or 66 when
/// padded to a whole byte); every other length it reads with version 2's.
const USNAT_V1_BITS: [usize; 2] = [60, 66];

/// The fields of a US National core segment of `bits` bits, after Version,
/// as the reference reads them (module docs): `layout` is the table of
/// the segment's own Version, which gives the lists' lengths reported.
fn usnat_fields(
    b: &mut Bits<'_>,
    bits: usize,
    layout: &'static [(&'static str, u8)],
) -> Result<Vec<(&'static str, Vec<u8>)>, GppError> {
    let read = if USNAT_V1_BITS.contains(&bits) { 1 } else { 2 };
    let Some((.., read_layout)) = US_SECTIONS
        .iter()
        .find(|(i, v, ..)| *i == US_NAT && *v == read)
    else {
        return Ok(Vec::new());
    };
    let mut fields = Vec::with_capacity(layout.len());
    for ((name, count), (_, want)) in read_layout.iter().zip(layout.iter()) {
        let mut values = b.list(usize::from(*count), name)?;
        values.resize(usize::from(*want), 0);
        fields.push((*name, values));
    }
    Ok(fields)
}

fn decode_section(id: u16, text: &str) -> Result<Section, GppError> {
    decode_us_section(id, text).map_or(Ok(Section::Other { id }), |us| us.map(Section::Us))
}

/// "Every source must grant": granted only if every contribution grants,
/// refused if any refuses, unknown if none.
#[derive(Default)]
struct Acc([Option<bool>; 4]);

impl Acc {
    fn add(&mut self, c: Category, v: bool) {
        if let Some(slot) = self.0.get_mut(c as usize) {
            *slot = Some(slot.unwrap_or(true) && v);
        }
    }

    /// A US opt-out field: 1 opted out → refused, 2 did not → granted,
    /// 0 (not applicable) and 3 (invalid) say nothing.
    fn opt_out(&mut self, c: Category, v: u8) {
        match v {
            1 => self.add(c, false),
            2 => self.add(c, true),
            _ => {}
        }
    }

    /// US known-child consents: 1 (no consent) refuses marketing; consent
    /// grants nothing by itself (the opt-outs still apply).
    fn child(&mut self, values: &[u8]) {
        if values.contains(&1) {
            self.add(Category::Marketing, false);
        }
    }
}

impl Gpp {
    /// The normalised categories from every mapped section (see
    /// [`Gpp::categories_for`]).
    pub fn categories(&self) -> Categories {
        self.categories_for(None)
    }

    /// The normalised categories from the mapped sections whose id is in
    /// `applicable` (the CMP's `applicableSections`), or from all of them
    /// when `None`. Several sections combine by the "every source must
    /// grant" rule of `docs/policy.md`. Rules:
    ///
    /// - **tcfeuv2**: purpose 1 (store/access) gates functional, analytics
    ///   and marketing; analytics also needs purposes 7–10 (measurement,
    ///   research, product improvement), marketing purposes 2–4 (basic ads,
    ///   ads profile, personalised ads) — the same default as the Didomi
    ///   parser in `cmp.rs`.
    /// - **usnat**: SaleOptOut, SharingOptOut, TargetedAdvertisingOptOut:
    ///   1 (opted out) → marketing refused, 2 (did not opt out) → granted,
    ///   0 → no contribution. GPC sub-section `true` → marketing refused (the
    ///   spec: "true is an opt out of sale"). A known-child consent of 1 (no
    ///   consent) → marketing refused. Functional and analytics are not
    ///   opt-out-gated under the state laws: left unknown.
    /// - **usca**: as usnat with SaleOptOut and SharingOptOut.
    /// - `necessary` is `true` once any mapped section is present; with none
    ///   every category is unknown.
    pub fn categories_for(&self, applicable: Option<&[u16]>) -> Categories {
        let mut acc = Acc::default();
        let mut any = false;
        for section in &self.sections {
            if applicable.is_some_and(|a| !a.contains(&section.id())) {
                continue;
            }
            match section {
                Section::TcfEuV2(tc) => {
                    any = true;
                    let tcf = crate::consent::from_tcf_purposes(
                        |id| tc.purpose_consents.contains(id),
                        &Default::default(),
                    );
                    for c in [
                        Category::Functional,
                        Category::Analytics,
                        Category::Marketing,
                    ] {
                        acc.add(c, tcf.granted(c));
                    }
                }
                Section::Us(s) => {
                    // Each section has the opt-outs its law has: sale,
                    // sharing and/or targeted advertising.
                    any = true;
                    for opt_out in ["SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut"] {
                        acc.opt_out(Category::Marketing, s.value(opt_out));
                    }
                    acc.child(s.field("KnownChildSensitiveDataConsents"));
                    if s.gpc == Some(true) {
                        acc.add(Category::Marketing, false);
                    }
                }
                Section::Other { .. } => {}
            }
        }
        if any {
            acc.add(Category::Necessary, true);
        }
        Categories(acc.0)
    }
}

/// A checked big-endian bit reader over base64url text.
struct Bits<'a> {
    cursor: BitCursor<'a>,
    section: u16,
}

impl<'a> Bits<'a> {
    fn new(text: &'a str, section: u16) -> Result<Self, GppError> {
        let cursor = BitCursor::new(text).map_err(|at| GppError::NotBase64Url { section, at })?;
        Ok(Self { cursor, section })
    }

    fn bit(&mut self, field: &'static str) -> Result<bool, GppError> {
        Ok(self.take(1, field)? == 1)
    }

    /// Reads `n` ≤ 16 bits; on failure the position is where the field starts.
    fn take(&mut self, n: u8, field: &'static str) -> Result<u16, GppError> {
        let bit = self.cursor.pos;
        let v = self.cursor.take(n.min(16)).ok_or(GppError::Truncated {
            section: self.section,
            field,
            bit,
        })?;
        Ok(u16::try_from(v).unwrap_or(u16::MAX))
    }

    fn take_u8(&mut self, n: u8, field: &'static str) -> Result<u8, GppError> {
        Ok(u8::try_from(self.take(n.min(8), field)?).unwrap_or(u8::MAX))
    }

    fn flag(&mut self, field: &'static str) -> Result<bool, GppError> {
        self.bit(field)
    }

    /// `n` two-bit values.
    fn list(&mut self, n: usize, field: &'static str) -> Result<Vec<u8>, GppError> {
        (0..n).map(|_| self.take_u8(2, field)).collect()
    }

    /// A Fibonacci-coded positive integer: bits weigh 1, 2, 3, 5, 8, …; the
    /// code ends at the first `11`.
    fn fibonacci(&mut self, field: &'static str) -> Result<u32, GppError> {
        let (mut a, mut b) = (1u32, 2u32);
        let mut value = 0u32;
        let mut prev = false;
        for _ in 0..=MAX_FIB_BITS {
            let bit = self.bit(field)?;
            if bit && prev {
                return Ok(value);
            }
            if bit {
                value = value.saturating_add(a);
            }
            prev = bit;
            (a, b) = (b, a.saturating_add(b));
        }
        Err(GppError::BadSectionId)
    }

    /// NumEntries 12, then `IsRange 1, Fib(start offset)[, Fib(end offset)]`.
    /// Stops with [`GppError::SectionCount`] as soon as more than `max` ids
    /// are listed, so a hostile range cannot allocate.
    fn fibonacci_range(&mut self, field: &'static str, max: usize) -> Result<Vec<u16>, GppError> {
        let entries = self.take(12, field)?;
        let mut ids = Vec::new();
        let mut last = 0u32;
        for _ in 0..entries {
            let is_range = self.flag(field)?;
            let start = last.saturating_add(self.fibonacci(field)?);
            let end = if is_range {
                start.saturating_add(self.fibonacci(field)?)
            } else {
                start
            };
            if end > u32::from(u16::MAX) {
                return Err(GppError::BadSectionId);
            }
            let count = usize::try_from(end - start)
                .unwrap_or(usize::MAX)
                .saturating_add(1);
            if ids.len().saturating_add(count) > max {
                return Err(GppError::SectionCount {
                    declared: ids.len().saturating_add(count),
                    found: max,
                });
            }
            ids.extend((start..=end).filter_map(|id| u16::try_from(id).ok()));
            last = end;
        }
        Ok(ids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn us_sections_are_the_ones_the_page_fetches_the_decoder_for() {
        for (id, ..) in US_SECTIONS {
            assert!(
                crate::consent::GPP_US_SECTION_IDS.contains(&id),
                "section {id}"
            );
        }
    }
}
