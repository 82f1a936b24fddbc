// The policy's line form (core `Policy::from_lines`): the brain writes it
// from the page's `policy` object (www/brain.js, `lines`), so the page's
// wasm reads the policy without a JSON scanner. The golden pair
// tests/fixtures/policy/policy.{json,lines} holds the brain's writer here and the
// core in core/src/policy.rs (the lines read as the JSON does). No browser
// needed; the end-to-end tests with a policy (region, page-scope,
// cookie-lifetime, gpp-reference, …) run it in the page.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { REPO_ROOT } from '../fixtures/fake-intercom/server.mjs';

const source = readFileSync(join(REPO_ROOT, 'www/brain.js'), 'utf8');
const found = /\nfunction lines\(v, path, depth\) \{[\s\S]*?\n\}\nfunction flat\(v\) \{[^\n]*\}\n/.exec(source);
assert.ok(found, 'www/brain.js has no `lines` / `flat` pair any more: update this test with it');
const lines = new Function(`${found[0]}\nreturn lines;`)();
const fixture = (name) => readFileSync(join(REPO_ROOT, 'tests/fixtures/policy', name), 'utf8');

test('the brain writes the golden lines from the golden policy', () => {
  assert.equal(lines(JSON.parse(fixture('policy.json')), '', 0), fixture('policy.lines'));
});

test('no policy writes nothing; a hostile object is bounded', () => {
  for (const none of [undefined, null]) assert.equal(lines(none, '', 0), '', String(none));
  // A cycle stops at the depth bound, a long array at 1000 items.
  const cycle = { a: null };
  cycle.a = cycle;
  const text = lines({ cycle, list: new Array(5000).fill('x') }, '', 0);
  assert.equal(text.split('\n').filter((l) => l.startsWith('list\t\t')).length, 1000);
  assert.ok(text.split('\n').every((l) => l.split('\t').length <= 11), 'at most 10 levels of keys');
  // Only the writer's own separators: no TAB or line break from a key or a text.
  assert.equal(lines({ 'k\t\n': 'v\r\n\t' }, '', 0), 'k  \t"v   \n');
  // A getter that throws drops the whole policy (`policyLines` catches).
  assert.throws(() => lines({ get grace_ms() { throw new Error('no'); } }, '', 0));
});
