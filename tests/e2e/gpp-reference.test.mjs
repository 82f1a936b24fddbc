// Side by side: `tagwatch gpp` (the native decoder in core/src/gpp.rs, the
// one the monitor runs) against the IAB reference library @iabgpp/cmpapi, on
// the corpus tests/fixtures/gpp/cases.jsonl plus strings encoded by the
// reference itself from seeded random field values (US national, California,
// Virginia, Colorado, Utah, Connecticut, TCF EU, several sections at once). Section ids and every decoded field of
// usnat, usca and tcfeuv2 must agree.
//
// Needs the release binary: cargo build --release -p tagwatch
// (or TAGWATCH_BIN=path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { GppModel } from '@iabgpp/cmpapi';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../..');
const BIN = process.env.TAGWATCH_BIN || join(ROOT, 'target/release/tagwatch');

function tagwatchGpp(input) {
  assert.ok(existsSync(BIN), `${BIN} is missing: build it with \`cargo build --release -p tagwatch\``);
  const run = spawnSync(BIN, ['gpp'], { input: input.join('\n') + '\n', encoding: 'utf8', maxBuffer: 64 << 20 });
  assert.equal(run.error, undefined, `cannot run ${BIN}: ${run.error}`);
  assert.equal(run.status, 0, `tagwatch gpp exited ${run.status}: ${run.stderr}`);
  const out = run.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
  assert.equal(out.length, input.length, 'one output line per input line');
  return out;
}

// A small seeded generator, so a failure names a string that can be replayed.
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => { x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0; return x % n; };
}

const US_FIELDS = {
  usnat: {
    two: ['SharingNotice', 'SaleOptOutNotice', 'SharingOptOutNotice', 'TargetedAdvertisingOptOutNotice',
      'SensitiveDataProcessingOptOutNotice', 'SensitiveDataLimitUseNotice', 'SaleOptOut', 'SharingOptOut',
      'TargetedAdvertisingOptOut', 'PersonalDataConsents', 'MspaCoveredTransaction', 'MspaOptOutOptionMode',
      'MspaServiceProviderMode'],
    lists: { SensitiveDataProcessing: 16, KnownChildSensitiveDataConsents: 3 },
  },
  usca: {
    two: ['SaleOptOutNotice', 'SharingOptOutNotice', 'SensitiveDataLimitUseNotice', 'SaleOptOut', 'SharingOptOut',
      'PersonalDataConsents', 'MspaCoveredTransaction', 'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    lists: { SensitiveDataProcessing: 9, KnownChildSensitiveDataConsents: 2 },
  },
  usva: {
    two: ['SharingNotice', 'SaleOptOutNotice', 'TargetedAdvertisingOptOutNotice', 'SaleOptOut',
      'TargetedAdvertisingOptOut', 'KnownChildSensitiveDataConsents', 'MspaCoveredTransaction',
      'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    lists: { SensitiveDataProcessing: 8 },
    noGpc: true,
  },
  usco: {
    two: ['SharingNotice', 'SaleOptOutNotice', 'TargetedAdvertisingOptOutNotice', 'SaleOptOut',
      'TargetedAdvertisingOptOut', 'KnownChildSensitiveDataConsents', 'MspaCoveredTransaction',
      'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    lists: { SensitiveDataProcessing: 7 },
  },
  usut: {
    two: ['SharingNotice', 'SaleOptOutNotice', 'TargetedAdvertisingOptOutNotice', 'SensitiveDataProcessingOptOutNotice',
      'SaleOptOut', 'TargetedAdvertisingOptOut', 'KnownChildSensitiveDataConsents', 'MspaCoveredTransaction',
      'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    lists: { SensitiveDataProcessing: 8 },
    noGpc: true,
  },
  usct: {
    two: ['SharingNotice', 'SaleOptOutNotice', 'TargetedAdvertisingOptOutNotice', 'SaleOptOut',
      'TargetedAdvertisingOptOut', 'MspaCoveredTransaction', 'MspaOptOutOptionMode', 'MspaServiceProviderMode'],
    lists: { SensitiveDataProcessing: 8, KnownChildSensitiveDataConsents: 3 },
  },
};

function generated(count) {
  const out = [];
  for (let seed = 1; out.length < count; seed++) {
    const r = rng(seed * 2654435761);
    const m = new GppModel();
    const apis = [['usnat'], ['usca'], ['usnat', 'usca'], ['tcfeuv2', 'usnat'], ['usva'], ['usco'], ['usut'], ['usct'],
      ['usnat', 'usva', 'usco', 'usut', 'usct']][r(9)];
    for (const api of apis) {
      if (api === 'tcfeuv2') {
        m.setFieldValue(api, 'CmpId', 1 + r(4000));
        m.setFieldValue(api, 'VendorListVersion', r(300));
        m.setFieldValue(api, 'PurposeConsents', Array.from({ length: 24 }, () => r(2) === 1));
        m.setFieldValue(api, 'VendorConsents', Array.from({ length: r(6) }, () => 1 + r(900)));
        continue;
      }
      const f = US_FIELDS[api];
      // Some fields refuse 0 (MSPA covered transaction is 1 or 2): fall back to 1.
      for (const name of f.two) { const v = r(3); try { m.setFieldValue(api, name, v); } catch { m.setFieldValue(api, name, 1); } }
      for (const [name, n] of Object.entries(f.lists)) m.setFieldValue(api, name, Array.from({ length: n }, () => r(3)));
      if (!f.noGpc && r(2)) { m.setFieldValue(api, 'GpcSegmentIncluded', true); m.setFieldValue(api, 'Gpc', r(2) === 1); }
    }
    out.push(m.encode());
  }
  return out;
}

const corpus = readFileSync(join(ROOT, 'tests/fixtures/gpp/cases.jsonl'), 'utf8')
  .split('\n').filter(Boolean).map((l) => JSON.parse(l).gpp);

const ids = (bools) => bools.map((b, i) => (b ? i + 1 : 0)).filter(Boolean);

/** Our section in the reference's shape, for the fields both decode. */
function compareSection(api, ours, ref, label) {
  if (api === 'tcfeuv2') {
    assert.equal(ours.cmpId, ref.CmpId, `${label}: CmpId`);
    assert.equal(ours.vendorListVersion, ref.VendorListVersion, `${label}: VendorListVersion`);
    assert.deepEqual(ours.purposeConsents, ids(ref.PurposeConsents), `${label}: PurposeConsents`);
    assert.deepEqual(ours.vendorConsents, [...ref.VendorConsents].sort((a, b) => a - b), `${label}: VendorConsents`);
    return;
  }
  for (const [k, v] of Object.entries(ref)) {
    if (k === 'GpcSegmentType' || k === 'GpcSegmentIncluded') continue;
    // Without a GPC sub-section ours omits Gpc; the reference reads false.
    if (k === 'Gpc') { assert.equal(ours.Gpc ?? false, v, `${label}: ${api}.Gpc`); continue; }
    assert.deepEqual(ours[k], v, `${label}: ${api}.${k}`);
  }
}

test('tagwatch gpp agrees with @iabgpp/cmpapi on the corpus and on reference-encoded strings', () => {
  const strings = [...corpus, ...generated(90)];
  const ours = tagwatchGpp(strings);
  let compared = 0;
  strings.forEach((s, i) => {
    const ref = new GppModel(s);
    const label = `#${i} ${s}`;
    assert.equal(ours[i].error, undefined, `${label}: ${ours[i].error}`);
    assert.deepEqual(ours[i].sectionIds, ref.getSectionIds(), `${label}: section ids`);
    for (const section of ours[i].sections) {
      if (section.api === 'other') continue;
      compareSection(section.api, section, ref.getSection(section.api), label);
      compared++;
    }
  });
  assert.ok(compared >= 120, `only ${compared} sections compared`);
});

test('strings the reference rejects are errors in ours too, never a crash', () => {
  const bad = ['DBABM', 'DBABL~', 'D', 'XYZ~~~', 'DBABL~B', 'DBABMA~!!'];
  for (const b of bad) assert.throws(() => new GppModel(b).getSectionIds() && new GppModel(b).toObject(), `reference accepts ${b}`);
  tagwatchGpp(bad).forEach((o, i) => assert.ok(o.error, `${bad[i]} should be an error: ${JSON.stringify(o)}`));
});
