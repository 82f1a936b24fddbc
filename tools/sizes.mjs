// Sizes of what a site ships (dist/): raw, gzip -9 and brotli (quality 11,
// the maximum) per file, the total every page view downloads, the loader,
// and each on-demand piece on its own. Printed by `./build.sh bench`; the
// build calls it too (`node tools/sizes.mjs`); tests import measure().
//
// Which files every page view downloads is a naming rule, one place for it:
//   * every file under dist/ is downloaded on every page view (the loader,
//     dist/tagwatch.js, which the snippet names; the brain's JS and wasm),
//   * except dist/ondemand/: pieces fetched only on the pages that need them;
//     each file or directory directly under it is one piece (a directory's
//     files together),
//   * and except what is not served to pages: the browser extension
//     (dist/extension/, dist/*.zip) and name maps (*.map, *.symbols); and a
//     served file's precompressed twins (FILE.gz, FILE.br, written by
//     tools/precompress for servers that send them: README, "Serve
//     dist/"), which are that file in another encoding, not files of their
//     own. The budgets are measured with zlib's gzip -9 as before; the
//     "zopfli" column is the .gz twin a server sends instead.
//
//   node tools/sizes.mjs [--dist DIR] [--json] [--check] [--served]
//     --check   exit 1 when the loader or the every-page-view total is over budget
//     --served  print the served files' paths, one a line (what build.sh precompresses)
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const ROOT = resolve(fileURLToPath(import.meta.url), '../..');

/** Budgets (bytes, gzip -9), issue 11: the loader, and everything every page view downloads. */
export const BUDGET = { loaderGzip: 3 * 1024, everyPageViewGzip: 30 * 1024 };

/** The loader: the file the snippet names (docs: `<script async src=".../tagwatch.js">`). */
export const LOADER = 'tagwatch.js';
/** Pieces fetched only on the pages that need them. */
export const ONDEMAND_DIR = 'ondemand';
// Not served to pages: the extension and name maps.
const NOT_SERVED = [/^extension(\/|$)/, /\.zip$/, /\.map$/, /\.symbols$/, /\.(gz|br|tmp)$/];

function walk(dir) {
  return readdirSync(dir).sort().flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : [p];
  });
}

/** gzip -9 (zlib, no file name in the header) and brotli at quality 11, in bytes. */
export function compressed(bytes, { text = false } = {}) {
  return {
    raw: bytes.length,
    gzip: gzipSync(bytes, { level: constants.Z_BEST_COMPRESSION }).length,
    brotli: brotliCompressSync(bytes, {
      params: {
        [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
        [constants.BROTLI_PARAM_MODE]: text ? constants.BROTLI_MODE_TEXT : constants.BROTLI_MODE_GENERIC,
        [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
      },
    }).length,
  };
}

// A total's `zopfli` is known only when every file has its .gz twin.
const sum = (xs) => xs.reduce((a, x) => ({
  raw: a.raw + x.raw,
  gzip: a.gzip + x.gzip,
  brotli: a.brotli + x.brotli,
  zopfli: a.zopfli == null || x.zopfli == null ? null : a.zopfli + x.zopfli,
}), { raw: 0, gzip: 0, brotli: 0, zopfli: 0 });

/** The served files under `dist` (absolute paths), by the rule above. */
export function served(dist = join(ROOT, 'dist')) {
  return walk(dist).filter((abs) => !NOT_SERVED.some((r) => r.test(relative(dist, abs).split(sep).join('/'))));
}

/**
 * Measures `dist`: { files: [{ path, raw, gzip, brotli, role: loader |
 * every-page-view | ondemand, piece? }], loader, everyPageView, pieces:
 * [{ name, raw, gzip, brotli, files }] }. Paths are relative to `dist`, with /.
 * Each file is compressed on its own, as a server sends it.
 */
export function measure(dist = join(ROOT, 'dist')) {
  if (!existsSync(join(dist, LOADER))) {
    throw new Error(`${join(dist, LOADER)} missing: run ./build.sh build (it makes dist/)`);
  }
  const files = [];
  for (const abs of served(dist)) {
    const path = relative(dist, abs).split(sep).join('/');
    const size = compressed(readFileSync(abs), { text: /\.(m?js|json|css|html)$/.test(path) });
    const f = { path, ...size, zopfli: existsSync(`${abs}.gz`) ? statSync(`${abs}.gz`).size : null };
    if (path === LOADER) f.role = 'loader';
    else if (path.startsWith(`${ONDEMAND_DIR}/`)) {
      f.role = 'ondemand';
      f.piece = path.slice(ONDEMAND_DIR.length + 1).split('/')[0];
    } else f.role = 'every-page-view';
    files.push(f);
  }
  const pieces = [...new Set(files.filter((f) => f.piece).map((f) => f.piece))].map((name) => {
    const own = files.filter((f) => f.piece === name);
    return { name, ...sum(own), files: own.map((f) => f.path) };
  });
  return {
    files,
    loader: files.find((f) => f.role === 'loader'),
    everyPageView: sum(files.filter((f) => f.role !== 'ondemand')),
    pieces,
  };
}

/** The report as lines of text. */
export function format(m) {
  const row = (label, s, note = '') =>
    `  ${label.padEnd(40)} ${String(s.raw).padStart(8)} ${String(s.gzip).padStart(8)} ${String(s.brotli).padStart(8)} ${String(s.zopfli ?? '-').padStart(8)}${note ? `  ${note}` : ''}`;
  const over = (v, b) => (v > b ? `over the ${b} budget by ${v - b}` : `budget ${b}`);
  const lines = [`  ${'shipped (bytes)'.padEnd(40)} ${'raw'.padStart(8)} ${'gzip -9'.padStart(8)} ${'brotli'.padStart(8)} ${'zopfli'.padStart(8)}`];
  for (const f of m.files.filter((x) => x.role !== 'ondemand')) {
    lines.push(row(`dist/${f.path}`, f, f.role === 'loader' ? `loader: ${over(f.gzip, BUDGET.loaderGzip)}` : ''));
  }
  lines.push(row('every page view (the files above)', m.everyPageView, over(m.everyPageView.gzip, BUDGET.everyPageViewGzip)));
  if (m.pieces.length) {
    lines.push('  on-demand pieces (fetched only on pages that need them):');
    for (const p of m.pieces) lines.push(row(`dist/${ONDEMAND_DIR}/${p.name}${p.files.length > 1 ? ` (${p.files.length} files)` : ''}`, p));
  } else {
    lines.push(`  on-demand pieces: none (dist/${ONDEMAND_DIR}/ absent)`);
  }
  return lines;
}

if (import.meta.url === pathToFileURL(process.argv[1] || '').href) {
  const args = process.argv.slice(2);
  const at = args.indexOf('--dist');
  const dist = at >= 0 ? resolve(args[at + 1]) : undefined;
  // The list alone (build.sh asks for it before the sizes) compresses nothing.
  const list = args.includes('--served');
  let m;
  try {
    if (list) process.stdout.write(`${served(dist).join('\n')}\n`);
    else m = measure(dist);
  } catch (e) {
    process.stderr.write(`sizes: ${e.message}\n`);
    process.exit(2);
  }
  if (m) {
    if (args.includes('--json')) process.stdout.write(`${JSON.stringify({ budget: BUDGET, ...m }, null, 1)}\n`);
    else process.stdout.write(`${format(m).join('\n')}\n`);
    if (args.includes('--check') && (m.loader.gzip > BUDGET.loaderGzip || m.everyPageView.gzip > BUDGET.everyPageViewGzip)) process.exit(1);
  }
}
