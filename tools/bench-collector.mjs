// Collector ingest throughput on loopback: POST /r with the golden report
// batch as the monitor sends it (tests/fixtures/golden/report-batch.sent.json) under
// a per-request unique page view, against GET /healthz on the same server as
// the HTTP-only baseline. Every 204 is a committed SQLite transaction.
// Rate limiting is off (--rate 0 --client-rate 0). Run by `./build.sh bench`.
import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { startCollector, REPO_ROOT } from '../tests/e2e/harness.mjs';

const REQUESTS = Number(process.env.REQUESTS || 4000);
const CONCURRENCY = Number(process.env.CONCURRENCY || 32);
const golden = readFileSync(`${REPO_ROOT}/tests/fixtures/golden/report-batch.sent.json`, 'utf8');

const collector = await startCollector({ siteCount: 1, extraArgs: ['--rate', '0', '--client-rate', '0'] });
const site = collector.sites[0];
const agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY });
const url = new URL(collector.url);

function send(method, path, body) {
  return new Promise((resolve, reject) => {
    const req = request({ host: url.hostname, port: url.port, method, path, agent,
      headers: body ? { 'content-type': 'text/plain', origin: 'https://shop.example', 'content-length': Buffer.byteLength(body) } : {} },
    (res) => { res.resume(); res.on('end', () => resolve(res.statusCode)); });
    req.on('error', reject);
    req.end(body);
  });
}

async function run(name, make) {
  let next = 0, ok = 0;
  const t0 = process.hrtime.bigint();
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < REQUESTS) {
      const i = next++;
      const [method, path, body] = make(i);
      const status = await send(method, path, body);
      if (status === 204 || status === 200) ok++;
      else throw new Error(`${name}: HTTP ${status}`);
    }
  }));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { name, rps: ok / s };
}

try {
  const base = await run('GET /healthz', () => ['GET', '/healthz']);
  const ingest = await run('POST /r', (i) => {
    const view = i.toString(16).padStart(16, '0');
    return ['POST', '/r', golden.replaceAll('tw_golden0000000000000000', site).replaceAll('0123456789abcdef', view)];
  });
  const reports = JSON.parse(golden).length;
  console.log(`${REQUESTS} requests, ${CONCURRENCY} concurrent, loopback`);
  console.log(`${'endpoint'.padEnd(14)} ${'req/s'.padStart(9)} ${'reports/s'.padStart(10)} ${'vs baseline'.padStart(12)}`);
  console.log(`${base.name.padEnd(14)} ${base.rps.toFixed(0).padStart(9)} ${'-'.padStart(10)} ${'1.00'.padStart(12)}`);
  console.log(`${ingest.name.padEnd(14)} ${ingest.rps.toFixed(0).padStart(9)} ${(ingest.rps * reports).toFixed(0).padStart(10)} ${(ingest.rps / base.rps).toFixed(2).padStart(12)}`);
} finally {
  agent.destroy();
  await collector.stop();
}
