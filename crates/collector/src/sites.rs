//! The origins of the sites reports come for, kept once looked up.
//!
//! Every ingest request needs the registered origins of the sites it
//! reports for. A site is never removed and its origins never change
//! (`site add` registers a site with its origins; `site set` changes only
//! its sampling), so a site found once is kept: the store is asked only
//! about keys not seen yet. An unknown key is not kept, so a site added on
//! any machine sharing the store is seen by the next request, and keys
//! sent at random fill nothing.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use tagwatch_store::{Store, StoreError};

#[derive(Debug, Default)]
pub struct SiteOrigins {
    known: RwLock<HashMap<String, Arc<[String]>>>,
}

impl SiteOrigins {
    /// The origins of a site seen before.
    pub fn get(&self, site: &str) -> Option<Arc<[String]>> {
        self.known
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(site)
            .cloned()
    }

    /// Looks `site` up in the store (blocking); `None` if it is unknown.
    pub fn fetch(
        &self,
        store: &dyn Store,
        site: &str,
    ) -> Result<Option<Arc<[String]>>, StoreError> {
        if !crate::keys::is_site_key(site) {
            return Ok(None);
        }
        let Some(origins) = store.site_origins(site)? else {
            return Ok(None);
        };
        let origins: Arc<[String]> = origins.into();
        self.known
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(site.to_owned(), origins.clone());
        Ok(Some(origins))
    }
}
