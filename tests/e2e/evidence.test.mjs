// Scenario (issue 15): a tag loads before consent on the demo shop (real
// Chromium, the shipped monitor, the real collector on SQLite); the finding
// is stored and chained; `tagwatch evidence` bundles that one finding,
// signed with a key from `tagwatch keys init`; `tagwatch verify` passes.
// One flipped byte of the bundle fails verification with a message; one
// finding row edited in the database (sqlite3) fails `verify --db`, and so
// does one vendor row of the page view's inventory (chained with it).
// The same on ClickHouse (`serve --events`, when TAGWATCH_TEST_CLICKHOUSE
// names a test server, as ./build.sh test does): the finding's row
// versions are chained in the SQLite control plane, the bundle from
// `evidence --events` verifies offline, a flipped byte fails, and a row
// edited in ClickHouse (ALTER UPDATE) fails `verify --db … --events …`.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { TAGWATCH_BIN, openDemo, pollFindings, startStack } from './harness.mjs';

const run = promisify(execFile);

/** Runs the collector binary; answers { code, out } (stdout + stderr). */
async function tagwatch(args) {
  try {
    const r = await run(TAGWATCH_BIN, args, { timeout: 60000 });
    return { code: 0, out: r.stdout + r.stderr };
  } catch (e) {
    return { code: e.code, out: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

async function sqlite(db, sql) {
  const { stdout } = await run('sqlite3', [db.replace(/^sqlite:/, ''), sql], { timeout: 30000 });
  return stdout.trim();
}

let stack;
let dir;
before(async () => {
  stack = await startStack();
  dir = mkdtempSync(join(tmpdir(), 'tagwatch-e2e-evidence-'));
}, { timeout: 120_000 });
after(async () => {
  await stack?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
}, { timeout: 30_000 });

test('a tag before consent on the demo shop: its evidence bundle verifies; a flipped byte and an edited row are named', { timeout: 120_000 }, async () => {
  const site = stack.nextSite();
  const ctx = await openDemo(stack, site);
  try {
    await ctx.page.click('#tw-flush');
    await pollFindings(stack.collector, site, (f) => f.some((x) => x.type === 'script_before_consent'));
    assert.deepEqual(ctx.pageErrors, []);
  } finally {
    await ctx.context.close();
  }
  const db = stack.collector.db;
  const id = await sqlite(db, `SELECT id FROM findings WHERE site_id = (SELECT id FROM names WHERE name = '${site}') AND type = 'script_before_consent' ORDER BY id LIMIT 1`);
  assert.match(id, /^\d+$/, `a stored script_before_consent, got ${JSON.stringify(id)}`);

  const keys = join(dir, 'keys');
  const init = await tagwatch(['keys', 'init', '--dir', keys]);
  assert.equal(init.code, 0, init.out);
  const pub = readFileSync(join(keys, 'tagwatch-signing.pub'), 'utf8').trim();
  assert.match(init.out, new RegExp(pub));

  const bundle = join(dir, 'bundle.zip');
  const made = await tagwatch(['evidence', '--db', db, '--site', site, '--finding', id, '--out', bundle,
    '--signing-key', join(keys, 'tagwatch-signing.key')]);
  assert.equal(made.code, 0, made.out);
  assert.match(made.out, /1 findings of site/);

  const ok = await tagwatch(['verify', bundle, '--key', pub]);
  assert.equal(ok.code, 0, ok.out);
  assert.match(ok.out, /^verified$/m);
  // The page view's inventory came in the finding's batch: the bundle
  // carries it and proves it against the chain.
  assert.match(ok.out, /1 inventories and \d+ health reports of the findings' page views, checked against the chain/, ok.out);

  // One byte flipped in the middle of findings.json's stored (deflated)
  // data: its zip local header is where its name first occurs; the data
  // follows the name and the extra field. (The zip's own framing, e.g. an
  // entry's timestamp, is not evidence: docs/evidence.md.)
  const bytes = readFileSync(bundle);
  const name = bytes.indexOf('findings.json');
  const header = name - 30;
  assert.equal(bytes.readUInt32LE(header), 0x04034b50, 'a zip local file header');
  const dataStart = name + bytes.readUInt16LE(header + 26) + bytes.readUInt16LE(header + 28);
  bytes[dataStart + Math.floor(bytes.readUInt32LE(header + 18) / 2)] ^= 0x01;
  const flipped = join(dir, 'flipped.zip');
  writeFileSync(flipped, bytes);
  const bad = await tagwatch(['verify', flipped, '--key', pub]);
  assert.equal(bad.code, 1, bad.out);
  assert.match(bad.out, /FAILED: (file \S+ (was changed|cannot be read)|zip entry|not a readable zip|manifest)/, bad.out);

  // The live store verifies, then one finding row is edited behind the collector's back.
  const live = await tagwatch(['verify', '--db', db, '--site', site, '--key', pub]);
  assert.equal(live.code, 0, live.out);
  await sqlite(db, `UPDATE findings SET count = count + 1 WHERE id = ${id}`);
  const edited = await tagwatch(['verify', '--db', db, '--site', site, '--key', pub]);
  assert.equal(edited.code, 1, edited.out);
  assert.match(edited.out, new RegExp(`FAILED: finding ${id} of site ${site} was edited after it was stored`), edited.out);

  // One vendor row of the page view's inventory edited: named too.
  const inv = await sqlite(db, `SELECT i.id FROM inventories i JOIN findings f ON f.page_view = i.page_view AND f.site_id = i.site_id WHERE f.id = ${id}`);
  assert.match(inv, /^\d+$/, `the page view's inventory, got ${JSON.stringify(inv)}`);
  const changed = await sqlite(db, `UPDATE inventory_vendors SET requests = requests + 1 WHERE inventory = ${inv}; SELECT changes();`);
  assert.notEqual(changed, '0', 'the inventory has vendor rows');
  const vendorEdited = await tagwatch(['verify', '--db', db, '--site', site, '--key', pub]);
  assert.equal(vendorEdited.code, 1, vendorEdited.out);
  assert.match(vendorEdited.out, new RegExp(`FAILED: inventory ${inv} of site ${site} was edited after it was stored`), vendorEdited.out);
});

// ClickHouse (`--events`): a database of this run's own, dropped after.
const CH = process.env.TAGWATCH_TEST_CLICKHOUSE;

/** Runs one statement on the test ClickHouse server; answers its text. */
async function clickhouse(database, sql) {
  const url = new URL(CH.replace(/^clickhouse:/, 'http:'));
  const res = await fetch(`http://${url.host}/?database=${database}`, { method: 'POST', body: sql });
  const body = await res.text();
  assert.ok(res.ok, `${sql}: ${body}`);
  return body.trim();
}

/** Flips one byte in the middle of a file's stored data in a zip (as above). */
function flipIn(bundle, file, out) {
  const bytes = readFileSync(bundle);
  const name = bytes.indexOf(file);
  const header = name - 30;
  assert.equal(bytes.readUInt32LE(header), 0x04034b50, 'a zip local file header');
  const dataStart = name + bytes.readUInt16LE(header + 26) + bytes.readUInt16LE(header + 28);
  bytes[dataStart + Math.floor(bytes.readUInt32LE(header + 18) / 2)] ^= 0x01;
  writeFileSync(out, bytes);
}

test('the same on ClickHouse (--events): the bundle verifies with its page views, a flipped byte and rows edited in ClickHouse are named',
  { timeout: 240_000, skip: !CH && 'TAGWATCH_TEST_CLICKHOUSE is not set' }, async () => {
    const database = `tw_e2e_evidence_${process.pid}`;
    const events = CH.replace(/\/[^/?]*(?=\?|$)/, `/${database}`);
    const chStack = await startStack({ siteCount: 1, collectorArgs: ['--events', events] });
    try {
      const site = chStack.nextSite();
      const ctx = await openDemo(chStack, site);
      try {
        await ctx.page.click('#tw-flush');
        await pollFindings(chStack.collector, site, (f) => f.some((x) => x.type === 'script_before_consent'));
        assert.deepEqual(ctx.pageErrors, []);
      } finally {
        await ctx.context.close();
      }
      const db = chStack.collector.db;
      // The findings API reads ClickHouse, and a group's rows are there
      // before its SQL transaction chains them (docs/evidence.md, "Writing"):
      // a verify in between says `not proven` (exit 3) for them, and the
      // page's last batches (sent as its context closed) may still land. So
      // wait until two readings in a row, 300 ms apart, count the same rows
      // and verify them all; an edit (exit 1) fails at once.
      let rows; let health; let inventories; let live;
      for (let tries = 0, stable = 0, last = ''; ; tries++) {
        const count = async (table) => Number(await clickhouse(database, `SELECT count() FROM ${table} WHERE site = '${site}'`));
        [rows, health, inventories] = [await count('findings'), await count('health'), await count('inventories')];
        live = await tagwatch(['verify', '--db', db, '--events', events, '--site', site]);
        assert.notEqual(live.code, 1, live.out);
        const counts = `${rows} finding, ${health} health and ${inventories} inventory row versions in ClickHouse`;
        const settled = live.code === 0 && live.out.includes(counts);
        stable = settled && counts === last ? stable + 1 : 0;
        last = settled ? counts : '';
        if (stable === 1) break;
        assert.ok(tries < 100, `the rows never settled chained (30 s): ${live.out}`);
        await new Promise((r) => setTimeout(r, 300));
      }
      assert.ok(rows > 0, 'finding rows in ClickHouse');
      assert.ok(inventories > 0, 'inventory rows in ClickHouse');
      assert.match(live.out, /^verified$/m);

      const keys = join(dir, 'keys-ch');
      assert.equal((await tagwatch(['keys', 'init', '--dir', keys])).code, 0);
      const pub = readFileSync(join(keys, 'tagwatch-signing.pub'), 'utf8').trim();
      const bundle = join(dir, 'bundle-ch.zip');
      const made = await tagwatch(['evidence', '--db', db, '--events', events, '--site', site, '--out', bundle,
        '--signing-key', join(keys, 'tagwatch-signing.key')]);
      assert.equal(made.code, 0, made.out);
      assert.match(made.out, new RegExp(`${rows} findings of site`));
      const ok = await tagwatch(['verify', bundle, '--key', pub]);
      assert.equal(ok.code, 0, ok.out);
      assert.match(ok.out, /^verified$/m);
      // The page views' inventories (and health reports) are chained too.
      assert.match(ok.out, /[1-9]\d* inventories and \d+ health reports of the findings' page views, checked against the chain/);
      assert.doesNotMatch(ok.out, /not proven/);
      const flipped = join(dir, 'flipped-ch.zip');
      flipIn(bundle, 'findings.json', flipped);
      const bad = await tagwatch(['verify', flipped, '--key', pub]);
      assert.equal(bad.code, 1, bad.out);
      assert.match(bad.out, /FAILED: (file \S+ (was changed|cannot be read)|zip entry|not a readable zip|manifest)/, bad.out);

      // One row edited in ClickHouse behind the collector's back (a
      // mutation runs in the background: wait until it ran).
      await clickhouse(database, `ALTER TABLE findings UPDATE count = count + 1 WHERE site = '${site}' AND type = 'script_before_consent'`);
      for (;;) {
        const pending = await clickhouse(database, 'SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0');
        if (pending === '0') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const edited = await tagwatch(['verify', '--db', db, '--events', events, '--site', site]);
      assert.equal(edited.code, 1, edited.out);
      assert.match(edited.out, /FAILED: finding row \d+ \(token \d+, page view [0-9a-f]+, script_before_consent of \S+, at [^)]+\) of site \S+ was edited after it was stored/, edited.out);

      // One vendor's request count in an inventory's arrays: named too.
      await clickhouse(database, `ALTER TABLE inventories UPDATE v_requests = arrayMap(x -> x + 1, v_requests) WHERE site = '${site}' AND length(v_requests) > 0`);
      for (;;) {
        const pending = await clickhouse(database, 'SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0');
        if (pending === '0') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const vendorEdited = await tagwatch(['verify', '--db', db, '--events', events, '--site', site]);
      assert.equal(vendorEdited.code, 1, vendorEdited.out);
      assert.match(vendorEdited.out, /FAILED: inventory row \d+ \(token \d+, page view [0-9a-f]+, at [^)]+\) of site \S+ was edited after it was stored/, vendorEdited.out);
    } finally {
      await chStack.stop();
      const url = new URL(CH.replace(/^clickhouse:/, 'http:'));
      await fetch(`http://${url.host}/`, { method: 'POST', body: `DROP DATABASE IF EXISTS ${database}` }).catch(() => {});
    }
  });
