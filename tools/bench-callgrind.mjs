// CPU per batch of the collector as a stable figure: instructions counted by
// valgrind's callgrind for the whole `tagwatch serve` process (every thread:
// HTTP, ingest, the writer, SQLite), while a client sends the golden batch
// as the monitor sends it (tests/fixtures/golden/report-batch.sent.json) N
// times under new page views,
// one request at a time on one keep-alive connection (so every batch is its
// own group commit and the count does not depend on timing). The collector
// runs twice, with FEW and MANY batches; the difference divided by
// MANY − FEW is the cost of one batch, start-up and shutdown excluded.
// Instruction counts do not depend on the machine's load, unlike times.
//
//   node tools/bench-callgrind.mjs [BIN]        # BIN: target/release/tagwatch
//   FEW=50 MANY=250 node tools/bench-callgrind.mjs
//   EVENTS=$(tools/clickhouse.sh) node tools/bench-callgrind.mjs
//   PG=$(tools/postgres.sh) node tools/bench-callgrind.mjs   # the store on PostgreSQL
//   SETUP_SQL='DROP INDEX findings_by_site_hour' node tools/bench-callgrind.mjs
//
// SETUP_SQL (SQLite only, an experiment, never a shipped layout): SQL that
// sqlite3 runs on each run's fresh store before the collector starts, e.g.
// an index dropped to size what its writes cost a batch
// (docs/benchmarks.md, "What a batch writes, B-tree by B-tree").
//
// With EVENTS (a clickhouse:// URL), the reports go to ClickHouse
// (`serve --events`, a fresh database per run) and the SQL store keeps
// the control plane: the count is then the collector's own work per batch
// (ClickHouse's is in its own process, not counted).
//
// With PG (a server URL), each run stores into a new database on that server
// (dropped afterwards; needs psql); only the collector's instructions are
// counted, not the server's. Needs valgrind. Files (callgrind.out.*, db, logs) in target/bench-callgrind/.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = resolve(process.argv[2] || `${ROOT}/target/release/tagwatch`);
const FEW = Number(process.env.FEW || 50);
const MANY = Number(process.env.MANY || 250);
const OUT = `${ROOT}/target/bench-callgrind`;
const ORIGIN = 'https://shop.example';
const EVENTS = process.env.EVENTS || '';
const PG = process.env.PG || '';
const SETUP_SQL = process.env.SETUP_SQL || '';
const golden = readFileSync(`${ROOT}/tests/fixtures/golden/report-batch.sent.json`, 'utf8');

function send(agent, port, body) {
  return new Promise((ok, fail) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/r', agent,
      headers: { 'content-type': 'text/plain;charset=UTF-8', origin: ORIGIN, 'content-length': Buffer.byteLength(body) } },
    (res) => { res.resume(); res.on('end', () => (res.statusCode === 204 ? ok() : fail(new Error(`HTTP ${res.statusCode}`)))); });
    req.on('error', fail);
    req.end(body);
  });
}

/** Instructions of one collector run that accepts `n` batches. */
async function run(n) {
  const dir = `${OUT}/run-${n}`;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  let db = `sqlite:${dir}/tagwatch.db`;
  let dropDb = () => {};
  if (PG) {
    const name = `tw_bench_callgrind_${process.pid}_${n}`;
    execFileSync('psql', ['-q', PG, '-c', `CREATE DATABASE ${name}`]);
    dropDb = () => execFileSync('psql', ['-q', PG, '-c', `DROP DATABASE ${name}`]);
    // The server's URL naming the new database instead.
    db = PG.replace(/^([a-z]+:\/\/[^/]*)\/[^?]*/, `$1/${name}`);
  }
  const site = execFileSync(BIN, ['site', 'add', '--origin', ORIGIN, '--db', db]).toString().trim();
  if (SETUP_SQL) {
    if (PG) throw new Error('SETUP_SQL is for the SQLite store');
    execFileSync('sqlite3', [`${dir}/tagwatch.db`, SETUP_SQL]);
  }
  // A database of its own on the EVENTS server, per run.
  const events = EVENTS
    ? ['--events', EVENTS.replace(/\/[A-Za-z0-9_]+(\?|$)/, `/tw_bench_${process.pid}_${n}$1`)]
    : [];
  const child = spawn('valgrind', ['--tool=callgrind', `--callgrind-out-file=${dir}/callgrind.out`,
    BIN, 'serve', '--listen', '127.0.0.1:0', '--db', db, '--rate', '0', '--client-rate', '0', ...events],
  { env: { ...process.env, TAGWATCH_ADMIN_TOKEN: 'bench' }, stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  const port = await new Promise((ok, fail) => {
    child.stderr.on('data', (d) => {
      log += d;
      const m = log.match(/tagwatch: listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) ok(Number(m[1]));
    });
    child.on('exit', () => fail(new Error(`the collector exited: ${log}`)));
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  for (let i = 0; i < n; i++) {
    const view = (0x10000000 + i).toString(16).padStart(16, '0');
    await send(agent, port, golden.replaceAll('tw_golden0000000000000000', site).replaceAll('0123456789abcdef', view));
  }
  agent.destroy();
  const exited = new Promise((ok) => child.on('exit', ok));
  child.kill('SIGTERM');
  await exited;
  dropDb();
  const summary = readFileSync(`${dir}/callgrind.out`, 'utf8').match(/^summary: (\d+)/m);
  if (!summary) throw new Error(`no summary in ${dir}/callgrind.out`);
  return Number(summary[1]);
}

const few = await run(FEW);
const many = await run(MANY);
const per = (many - few) / (MANY - FEW);
const reports = JSON.parse(golden).length;
console.log(`callgrind, ${BIN}, ${PG ? 'PostgreSQL' : 'SQLite'}${EVENTS ? ' (--events: reports in ClickHouse)' : ''}${SETUP_SQL ? ` (store set up with: ${SETUP_SQL})` : ''}`);
console.log(`  ${FEW} batches: ${few.toLocaleString('en')} instructions`);
console.log(`  ${MANY} batches: ${many.toLocaleString('en')} instructions`);
console.log(`per batch (${reports} reports, one commit each): ${Math.round(per).toLocaleString('en')} instructions`);
