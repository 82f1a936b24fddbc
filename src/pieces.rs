//! On-demand pieces: the consent decoders only some pages need, kept out of
//! the module every page view downloads and fetched by the brain when the
//! shell asks for one ([`crate::Monitor::wanted`]):
//!
//! | piece | when | what it answers |
//! |---|---|---|
//! | [`CMP_COOKIES`] (`ondemand/cmp-cookies.wasm`, `pieces/cmp-cookies`) | a cookie snapshot has a CMP's consent cookie (`cmp::in_cookies`) | the CMP state those cookies record, its choices about single vendors too |
//! | [`GPP_US`] (`ondemand/gpp-us.wasm`, `pieces/gpp-us`) | a GPP event with a US section applicable | that section's categories |
//!
//! What arrives before its piece is kept, in order, and judged when the
//! piece is handed over ([`crate::Monitor::piece`]): every cookie snapshot
//! from the first with a CMP cookie on, every GPP event with a US section.
//! Consent that arrives dated earlier revises the findings not sent yet
//! (`Engine::consent`), so nothing is lost while the piece downloads.
//!
//! A piece is a plain wasm module (its crate's top comment has the ABI);
//! the brain hands it over wrapped as a [`Piece`]: `call(export, text, n)`
//! writes `text` into the piece's memory and returns `export(len, n)`. A
//! piece that throws or answers nonsense reads as "nothing known".
//!
//! The extension's monitor is built with feature `parsers` (the decoders in
//! the module, no pieces): an extension is installed once, not downloaded
//! on every page view.

use alloc::string::String;
use alloc::vec::Vec;
use tagwatch_core::cmp::CmpConsent;
use tagwatch_core::consent::{Categories, Vendors, GPP_US_SECTION_IDS};
use tagwatch_core::engine::Engine;
use wasm_bindgen::prelude::*;

/// The CMP cookie reader piece.
pub(crate) const CMP_COOKIES: u32 = 1;
/// The GPP US sections piece.
pub(crate) const GPP_US: u32 = 2;

/// Cookie snapshots or GPP events kept while a piece downloads: a page
/// view has a few; past this the latest replaces the one before it (the
/// state in force now is the one that matters most).
const MAX_KEPT: usize = 64;

#[wasm_bindgen]
extern "C" {
    /// An instantiated piece, as the brain wraps it.
    pub type Piece;
    #[wasm_bindgen(method, catch)]
    fn call(this: &Piece, export: &str, text: &str, n: u32) -> Result<u32, JsValue>;
}

/// The pieces a page view has, wants and waits for.
pub(crate) struct Pieces {
    cmp: Option<Piece>,
    gpp: Option<Piece>,
    /// Pieces wanted and not yet asked for.
    wanted: u32,
    asked: u32,
    /// Cookie snapshots `(header, at)` waiting for the cookie reader.
    cookies: Vec<(String, u64)>,
    /// GPP events `(gpp string, applicable sections as bits, restored, at)`.
    gpp_events: Vec<(String, u32, bool, u64)>,
}

impl Pieces {
    /// No piece had, wanted or asked for yet.
    pub(crate) const EMPTY: Pieces = Pieces {
        cmp: None,
        gpp: None,
        wanted: 0,
        asked: 0,
        cookies: Vec::new(),
        gpp_events: Vec::new(),
    };

    /// Pieces wanted since the last call; each is asked for once.
    pub(crate) fn take_wanted(&mut self) -> u32 {
        let new = self.wanted & !self.asked;
        self.asked |= new;
        new
    }

    /// A cookie snapshot at `at`, before the engine judges its cookies:
    /// the CMP state it records, now or once the reader is there; `cmp`:
    /// whether it has a consent cookie the reader reads (`cmp::in_cookies`).
    pub(crate) fn cookies(&mut self, engine: &mut Engine, header: &str, cmp: bool, at: u64) {
        if let Some(reader) = &self.cmp {
            engine.cmp_cookie_consent(read_cookies(reader, header), at);
        } else if self.cookies.is_empty() && !cmp {
            engine.cmp_cookie_consent(None, at);
        } else {
            self.wanted |= CMP_COOKIES;
            keep(&mut self.cookies, (header.into(), at));
        }
    }

    /// A GPP event: its US sections' categories, now or once the decoder
    /// is there; nothing when no US section applies.
    pub(crate) fn gpp(
        &mut self,
        engine: &mut Engine,
        gpp: &str,
        applicable: &[f64],
        restored: bool,
        at: u64,
    ) {
        let sections = applicable
            .iter()
            .filter_map(|id| u16::try_from(crate::int32(*id)).ok())
            .filter(|id| GPP_US_SECTION_IDS.contains(id))
            .fold(0u32, |bits, id| bits | 1 << id);
        if sections == 0 {
            return;
        }
        match &self.gpp {
            Some(decoder) => engine.gpp_categories(read_gpp(decoder, gpp, sections), restored, at),
            None => {
                self.wanted |= GPP_US;
                keep(&mut self.gpp_events, (gpp.into(), sections, restored, at));
            }
        }
    }

    /// Whether something waits for a piece that has not arrived.
    pub(crate) fn waiting(&self) -> bool {
        !self.cookies.is_empty() || !self.gpp_events.is_empty()
    }

    /// The site's CMP names changed: the cookie reader reads with the new ones.
    pub(crate) fn policy(&self, engine: &Engine) {
        if let Some(reader) = &self.cmp {
            ask(reader, "names", &engine.policy().consent_names.to_text(), 0);
        }
    }

    /// A piece arrives: what waited for it is judged, in order. Out of
    /// line, not inlined into `Monitor::piece`: 21 bytes of the wasm's
    /// gzip, 38 of brotli (docs/benchmarks.md, fourteenth round).
    #[inline(never)]
    pub(crate) fn attach(&mut self, engine: &mut Engine, kind: u32, piece: Piece) {
        match kind {
            CMP_COOKIES if self.cmp.is_none() => {
                ask(&piece, "names", &engine.policy().consent_names.to_text(), 0);
                for (header, at) in &core::mem::take(&mut self.cookies) {
                    engine.cmp_cookie_consent(read_cookies(&piece, header), *at);
                }
                self.cmp = Some(piece);
            }
            GPP_US if self.gpp.is_none() => {
                for (gpp, sections, restored, at) in &core::mem::take(&mut self.gpp_events) {
                    engine.gpp_categories(read_gpp(&piece, gpp, *sections), *restored, *at);
                }
                self.gpp = Some(piece);
            }
            _ => {}
        }
    }
}

/// `piece.export(text, n)`; 0 when the call threw. A `match`, not
/// `unwrap_or` (an instance with the exception's drop at each call).
#[allow(clippy::manual_unwrap_or, clippy::manual_unwrap_or_default)] // the instance is what this avoids
fn ask(piece: &Piece, export: &str, text: &str, n: u32) -> u32 {
    match piece.call(export, text, n) {
        Ok(v) => v,
        Err(_) => 0,
    }
}

fn read_cookies(reader: &Piece, header: &str) -> Option<CmpConsent> {
    let mut found = CmpConsent::from_bits(ask(reader, "read", header, 0))?;
    let vendors = |which| ask(reader, "vendors", "", which);
    found.vendors = Vendors {
        granted: vendors(0),
        refused: vendors(1),
    };
    Some(found)
}

fn read_gpp(decoder: &Piece, gpp: &str, sections: u32) -> Categories {
    let bits = ask(decoder, "categories", gpp, sections);
    Categories::from_bits(u8::try_from(bits).unwrap_or(0))
}

/// Keeps `item`, bounded by [`MAX_KEPT`].
fn keep<T>(list: &mut Vec<T>, item: T) {
    if list.len() >= MAX_KEPT {
        list.pop();
    }
    list.push(item);
}
