// The page-URL redaction contract (tests/fixtures/url/page-url.json) for the
// loader's JavaScript twin of the core's `page_url` (www/url.js): the health
// report the loader sends when the wasm cannot run carries this URL. The
// core is held to the same file by core/tests/url.rs. No browser needed.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runInNewContext } from 'node:vm';
import { REPO_ROOT } from '../fixtures/fake-intercom/server.mjs';

const VECTORS = JSON.parse(readFileSync(join(REPO_ROOT, 'tests/fixtures/url/page-url.json'), 'utf8'));
const pageUrl = runInNewContext(`${readFileSync(join(REPO_ROOT, 'www/url.js'), 'utf8')}\npageUrl;`);

test('www/url.js pageUrl gives the core page_url output for every shared vector', () => {
  assert.ok(VECTORS.cases.length >= 40, 'the vector file lost its cases');
  const wrong = [];
  for (const { in: input, out: want } of VECTORS.cases) {
    let got;
    try { got = pageUrl(input); } catch (e) { got = `threw ${e}`; }
    if (got !== want) wrong.push(`  pageUrl(${JSON.stringify(input)})\n    got  ${JSON.stringify(got)}\n    want ${JSON.stringify(want)}`);
  }
  assert.equal(wrong.length, 0,
    'www/url.js (pageUrl) disagrees with tests/fixtures/url/page-url.json, the contract the core\'s page_url '
    + 'is held to as well (core/tests/url.rs). Fix www/url.js; change a case only together with core/src/url.rs:\n'
    + wrong.join('\n'));
});

test('pageUrl never throws, whatever it is given', () => {
  for (const v of [undefined, null, 42, {}, [], '\ud800', 'https://x.example/\udc00\ud800', `https://x.example/${'\ud83d'.repeat(300)}`]) {
    assert.equal(typeof pageUrl(v), 'string', `pageUrl(${String(v)})`);
  }
});
