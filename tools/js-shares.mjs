// Where the brain's JavaScript bytes are: each named function of the
// shipped brain (dist/tagwatch_bg.js) with its body emptied in turn, the
// whole bundle minified again as tools/bundle.mjs minifies it, and what the
// file's gzip -9 loses printed — what that function and whatever only it
// uses weigh on every page view. A function inside another is counted in
// both. The bundle's source is read from its name map
// (target/symbols/tagwatch_bg.js.map, written by tools/bundle.mjs with the
// sources inside), so this measures exactly what was shipped; the
// unchanged source minified here must come out byte for byte as
// dist/tagwatch_bg.js, or the options below drifted from bundle.mjs's and
// the tool stops. Shares under ≈ 10 bytes are gzip noise.
//
//   node tools/js-shares.mjs [--min BYTES]   (after ./build.sh build)
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, gzipSync } from 'node:zlib';
import * as acorn from 'acorn';
import { minify } from 'terser';
import { terserOptions } from './terser-options.mjs';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');
const min = Number(process.argv[process.argv.indexOf('--min') + 1] || 0) || 0;
const map = JSON.parse(readFileSync(resolve(ROOT, 'target/symbols/tagwatch_bg.js.map'), 'utf8'));
const src = map.sourcesContent[0];
const shipped = readFileSync(resolve(ROOT, 'dist/tagwatch_bg.js'), 'utf8');
const gz = (s) => gzipSync(Buffer.from(s), { level: constants.Z_BEST_COMPRESSION }).length;
// tools/bundle.mjs's options for the brain (a module, tools/terser-options.mjs),
// its preamble taken from the shipped file.
const PREAMBLE = shipped.slice(0, shipped.indexOf('*/') + 2);
const build = async (s) => (await minify(s, terserOptions(true, PREAMBLE))).code;

const whole = await build(src);
if (whole !== shipped) throw new Error('js-shares: the source minified here is not dist/tagwatch_bg.js (options drifted from tools/bundle.mjs?)');
const total = gz(whole);

// Named functions: declarations, named expressions, `name = function`,
// `name: function` and class methods.
const found = [];
const ast = acorn.parse(src, { ecmaVersion: 'latest', sourceType: 'module', locations: true });
(function visit(node, parent) {
  if (!node || typeof node.type !== 'string') return;
  const isFn = /^(FunctionDeclaration|FunctionExpression|ArrowFunctionExpression)$/.test(node.type);
  if (isFn && node.body.type === 'BlockStatement' && node.body.body.length) {
    const name = node.id?.name ??
      (parent?.type === 'VariableDeclarator' && parent.id.name) ??
      (parent?.type === 'Property' && (parent.key.name ?? parent.key.value)) ??
      (parent?.type === 'MethodDefinition' && parent.key.name) ??
      (parent?.type === 'AssignmentExpression' && parent.left.property?.name) ?? null;
    if (name) found.push({ name, line: node.loc.start.line, from: node.body.start, to: node.body.end });
  }
  for (const key of Object.keys(node)) {
    const v = node[key];
    if (Array.isArray(v)) v.forEach((c) => visit(c, node));
    else if (v && typeof v.type === 'string') visit(v, node);
  }
})(ast, null);

const rows = [];
for (const f of found) {
  const code = await build(src.slice(0, f.from) + '{}' + src.slice(f.to));
  rows.push({ ...f, raw: f.to - f.from, share: total - gz(code) });
}
rows.sort((a, b) => b.share - a.share);
console.log(`dist/tagwatch_bg.js: ${whole.length} bytes minified, ${total} gzip -9; each function's body emptied:`);
console.log('  gz share  src bytes  line  function');
for (const r of rows) {
  if (r.share < min) continue;
  console.log(`${String(r.share).padStart(10)}${String(r.raw).padStart(11)}${String(r.line).padStart(6)}  ${r.name}`);
}
