// Makes the snippet's two scripts from www/ and wasm-bindgen's glue:
//
//   dist/tagwatch.js     the loader: www/host.js + www/loader.js in one
//                        strict function scope inside one `try` (one
//                        global: `tagwatch`), the catalog's watched vendor
//                        APIs filled in. The only file on the page's
//                        critical path.
//   dist/tagwatch_bg.js  the brain, an ES module the loader imports after
//                        `load`: the glue + www/consent.js +
//                        www/observe.js + www/brain.js, exporting `start`.
//   dist/ondemand/cmp-api.js  on demand: www/cmp-api.js (the adapters of
//                        the CMPs' own APIs), exporting `cmpReaders`; the
//                        brain imports it when one of those CMPs shows.
//
// Both minified with terser. The vendor APIs come from the compiled catalog
// through the CLI (`tagwatch catalog show ID --json`), so the loader and
// the engine never disagree.
//
//   node tools/bundle.mjs [--glue target/wasm-bindgen/min.js] [--cli target/release/tagwatch] [--out dist]
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { minify } from 'terser';
import { terserOptions } from './terser-options.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const args = { glue: 'target/wasm-bindgen/min.js', cli: 'target/release/tagwatch', out: 'dist' };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (!(k in args) || process.argv[i + 1] === undefined) {
    console.error('usage: node tools/bundle.mjs [--glue F] [--cli F] [--out DIR]');
    process.exit(2);
  }
  args[k] = process.argv[i + 1];
}
const at = (p) => resolve(ROOT, p);
const read = (p) => readFileSync(at(p), 'utf8');

// [vendor, global, verbs] for each catalog vendor whose identity calls are watched.
const cli = (...a) => execFileSync(at(args.cli), ['catalog', ...a], { encoding: 'utf8' });
const watched = cli('list', '--json').trim().split('\n')
  .map((line) => JSON.parse(cli('show', JSON.parse(line).id, '--json')))
  .filter((v) => v.identity && v.identity.verbs.length);
const apis = watched.map((v) => [v.id, v.identity.api, v.identity.verbs]);

// `file`'s source with its `placeholder` replaced by `value` as JSON; a
// source without it is a build error, not a monitor without its data.
function fill(file, placeholder, value) {
  const src = read(file);
  if (!src.includes(placeholder)) throw new Error(`bundle: ${file} has no ${placeholder}`);
  return src.replace(placeholder, JSON.stringify(value));
}

// V8's explicit compile hint (Chromium 136+; a comment elsewhere): every
// function of the file is compiled with the script, off the main thread
// while it streams in, instead of on the main thread at its first call.
// The loader's and the brain's functions nearly all run in every page view;
// measured (docs/benchmarks.md, "compile hints"): the loader's top-level run
// 6-7 ms -> 2 ms, the brain's JS 11 -> 4.5 ms. It must come first.
const COMPILE_HINT = '//# allFunctionsCalledOnLoad';
// The brain's and the pieces' banner. The loader has none: its ~40 bytes
// of gzip (of a 3,072-byte budget) take Global Privacy Control and
// `Date.now` at parse time instead (docs/hostile-pages.md); its URL and its
// `tagwatch` command queue name it.
const BANNER = '/*! tagwatch - consent-compliance monitor */';
const options = (module, banner) => terserOptions(module, banner ? COMPILE_HINT + '\n' + BANNER : COMPILE_HINT);

const loaderSrc = '(function () {\n"use strict";\ntry {\n' + read('www/host.js') +
  fill('www/loader.js', '/* APIS */[]', apis) + "} catch (e) { /* never the page's problem */ }\n})();\n";
// The brain's warm-up sample (www/brain.js `WARM`): the first watched API's
// vendor and verb, one of its hosts and one of its cookie names.
const [warm] = watched;
const warmSample = [warm.id, warm.identity.verbs[0], warm.domains[0], warm.cookies[0].name];
const brainSrc = [brainGlue(read(args.glue)), read('www/consent.js'), read('www/observe.js'),
  fill('www/brain.js', '/* WARM */[]', warmSample)].join('\n');

/**
 * wasm-bindgen's no-modules glue as the brain needs it: the brain gets a
 * compiled module from the loader, so the glue's own ways to find, fetch
 * and compile one (`document.currentScript`, URLs, `Response`s, streaming)
 * are replaced by `wasm_bindgen(module, sync)`: the imports, instantiation
 * (at once when `sync`) and the glue's own finishing step, unchanged.
 */
function brainGlue(glue) {
  const cut = (text, from, to, what) => {
    const a = text.indexOf(from);
    const b = text.indexOf(to, a);
    if (a < 0 || b < 0) throw new Error(`bundle: wasm-bindgen glue layout not recognised (${what})`);
    return [text.slice(0, a), text.slice(b + to.length)];
  };
  let [head, tail] = cut(glue, '    let script_src;\n', '\n    }\n', 'script_src');
  glue = head + tail;
  [head, tail] = cut(glue, '    async function __wbg_load(', '    return Object.assign(__wbg_init, { initSync }, exports);', 'init');
  if (!head.includes('function __wbg_get_imports()') || !head.includes('function __wbg_finalize_init(')) {
    throw new Error('bundle: wasm-bindgen glue layout not recognised (imports, finalize)');
  }
  return head + `    function __wbg_start(module, sync) {
        const imports = __wbg_get_imports();
        if (sync) return __wbg_finalize_init(new WebAssembly.Instance(module, imports), module);
        return WebAssembly.instantiate(module, imports).then((instance) => __wbg_finalize_init(instance, module));
    }
    return Object.assign(__wbg_start, exports);` + tail;
}

// Name maps for the profiler (tools/cpu-profile.mjs) go to target/symbols/,
// never beside the shipped files (no `sourceMappingURL` in them either).
const SYMBOLS = join(ROOT, 'target/symbols');
mkdirSync(SYMBOLS, { recursive: true });
// On demand (dist/ondemand/, fetched only by pages that need it): the
// adapters of the CMPs' own APIs, imported by the brain when one shows.
const cmpApiSrc = read('www/cmp-api.js') + '\nexport { cmpReaders };\n';
mkdirSync(join(at(args.out), 'ondemand'), { recursive: true });
// [file, source, module (and banner)]
const out = [['tagwatch.js', loaderSrc, false], ['tagwatch_bg.js', brainSrc, true], ['ondemand/cmp-api.js', cmpApiSrc, true]];
for (const [name, src, module] of out) {
  const base = name.replace(/^.*\//, '');
  const { code, map } = await minify({ [base.replace(/\.js$/, '.src.js')]: src },
    { ...options(module, module), sourceMap: { includeSources: true, filename: base } });
  writeFileSync(join(at(args.out), name), code);
  writeFileSync(join(SYMBOLS, `${base}.map`), map);
}
console.error(`bundle: ${args.out}/tagwatch.js (loader), ${args.out}/tagwatch_bg.js (brain); watched APIs ${JSON.stringify(apis)}`);
