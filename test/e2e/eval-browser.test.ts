/**
 * report.html in a real browser: Debian's chromium driven by playwright-core (no browser download: the Debian package scripts/ci-system-deps.sh installs).
 * It must load with no network request and no console error, and its charts must render: every chart SVG has
 * a real size and drawn marks, and screenshots of the chart regions (decoded here) are not blank.
 *
 * Chromium missing: fails in CI (CI=true, where .ci/run installs it), skips with the reason locally.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { evaluate, loadSessionLabels, writeEvaluation } from '../../lib/eval';
import { hdfsBaselineScores } from '../support/eval-fixtures';
import { HDFS_DEV_LABELS, HDFS_DEV_LOG } from '../support/data';
import { tempDir } from '../support/tmp';
import { skipUnlessCI } from '../support/skip';

// DEEPSENTRY_CHROMIUM overrides the path (e.g. to check the missing-browser behaviour)
const CHROMIUM = process.env.DEEPSENTRY_CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** A decoded 8-bit RGB(A) PNG (what chromium's screenshots are). */
interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel */
  rgba: Uint8Array;
}

/** Minimal PNG decoder: 8-bit truecolour (with or without alpha), non-interlaced, all five filters. */
function decodePng(buf: Buffer): Image {
  if (buf.readUInt32BE(0) !== 0x89504e47) throw new Error('not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('latin1', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      const depth = data[8]!;
      colorType = data[9]!;
      if (depth !== 8 || (colorType !== 2 && colorType !== 6) || data[12] !== 0) throw new Error(`unsupported PNG: depth ${depth}, colour type ${colorType}, interlace ${data[12]}`);
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = zlib.inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const cur = new Uint8Array(stride);
  const prev = new Uint8Array(stride);
  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      cur[i] = v & 255;
    }
    for (let x = 0; x < width; x++) {
      const o = (y * width + x) * 4;
      rgba[o] = cur[x * bpp]!;
      rgba[o + 1] = cur[x * bpp + 1]!;
      rgba[o + 2] = cur[x * bpp + 2]!;
      rgba[o + 3] = bpp === 4 ? cur[x * bpp + 3]! : 255;
    }
    prev.set(cur);
  }
  return { width, height, rgba };
}

/** Pixels that are not (near-)white, and pixels near a given colour. */
function inkStats(img: Image, color: [number, number, number]): { ink: number; near: number; distinct: number } {
  let ink = 0;
  let near = 0;
  const colours = new Set<number>();
  for (let o = 0; o < img.rgba.length; o += 4) {
    const [r, g, b] = [img.rgba[o]!, img.rgba[o + 1]!, img.rgba[o + 2]!];
    colours.add((r << 16) | (g << 8) | b);
    if (r < 235 || g < 235 || b < 235) ink++;
    if (Math.abs(r - color[0]) + Math.abs(g - color[1]) + Math.abs(b - color[2]) < 60) near++;
  }
  return { ink, near, distinct: colours.size };
}

describe('eval report in headless chromium', function () {
  this.timeout(120000);
  const work = tempDir('browser');
  let report = '';
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  let ctx: any = null;

  before(async function () {
    if (!fs.existsSync(CHROMIUM)) {
      skipUnlessCI(this, `${CHROMIUM} is missing (apt-get install -y chromium; scripts/ci-system-deps.sh does it in CI)`);
    }
    const labels = await loadSessionLabels(HDFS_DEV_LABELS);
    const result = await evaluate({ scoresDir: hdfsBaselineScores(), labels, top: 5 });
    const files = await writeEvaluation(result, path.join(work, 'out'), { logFile: HDFS_DEV_LOG, dataset: { name: 'hdfs-dev' }, modelConfig: { baseline: 'rare event' } });
    report = files.report;
    const { chromium } = await import('playwright-core');
    ctx = await chromium.launchPersistentContext(path.join(work, 'profile'), {
      executablePath: CHROMIUM,
      headless: true,
      args: FLAGS,
      viewport: { width: 1400, height: 900 },
    });
  });

  after(async () => {
    if (ctx) await ctx.close();
    fs.rmSync(work, { recursive: true, force: true });
  });

  it('loads offline: no network request, no console error, no page error', async () => {
    const page = await ctx.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r: { url(): string }) => requests.push(r.url()));
    page.on('console', (m: { type(): string; text(): string }) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`); });
    page.on('pageerror', (e: Error) => problems.push(`pageerror: ${e.message}`));
    // anything but the report itself would be a fetch the report must not make: abort and record it
    await page.route((u: URL) => u.href !== `file://${report}`, (route: { abort(): Promise<void> }) => route.abort());
    await page.goto(`file://${report}`, { waitUntil: 'load' });
    await page.waitForTimeout(300); // let late requests (fonts, favicon) show up if any were made
    expect(requests).to.deep.equal([`file://${report}`]);
    expect(problems).to.deep.equal([]);
    expect(await page.title()).to.equal('DeepSentry evaluation report');
    await page.close();
  });

  it('renders every chart: SVGs with real size and drawn marks, screenshots with ink and the curve colour', async () => {
    const page = await ctx.newPage();
    await page.goto(`file://${report}`, { waitUntil: 'load' });
    // evaluated in the page (a string: the test's tsconfig has no DOM types)
    const boxes: { chart: string; w: number; h: number; marks: number }[] = await page.evaluate(`
      Array.from(document.querySelectorAll('figure.chart')).map((f) => {
        const svg = f.querySelector('svg').getBoundingClientRect();
        const marks = Array.from(f.querySelectorAll('.ds-curve, .ds-bars')).filter((e) => {
          const b = e.getBBox();
          return b.width > 20 && b.height > 20;
        }).length;
        return { chart: f.dataset.chart, w: svg.width, h: svg.height, marks };
      })`);
    expect(boxes.map((b) => b.chart)).to.deep.equal(['session-roc', 'session-pr', 'session-scores', 'line-roc', 'line-pr', 'line-scores']);
    for (const b of boxes) {
      expect(b.w, b.chart).to.be.greaterThan(300);
      expect(b.h, b.chart).to.be.greaterThan(200);
      expect(b.marks, b.chart).to.be.at.least(1);
    }
    const figures = await page.$$('figure.chart');
    for (let i = 0; i < figures.length; i++) {
      const png = decodePng(await figures[i].screenshot({ type: 'png' }));
      expect(png.width * png.height).to.be.greaterThan(300 * 200);
      // curve colour #3b6fb6 (ROC/PR lines, normal histogram bars)
      const s = inkStats(png, [0x3b, 0x6f, 0xb6]);
      const frac = s.ink / (png.width * png.height);
      expect(frac, `${boxes[i]!.chart}: share of non-white pixels`).to.be.within(0.02, 0.8);
      expect(s.distinct, `${boxes[i]!.chart}: distinct colours`).to.be.greaterThan(20);
      expect(s.near, `${boxes[i]!.chart}: pixels in the curve colour`).to.be.greaterThan(100);
      if (boxes[i]!.chart.endsWith('scores')) {
        // the anomalous histogram's outline (#d6423b) is drawn too
        expect(inkStats(png, [0xd6, 0x42, 0x3b]).near, `${boxes[i]!.chart}: anomalous bars`).to.be.greaterThan(20);
      }
    }
    // and the page as a whole is not blank
    const full = decodePng(await page.screenshot({ type: 'png', fullPage: false }));
    expect(inkStats(full, [0x1f, 0x29, 0x33]).near, 'header band').to.be.greaterThan(1000);
    await page.close();
  });

  it('the PNG check itself can fail: a blank page has no ink', async () => {
    const page = await ctx.newPage();
    await page.setContent('<html><body style="background:#fff"></body></html>');
    const s = inkStats(decodePng(await page.screenshot({ type: 'png' })), [0x3b, 0x6f, 0xb6]);
    expect(s.ink).to.equal(0);
    expect(s.near).to.equal(0);
    await page.close();
  });
});
