// Runs the core-alone wasm (bench/core-wasm) under Node.
//   node run.mjs scenario FILE.wasm [CMP.wasm GPP.wasm]
//       one page view through every entry point; prints the batches. A
//       module built without `parsers` gets the CMP cookie and GPP answers
//       from the on-demand pieces (pieces/), as the page will.
//   node run.mjs first-use FILE.wasm  ms of the catalog's first use, then of a second lookup
// Each first-use run should be a fresh process: V8 shares compiled code
// between modules of the same bytes within one process.
import { readFileSync } from 'node:fs';

const [mode, file, cmpPiece, gppPiece] = process.argv.slice(2);
const bytes = readFileSync(file);
let clock = 0;
let exports;
const present = new Set(['g:Intercom.booted', 'd:intercom-frame', 'g:intercomSettings', 'g:Intercom', 'l:_intercom_npm_loader']);
const text = (ptr, len) => Buffer.from(exports.memory.buffer, ptr, len).toString('utf8');
const host = {
  has: (kind, ptr, len) => (present.has('gdl'[kind] + ':' + text(ptr, len)) ? 1 : 0),
  now: () => clock,
};
const t0 = performance.now();
const module = new WebAssembly.Module(bytes);
const instance = new WebAssembly.Instance(module, { host });
const tInstance = performance.now() - t0;
exports = instance.exports;

/** Writes `strings` into the input buffer; returns their byte lengths. */
function put(...strings) {
  const view = new Uint8Array(exports.memory.buffer, exports.input(), 1 << 16);
  let at = 0;
  return strings.map((s) => {
    const { written } = new TextEncoder().encodeInto(s, view.subarray(at));
    at += written;
    return written;
  });
}
const out = (len) => text(exports.output(), len);

/** A piece: a plain module without imports (pieces/NAME/src/lib.rs). */
function piece(path) {
  const { exports } = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(path)), {});
  const write = (s) => {
    const bytes = new TextEncoder().encode(s);
    const at = exports.input(bytes.length); // may grow the memory: take its buffer after
    new Uint8Array(exports.memory.buffer, at, bytes.length).set(bytes);
    return bytes.length;
  };
  return { exports, write };
}
let cmpReader, gppReader;
/** The CMP cookie piece's answer for `header` (0 when the module reads cookies itself). */
function cmpBits(header) {
  if (exports.parsers()) return 0;
  if (!cmpReader) {
    cmpReader = piece(cmpPiece);
    cmpReader.exports.names(cmpReader.write(out(exports.consent_names())));
  }
  return cmpReader.exports.read(cmpReader.write(header)) >>> 0;
}
/** The GPP piece's answer (0 when the module decodes GPP itself). */
function gppBits(gpp, ids) {
  if (exports.parsers()) return 0;
  gppReader ??= piece(gppPiece);
  const sections = ids.reduce((m, id) => (id >= 0 && id < 32 ? m | (1 << id) : m), 0);
  return gppReader.exports.categories(gppReader.write(gpp), sections) >>> 0;
}
const sweep = (header) => exports.sweep(...put(header), cmpBits(header));

if (mode === 'first-use') {
  const [host1] = put('widget.intercom.io');
  let t = performance.now();
  const first = exports.first_lookup(host1);
  const firstMs = performance.now() - t;
  const [host2] = put('www.google-analytics.com');
  t = performance.now();
  const second = exports.first_lookup(host2);
  const secondMs = performance.now() - t;
  if (!first || !second) throw new Error('lookup found no vendor');
  console.log(firstMs.toFixed(3), secondMs.toFixed(3), tInstance.toFixed(3));
} else if (mode === 'scenario') {
  exports.monitor(...put('https://shop.example/pricing?email=jane@example.com#top', 'https://collect.tagwatch.example/r', 'Mozilla/5.0 (bench)'));
  exports.policy(...put(JSON.stringify({ regions: ['eu'], pages: { intercom: ['/support/*'] }, vendors: { intercom: { messenger: 'functional' } }, grace_ms: 1000, cookie_max_days: 30, cmp: { onetrust: { C0005: 'functional' } }, tcf_vendors: { criteo: 91 } })));
  const entries = [
    ['https://widget.intercom.io/widget/abc12345?x=1', 'script', 'top', 120],
    ['https://js.intercomcdn.com/frame-modern.c6941a28.js', 'script', '#intercom-frame', 200],
    ['https://api-iam.intercom.io/messenger/web/ping', 'xmlhttprequest', '#intercom-frame', 340.5],
    ['https://www.googletagmanager.com/gtag/js?id=G-1', 'script', 'top', 50],
    ['https://region1.google-analytics.com/g/collect?v=2&gcs=G111&cid=1', 'fetch', 'top', 400],
    ['https://cdn.unknown-widget.example/w.js?k=1', 'script', 'top', 150],
    ['https://static.shop.example/app.js', 'script', 'top', 160],
    ['https://collect.tagwatch.example/r', 'beacon', 'top', 170],
  ];
  for (const [url, initiator, frame, start] of entries) {
    exports.request(...put(url, initiator, frame), start, 4100, 3800, 42.5);
  }
  // What is in force after each step that a piece answers for: the
  // consent now (`1`/`0`/`-` per category, then the source).
  const now = (step) => console.log(step, out(exports.consent_now()));
  clock = 450;
  exports.consent_mode(...put('default', 'ad_storage\tdenied\nanalytics_storage\tgranted\nwait_for_update\t500'), 300);
  // OneTrust restored from storage (counts from 0): analytics and marketing granted.
  sweep('intercom-id-abc12345=6f1c2e3d; theme=dark; _ga=GA1.1.1.1; OptanonAlertBoxClosed=2024-01-01; OptanonConsent=isGpcEnabled=0&groups=C0001%3A1%2CC0002%3A1%2CC0004%3A1');
  now('onetrust cookie');
  exports.cookie_expiry(...put('intercom-id-abc12345'), 1.7e12 + 270 * 86_400_000, 1.7e12);
  exports.api_call(...put('intercom', 'update'));
  clock = 600;
  exports.tcf(1, ...put('useractioncomplete', '1111111111', '755,91'), 600);
  exports.request(...put('https://connect.facebook.net/en_US/fbevents.js', 'script', 'top'), 605, 0, 0, 1);
  // usnat, GPC set: marketing refused.
  clock = 610;
  exports.gpp(...put('DBABL~BVQqAAAAAa.Y', '7'), 610, gppBits('DBABL~BVQqAAAAAa.Y', [7]));
  now('gpp');
  exports.request(...put('https://www.facebook.com/tr?id=1&ev=PageView', 'img', 'top'), 615, 0, 0, 1);
  // Cookiebot's live state, then its cookie (and Didomi's) re-read.
  clock = 620;
  const jar = 'CookieConsent=%7Bstamp%3A%27x%27%2Cnecessary%3Atrue%2Cpreferences%3Atrue%2Cstatistics%3Afalse%2Cmarketing%3Atrue%2Cmethod%3A%27explicit%27%7D; didomi_token=eyJwdXJwb3NlcyI6eyJlbmFibGVkIjpbImNvb2tpZXMiXX19';
  exports.cmp(...put('cookiebot', 'necessary:1,preferences:1,statistics:0,marketing:1', jar), 1, 620, cmpBits(jar));
  now('cookiebot');
  exports.consent(-1, 1, 1, 1, 700);
  clock = 1500;
  now('api');
  console.log(out(exports.take_batch()));
  exports.consent(-1, 0, 0, 0, 2000);
  clock = 3600;
  exports.request(...put('https://api-iam.intercom.io/messenger/web/events', 'fetch', '#intercom-frame'), 3500, 0, 0, 1);
  // OneTrust again, with the site's meaning of C0005 (functional, not
  // marketing): functional granted, analytics refused.
  sweep('intercom-id-abc12345=6f1c2e3d; _ga=GA1.1.1.1; OptanonAlertBoxClosed=2024-01-01; OptanonConsent=isGpcEnabled=0&groups=C0001%3A1%2CC0002%3A0%2CC0005%3A1');
  now('onetrust cookie, site names');
  clock = 9000;
  sweep('intercom-id-abc12345=6f1c2e3d');
  now('end');
  console.log(out(exports.take_batch()));
  console.log(out(exports.findings()));
} else {
  console.error('usage: node run.mjs scenario|first-use FILE.wasm');
  process.exit(2);
}
