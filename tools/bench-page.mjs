// Main-thread cost of the monitor on a page: the same page (Intercom loading
// before consent, the monitor's busiest case) in headless Chromium, with the
// monitor and without it (the fake server answers 404 for /tagwatch/), N page
// views each. Reads Chromium's own counters (DevTools Performance.getMetrics:
// ScriptDuration, TaskDuration) once Intercom has booted (page load: includes
// the monitor's start-up) and again 5 s later (steady state: five monitor
// ticks), and prints medians side by side. Run by `./build.sh bench`.
import { startFake, startCollector, launchBrowser, pageUrl, waitForIntercomBoot, sleep } from '../tests/e2e/harness.mjs';

const RUNS = Number(process.env.RUNS || 9);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(serveMonitor) {
  const fake = await startFake({ serveMonitor });
  const collector = await startCollector({ siteCount: 1 });
  fake.setCollectorUpstream(collector.url);
  const browser = await launchBrowser(fake);
  const load = { script: [], task: [] }, steady = { script: [], task: [] };
  try {
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Performance.enable');
      const read = async () => {
        const { metrics } = await cdp.send('Performance.getMetrics');
        const get = (n) => metrics.find((m) => m.name === n).value * 1000;
        return { script: get('ScriptDuration'), task: get('TaskDuration') };
      };
      await page.goto(pageUrl('no-consent.html', { collector: `${collector.url}/r`, site: collector.sites[0] }));
      await waitForIntercomBoot(page);
      await sleep(500);
      const a = await read();
      await sleep(5000);
      const b = await read();
      load.script.push(a.script); load.task.push(a.task);
      steady.script.push(b.script - a.script); steady.task.push(b.task - a.task);
      await context.close();
    }
  } finally {
    await browser.close();
    await collector.stop();
    await fake.close();
  }
  const m = (o) => ({ script: median(o.script), task: median(o.task) });
  return { load: m(load), steady: m(steady) };
}

const without = await measure(false);
const withMonitor = await measure(true);
const row = (name, a, b) => console.log(`${name.padEnd(34)} ${a.toFixed(1).padStart(9)} ${b.toFixed(1).padStart(9)} ${(b - a).toFixed(1).padStart(8)} ${(b / a).toFixed(2).padStart(6)}`);
console.log(`page views per variant: ${RUNS}; medians, ms of main-thread time`);
console.log(`${'metric'.padEnd(34)} ${'without'.padStart(9)} ${'with'.padStart(9)} ${'monitor'.padStart(8)} ${'ratio'.padStart(6)}`);
row('page load: script', without.load.script, withMonitor.load.script);
row('page load: all tasks', without.load.task, withMonitor.load.task);
row('next 5 s: script', without.steady.script, withMonitor.steady.script);
row('next 5 s: all tasks', without.steady.task, withMonitor.steady.task);
