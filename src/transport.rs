//! Sending report batches: `sendBeacon` (survives the page going away), with
//! `fetch(keepalive)` as the fallback when the beacon queue refuses. Bodies
//! are strings, so the request is `text/plain` and needs no CORS preflight.

use crate::observe::{now, window};
use crate::Shell;
use std::cell::RefCell;
use std::rc::Rc;
use tagwatch_core::report::PageView;

pub(crate) fn view(s: &Shell) -> PageView<'_> {
    PageView { site: &s.site, id: &s.page_view, url: &s.page_url, user_agent: &s.user_agent }
}

/// Sends the findings not yet sent, if any.
pub(crate) fn send_pending(shell: &Rc<RefCell<Shell>>) {
    let Ok(mut s) = shell.try_borrow_mut() else { return };
    // No collector (the extension without one): nothing leaves the browser.
    let Some(w) = window().filter(|_| !s.collector.is_empty()) else { return };
    let at = now();
    let Shell { engine, site, page_view, page_url, user_agent, collector, .. } = &mut *s;
    let view = PageView { site, id: page_view, url: page_url, user_agent };
    let Some(body) = engine.take_batch(&view, at) else { return };
    let queued = w.navigator().send_beacon_with_opt_str(collector, Some(&body)).unwrap_or(false);
    if !queued {
        let init = web_sys::RequestInit::new();
        init.set_method("POST");
        init.set_body(&body.as_str().into());
        let _ = js_sys::Reflect::set(&init, &"keepalive".into(), &true.into());
        init.set_mode(web_sys::RequestMode::NoCors);
        // The promise is dropped: a lost report is better than a page error.
        let _ = w.fetch_with_str_and_init(collector, &init);
    }
}
