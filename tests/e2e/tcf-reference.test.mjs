// Side by side: `tagwatch tcf` (the native decoder in core/src/tcf.rs) against
// the IAB reference decoder @iabtechlabtcf/core, on the corpus
// tests/fixtures/tcf/strings.txt (real strings from public code and strings
// encoded by the reference itself, see tests/fixtures/tcf/README.md).
// Every field must agree for every string. The malformed list
// tests/fixtures/tcf/malformed.txt must give one {"error":…} a line, exit 0.
//
// Needs the release binary: cargo build --release -p tagwatch
// (or TAGWATCH_BIN=path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TCString } from '@iabtechlabtcf/core';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.TAGWATCH_BIN || join(ROOT, 'target/release/tagwatch');
const FIXTURES = join(ROOT, 'tests/fixtures/tcf');

function lines(file) {
  return readFileSync(join(FIXTURES, file), 'utf8').split('\n').map((l) => l.trim()).filter(Boolean);
}

function tagwatchTcf(input) {
  assert.ok(
    existsSync(BIN),
    `${BIN} is missing: build it with \`cargo build --release -p tagwatch\` (or set TAGWATCH_BIN)`,
  );
  const run = spawnSync(BIN, ['tcf'], { input: input.join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(run.error, undefined, `cannot run ${BIN}: ${run.error}`);
  assert.equal(run.status, 0, `tagwatch tcf exited ${run.status}: ${run.stderr}`);
  const out = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(out.length, input.length, 'one output line per input line');
  return out;
}

const ids = (vector) => [...vector.values()].sort((a, b) => a - b);

/** The reference decoding, in the CLI's field names and shapes. */
function reference(s) {
  const m = TCString.decode(s);
  const segments = new Set(s.split('.').slice(1).map((seg) => '0123'.charAt(
    'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_'.indexOf(seg[0]) >> 3)));
  const restrictions = new Map();
  for (const r of m.publisherRestrictions.getRestrictions()) {
    restrictions.set(`${r.purposeId}-${r.restrictionType}`, {
      purposeId: r.purposeId,
      restrictionType: r.restrictionType,
      vendors: m.publisherRestrictions.getVendors(r),
    });
  }
  const out = {
    version: m.version,
    created: m.created.toISOString(),
    lastUpdated: m.lastUpdated.toISOString(),
    cmpId: m.cmpId,
    cmpVersion: m.cmpVersion,
    consentScreen: m.consentScreen,
    consentLanguage: m.consentLanguage,
    vendorListVersion: m.vendorListVersion,
    tcfPolicyVersion: m.policyVersion,
    isServiceSpecific: m.isServiceSpecific,
    useNonStandardTexts: m.useNonStandardTexts,
    specialFeatureOptins: ids(m.specialFeatureOptins),
    purposeConsents: ids(m.purposeConsents),
    purposeLegitimateInterests: ids(m.purposeLegitimateInterests),
    purposeOneTreatment: m.purposeOneTreatment,
    publisherCC: m.publisherCountryCode,
    vendorConsents: ids(m.vendorConsents),
    vendorLegitimateInterests: ids(m.vendorLegitimateInterests),
    publisherRestrictions: [...restrictions.values()]
      .sort((a, b) => a.purposeId - b.purposeId || a.restrictionType - b.restrictionType)
      .map((r) => ({ ...r, vendors: [...r.vendors].sort((a, b) => a - b) })),
  };
  if (segments.has('1')) out.vendorsDisclosed = ids(m.vendorsDisclosed);
  if (segments.has('2')) out.vendorsAllowed = ids(m.vendorsAllowed);
  if (segments.has('3')) {
    out.publisherConsents = ids(m.publisherConsents);
    out.publisherLegitimateInterests = ids(m.publisherLegitimateInterests);
    out.numCustomPurposes = m.numCustomPurposes;
    out.publisherCustomConsents = ids(m.publisherCustomConsents);
    out.publisherCustomLegitimateInterests = ids(m.publisherCustomLegitimateInterests);
  }
  return out;
}

test('tagwatch tcf agrees with @iabtechlabtcf/core on every corpus string', () => {
  const corpus = lines('strings.txt');
  assert.ok(corpus.length >= 30, `corpus has ${corpus.length} strings, want at least 30`);
  const ours = tagwatchTcf(corpus);
  corpus.forEach((s, i) => {
    const got = ours[i];
    assert.equal(got.error, undefined, `line ${i + 1} ${s}: tagwatch says ${got.error}`);
    const want = reference(s);
    // Field by field, so a failure names the field.
    for (const key of new Set([...Object.keys(want), ...Object.keys(got)])) {
      assert.deepEqual(got[key], want[key], `line ${i + 1} ${s.slice(0, 60)}…: field ${key}`);
    }
  });
});

test('the corpus covers the encodings and segments it claims', () => {
  const decoded = lines('strings.txt').map((s) => ({ s, m: reference(s) }));
  const has = (f) => decoded.some(f);
  assert.ok(has(({ m }) => m.vendorsDisclosed?.length), 'a disclosed vendors segment');
  assert.ok(has(({ m }) => m.vendorsAllowed?.length), 'an allowed vendors segment');
  assert.ok(has(({ m }) => m.publisherCustomConsents?.length), 'a publisher TC segment with custom purposes');
  assert.ok(has(({ m }) => m.publisherRestrictions.length), 'publisher restrictions');
  assert.ok(has(({ m }) => m.vendorConsents.includes(65535)), 'vendor id 65535');
  assert.ok(has(({ m }) => m.specialFeatureOptins.length), 'special features');
  assert.ok(has(({ m }) => !m.isServiceSpecific), 'a global-scope string');
  assert.ok(has(({ m }) => m.vendorLegitimateInterests.length && !m.vendorConsents.length), 'LI only');
});

test('every malformed line gives {"error":…} and the process exits 0', () => {
  const bad = lines('malformed.txt');
  const out = tagwatchTcf(bad);
  out.forEach((o, i) => {
    assert.deepEqual(Object.keys(o), ['error'], `line ${i + 1} ${bad[i]}: ${JSON.stringify(o).slice(0, 200)}`);
    assert.equal(typeof o.error, 'string');
    assert.ok(o.error.length > 0);
  });
});
