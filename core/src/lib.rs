//! tagwatch core: the sans-IO engine shared by the in-page monitor (wasm),
//! the browser extension, the collector and the CLI, so that a finding means
//! the same thing everywhere.
//!
//! Data flows one way: observation (URL, cookie names, globals) →
//! [`catalog`] match → [`engine`] judges it against the [`consent`] timeline
//! and the [`policy`] → [`report`] batch. Nothing here touches a browser API.
//!
//! ```
//! use tagwatch_core::{engine::{Engine, Request}, policy::Policy};
//! let mut engine = Engine::new(Policy::default(), "https://shop.example/");
//! engine.request(Request { url: "https://widget.intercom.io/widget/abc12345",
//!     start: 120.0, initiator: "script", frame: "top", ..Default::default() });
//! assert_eq!(engine.findings()[0].kind.as_str(), "script_before_consent");
//! ```
#![deny(missing_docs)]

#[cfg(feature = "consent-parsers")]
mod bits;
pub mod catalog;
#[cfg(feature = "consent-parsers")]
pub mod cmp;
pub mod consent;
#[cfg(feature = "consent-parsers")]
pub mod consent_mode;
pub mod cookie;
pub mod engine;
#[cfg(feature = "consent-parsers")]
pub mod gpp;
pub mod inventory;
mod json;
pub mod policy;
pub mod redact;
pub mod report;
#[cfg(feature = "consent-parsers")]
pub mod tcf;
pub mod url;
