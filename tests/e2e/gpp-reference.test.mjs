// Side by side: `tagwatch gpp` (the native decoder in core/src/gpp.rs, the
// one the monitor runs) against the IAB reference library @iabgpp/cmpapi, on
// the corpus tests/fixtures/gpp/cases.jsonl plus strings encoded by the
// reference itself from seeded random field values (US national, California,
// Virginia, Colorado, Utah, Connecticut, TCF EU, several sections at once),
// and reference-encoded strings reshaped the way CMPs on real sites write
// them (US National version 1 core segments padded beyond their 66 bits, as
// OneTrust writes them; GPC sub-sections of any GpcSegmentType; a third
// segment; several US sections each with its GPC sub-section). Section ids
// and every field the reference decodes (GpcSegmentType and Gpc included)
// must agree.
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

// Base64url of `bits` (a string of 0/1), padded with zeros to whole characters.
function b64(bits) {
  const dict = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  while (bits.length % 6) bits += '0';
  let out = '';
  for (let i = 0; i < bits.length; i += 6) out += dict[parseInt(bits.slice(i, i + 6), 2)];
  return out;
}

/** Reference-encoded strings in the shapes of real sites' CMPs. */
function reshaped(count) {
  const out = [];
  const dict = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
  for (let seed = 1; out.length < count; seed++) {
    const r = rng(seed * 40503);
    const m = new GppModel();
    const apis = [['usnat'], ['usnat', 'usca'], ['usnat', 'usca', 'usco', 'usct'], ['usca', 'usva', 'usco']][r(4)];
    for (const api of apis) {
      const f = US_FIELDS[api];
      if (api === 'usnat' && r(3)) m.setFieldValue(api, 'Version', 1);
      for (const name of f.two) { const v = r(3); try { m.setFieldValue(api, name, v); } catch { m.setFieldValue(api, name, 1); } }
      for (const [name, n] of Object.entries(f.lists)) m.setFieldValue(api, name, Array.from({ length: n }, () => r(3)));
      if (!f.noGpc) m.setFieldValue(api, 'GpcSegmentIncluded', r(3) > 0);
    }
    const [header, ...sections] = m.encode().split('~');
    const shaped = sections.map((section) => {
      const [core, ...rest] = section.split('.');
      // A core segment padded with 1 to 4 more characters (any bits).
      const padded = core + Array.from({ length: r(5) }, () => dict[r(64)]).join('');
      // A GPC sub-section of any type; now and then a segment after it.
      const gpc = rest.length ? [b64(r(4).toString(2).padStart(2, '0') + r(2))] : [];
      if (gpc.length && r(4) === 0) gpc.push(b64(r(8).toString(2).padStart(3, '0')));
      return [padded, ...gpc].join('.');
    });
    out.push([header, ...shaped].join('~'));
  }
  return out;
}

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
  for (const [k, v] of Object.entries(ref)) assert.deepEqual(ours[k], v, `${label}: ${api}.${k}`);
}

test('tagwatch gpp agrees with @iabgpp/cmpapi on the corpus and on reference-encoded strings', () => {
  const strings = [...corpus, ...generated(90), ...reshaped(60)];
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
      if ('GpcSegmentIncluded' in section) {
        assert.equal(section.GpcSegmentIncluded, ref.getFieldValue(section.api, 'GpcSegmentIncluded'), `${label}: ${section.api}.GpcSegmentIncluded`);
      }
      compared++;
    }
  });
  assert.ok(compared >= 200, `only ${compared} sections compared`);
});

test('US National version 1 segments padded beyond the layout are read at version 2 positions, as the reference does', () => {
  // Version 1 as the reference encodes it (66 bits), then padded by a CMP.
  const m = new GppModel();
  m.setFieldValue('usnat', 'Version', 1);
  m.setFieldValue('usnat', 'PersonalDataConsents', 2);
  m.setFieldValue('usnat', 'MspaCoveredTransaction', 2);
  m.setFieldValue('usnat', 'MspaOptOutOptionMode', 1);
  m.setFieldValue('usnat', 'MspaServiceProviderMode', 2);
  m.setFieldValue('usnat', 'GpcSegmentIncluded', false);
  const plain = m.encode();
  const padded = plain + 'gA';
  const [ours, oursPadded] = tagwatchGpp([plain, padded]);
  for (const [s, o] of [[plain, ours], [padded, oursPadded]]) {
    const ref = new GppModel(s).getSection('usnat');
    for (const k of ['KnownChildSensitiveDataConsents', 'PersonalDataConsents', 'MspaCoveredTransaction', 'MspaOptOutOptionMode', 'MspaServiceProviderMode']) {
      assert.deepEqual(o.sections[0][k], ref[k], `${s}: ${k}`);
    }
  }
  // The padding moved the fields: the two readings differ.
  assert.notDeepEqual(oursPadded.sections[0].KnownChildSensitiveDataConsents, ours.sections[0].KnownChildSensitiveDataConsents);
  assert.equal(ours.sections[0].PersonalDataConsents, 2);
});

test('strings the reference rejects are errors in ours too, never a crash', () => {
  const bad = ['DBABM', 'DBABL~', 'D', 'XYZ~~~', 'DBABL~B', 'DBABMA~!!'];
  for (const b of bad) assert.throws(() => new GppModel(b).getSectionIds() && new GppModel(b).toObject(), `reference accepts ${b}`);
  tagwatchGpp(bad).forEach((o, i) => assert.ok(o.error, `${bad[i]} should be an error: ${JSON.stringify(o)}`));
});
