// The busy page's Resource Timing entries as the engine benches feed them
// (tools/bench-engine.mjs natively, tools/bench-wasm-entries.mjs in V8):
// the plan of tests/fixtures/fake-intercom/busy.mjs (293 resources from 27
// hosts) and Intercom's 7 from its 3, in page order, each with its
// initiatorType, a start time and a class: allowed (a catalog vendor the
// page's consent allows), refused (Intercom), unknown (a host the catalog
// does not know). Written once here so both benches measure the same page.
import { hostVendors, resources } from '../tests/fixtures/fake-intercom/busy.mjs';

// initiatorType as the browser reports each kind of resource of the plan
// (POST calls are `fetch`es: tests/fixtures/pages/busy.js).
const INITIATOR = { img: 'img', script: 'script', css: 'link', iframe: 'iframe', fetch: 'fetch', xhr: 'xmlhttprequest', post: 'fetch' };

// Intercom's entries on the busy page (the fake's Messenger: its loader,
// the two bundles it adds, the API calls of a visitor's first minutes).
const INTERCOM = [
  ['script', 'https://widget.intercom.io/widget/bench123'],
  ['script', 'https://js.intercomcdn.com/frame-modern.1a2b3c4d.js'],
  ['script', 'https://js.intercomcdn.com/vendor-modern.5e6f7a8b.js'],
  ['xmlhttprequest', 'https://api-iam.intercom.io/messenger/web/ping'],
  ['xmlhttprequest', 'https://api-iam.intercom.io/messenger/web/open'],
  ['xmlhttprequest', 'https://api-iam.intercom.io/messenger/web/events'],
  ['xmlhttprequest', 'https://api-iam.intercom.io/messenger/web/metrics'],
];

/** The busy page's entries, in page order, with a class each: allowed, refused, unknown. */
export function busyEntries() {
  const vendors = hostVendors('busy');
  const out = resources('busy').map((r) => ({
    initiator: INITIATOR[r.type], url: r.url, cls: vendors.has(r.host) ? 'allowed' : 'unknown',
  }));
  // Intercom's loader runs early in the page's head: its entries among the first.
  out.splice(20, 0, ...INTERCOM.map(([initiator, url]) => ({ initiator, url, cls: 'refused' })));
  return out.map((e, i) => ({ ...e, start: 40 + i * 7 }));
}
