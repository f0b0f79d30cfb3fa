/**
 * The live dashboard (GET /) in a real browser: Debian's chromium driven by playwright-core (the Debian
 * package scripts/ci-system-deps.sh installs). It must work offline (no request leaves the monitor's origin), show the numbers, draw
 * the score chart, list the latest alerts with their context, and render log text as text, never as HTML.
 *
 * Chromium missing: fails in CI (CI=true, where .ci/run installs it), skips with the reason locally. A
 * scale-out worker's dashboard (the same page over NATS partitions) is loaded in test/e2e/scale.test.ts.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import { LiveMonitor } from '../../lib/live/monitor';
import { NoveltyScorer } from '../../lib/live/novelty';
import { LiveServer } from '../../lib/live/server';
import { hdfsLines } from '../support/live-fixtures';
import { skipUnlessCI } from '../support/skip';
import { CHROMIUM, CHROMIUM_FLAGS as FLAGS } from '../support/chromium';

const HDFS = hdfsLines(3000);

describe('live dashboard in headless chromium', function () {
  this.timeout(90_000);

  before(function () {
    if (!fs.existsSync(CHROMIUM)) skipUnlessCI(this, `${CHROMIUM} is missing (apt-get install -y chromium; scripts/ci-system-deps.sh does it in CI)`);
  });

  it('shows lines, anomaly rate, the score chart and the latest alerts with context, offline', async () => {
    const { chromium } = await import('playwright-core');
    const monitor = new LiveMonitor(new NoveltyScorer({ logs: { format: 'hdfs' } }), { threshold: { mode: 'rolling', window: 300 }, tickMs: 0, source: 'http' });
    await monitor.start();
    const token = 'dashboard-token-1';
    const server = new LiveServer(monitor, { port: 0, token, ingest: true });
    const { port } = await server.listen();
    const origin = `http://127.0.0.1:${port}`;
    monitor.offer(HDFS);
    // A never-seen message opening a new session after 3000 lines: an alert whose text is HTML-like.
    monitor.offer('081109 210000 1 INFO dfs.DataNode: <img src=x onerror="window.__pwned=1"> never seen blk_777');
    await monitor.idle();
    expect(monitor.snapshot().alerts.some((a) => a.line.includes('<img'))).to.equal(true);

    const browser = await chromium.launch({ executablePath: CHROMIUM, args: FLAGS });
    try {
      const page = await browser.newPage();
      const foreign: string[] = [];
      const errors: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(origin + '/') && !r.url().startsWith('data:')) foreign.push(r.url());
      });
      page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
      page.on('pageerror', (e) => errors.push(e.message));

      const denied = await page.goto(`${origin}/`);
      expect(denied!.status()).to.equal(401);
      const res = await page.goto(`${origin}/?token=${token}`);
      expect(res!.status()).to.equal(200);
      await page.waitForSelector('#alerts .alert', { timeout: 20_000 });
      // Browser-side code is given as strings: this project's TypeScript has no DOM types.
      await page.waitForFunction("document.getElementById('lines').textContent !== '–'", undefined, { timeout: 20_000 });

      const view = (await page.evaluate(`(() => {
        const c = document.getElementById('chart');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let drawn = 0;
        let red = 0;
        for (let i = 0; i < d.length; i += 4) {
          if (d[i + 3] > 0) drawn++;
          if (d[i] > 180 && d[i + 1] < 90 && d[i + 2] < 90 && d[i + 3] > 200) red++; // threshold line / anomaly dots
        }
        const text = (id) => document.getElementById(id).textContent;
        return {
          lines: text('lines'), anomalies: text('anomalies'), rate: text('rate'), lps: text('lps'), status: text('status'),
          alerts: document.querySelectorAll('#alerts .alert').length,
          firstContext: document.querySelector('#alerts .alert pre').textContent,
          allText: text('alerts'),
          imgs: document.querySelectorAll('#alerts img').length,
          pwned: window.__pwned,
          drawn,
          red,
        };
      })()`)) as Record<string, string | number | undefined>;
      const snap = monitor.snapshot();
      expect(view.lines).to.equal('3001');
      expect(view.anomalies).to.equal(String(snap.anomalies));
      expect(view.rate).to.match(/^\d+\.\d\d %$/);
      expect(view.lps).to.not.equal('–');
      expect(view.status).to.equal('live');
      expect(view.alerts).to.equal(Math.min(20, snap.alerts.length));
      expect(view.firstContext).to.contain('blk_777');
      // Log text is shown as text: the <img> is visible as characters, and no element was created from it.
      expect(view.allText).to.contain('<img src=x onerror="window.__pwned=1">');
      expect(view.imgs).to.equal(0);
      expect(view.pwned).to.equal(undefined);
      expect(view.drawn).to.be.greaterThan(500);
      expect(view.red).to.be.greaterThan(0);
      expect(foreign).to.deep.equal([]);
      expect(errors.filter((e) => !/401/.test(e))).to.deep.equal([]);
    } finally {
      await browser.close();
      await server.close();
      await monitor.stop();
    }
  });
});
