// Main-thread cost of the monitor on a page: the same page (Intercom loading
// before consent, the monitor's busiest case) in headless Chromium, with the
// monitor and without it (the fake server answers 404 for /tagwatch/), N page
// views each. Reads Chromium's own counters (DevTools Performance.getMetrics:
// ScriptDuration, TaskDuration) after the page has run for 5 s (five monitor
// ticks), and prints medians side by side. Run by `./build.sh bench`.
import { startFake, startCollector, launchBrowser, pageUrl, waitForIntercomBoot, sleep } from '../tests/e2e/harness.mjs';

const RUNS = Number(process.env.RUNS || 9);
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function measure(serveMonitor) {
  const fake = await startFake({ serveMonitor });
  const collector = await startCollector({ siteCount: 1 });
  fake.setCollectorUpstream(collector.url);
  const browser = await launchBrowser(fake);
  const script = [], task = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const context = await browser.newContext({ ignoreHTTPSErrors: true });
      const page = await context.newPage();
      const cdp = await context.newCDPSession(page);
      await cdp.send('Performance.enable');
      await page.goto(pageUrl('no-consent', { collector: `${collector.url}/r`, site: collector.sites[0] }));
      await waitForIntercomBoot(page);
      await sleep(5000);
      const { metrics } = await cdp.send('Performance.getMetrics');
      const get = (n) => metrics.find((m) => m.name === n).value * 1000;
      script.push(get('ScriptDuration'));
      task.push(get('TaskDuration'));
      await context.close();
    }
  } finally {
    await browser.close();
    await collector.stop();
    await fake.close();
  }
  return { script: median(script), task: median(task) };
}

const without = await measure(false);
const withMonitor = await measure(true);
const row = (name, a, b) => console.log(`${name.padEnd(26)} ${a.toFixed(1).padStart(9)} ${b.toFixed(1).padStart(9)} ${(b - a).toFixed(1).padStart(8)} ${(b / a).toFixed(2).padStart(6)}`);
console.log(`page views per variant: ${RUNS} (medians, ms of main thread over the first ~6 s)`);
console.log(`${'metric'.padEnd(26)} ${'without'.padStart(9)} ${'with'.padStart(9)} ${'monitor'.padStart(8)} ${'ratio'.padStart(6)}`);
row('script (ScriptDuration)', without.script, withMonitor.script);
row('all tasks (TaskDuration)', without.task, withMonitor.task);
