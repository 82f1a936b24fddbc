//! Sending report batches through the host's `send(url, body)` function
//! (the host interface's send): the snippet's loader implements it on the
//! browser's own `fetch` / `sendBeacon` / `XMLHttpRequest` taken before the
//! page's later scripts could replace them (`www/host.js`), the extension on
//! its isolated world's. Bodies are strings, so the request is `text/plain`
//! and needs no CORS preflight.

use crate::observe::now;
use crate::Shell;
use std::cell::RefCell;
use std::rc::Rc;
use tagwatch_core::report::PageView;
use wasm_bindgen::JsValue;

pub(crate) fn view(s: &Shell) -> PageView<'_> {
    PageView { site: &s.site, id: &s.page_view, url: &s.page_url, user_agent: &s.user_agent }
}

/// Sends the findings not yet sent, if any.
pub(crate) fn send_pending(shell: &Rc<RefCell<Shell>>) {
    let Ok(mut s) = shell.try_borrow_mut() else { return };
    // No collector (the extension without one): nothing leaves the browser.
    if s.collector.is_empty() {
        return;
    }
    let at = now();
    let Shell { engine, site, page_view, page_url, user_agent, collector, send, .. } = &mut *s;
    let view = PageView { site, id: page_view, url: page_url, user_agent };
    let Some(body) = engine.take_batch(&view, at) else { return };
    // A host that throws loses this batch: better than a page error.
    let _ = send.call2(&JsValue::NULL, &JsValue::from_str(collector), &JsValue::from_str(&body));
}
