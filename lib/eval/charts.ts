/**
 * Hand-written, self-contained SVG charts: ROC curve, precision-recall curve and score distributions.
 * No fonts, scripts, images or links are referenced, so a chart renders the same in a browser, in an <img>
 * and inlined in report.html, offline.
 *
 * Curves can have one point per distinct score (100k+ at line level); they are thinned to points at least
 * half a pixel apart, which changes nothing visible and keeps the files small.
 */
import type { Sweep } from './metrics';
import { confusionAt, prCurve, rocCurve } from './metrics';

/** An operating point to mark on a chart (e.g. the saved and the best threshold). */
export interface ChartMarker {
  label: string;
  /** the threshold (score >= threshold is flagged) */
  threshold: number;
  color: string;
}

/** Colours used consistently by charts and report. */
export const COLORS = {
  normal: '#3b6fb6',
  anomalous: '#d6423b',
  curve: '#3b6fb6',
  chance: '#9aa0a6',
  saved: '#1a7f37',
  best: '#b26b00',
  grid: '#e6e8eb',
  axis: '#5f6368',
  text: '#202124',
} as const;

const W = 520;
const H = 380;
const M = { l: 64, r: 18, t: 44, b: 52 };
const PW = W - M.l - M.r;
const PH = H - M.t - M.b;
const FONT = 'font-family="system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,sans-serif"';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** A short, readable number for ticks and labels (3 significant digits, exponent when very small/large). */
export function fmtNum(x: number, digits = 3): string {
  if (x === Infinity) return '∞';
  if (x === -Infinity) return '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  if (a >= 1e5 || a < 1e-3) return x.toExponential(digits - 1).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(x.toPrecision(digits)));
}

/** "Nice" linear ticks (1, 2, 5 × 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  // the 1-2-5 step whose tick count is closest to the target
  const count = (st: number) => Math.floor(hi / st + 1e-9) - Math.ceil(lo / st - 1e-9) + 1;
  const step = [1, 2, 5, 10].map((m) => m * mag).reduce((a, b) => (Math.abs(count(b) - target) < Math.abs(count(a) - target) ? b : a));
  const out: number[] = [];
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Math.abs(v) < step * 1e-9 ? 0 : Number(v.toPrecision(12)));
  return out;
}

/** Powers of ten covering [lo, hi] (both > 0), thinned to at most ~7 ticks. */
function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo));
  const b = Math.ceil(Math.log10(hi));
  const every = Math.max(1, Math.ceil((b - a + 1) / 7));
  const out: number[] = [];
  for (let e = a; e <= b; e += every) {
    const v = Math.pow(10, e);
    if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
  }
  return out;
}

interface Axis {
  lo: number;
  hi: number;
  log: boolean;
  ticks: number[];
  label: string;
}

function scaleX(a: Axis, v: number): number {
  const t = a.log ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo)) : (v - a.lo) / (a.hi - a.lo);
  return M.l + t * PW;
}

function scaleY(a: Axis, v: number): number {
  const t = a.log ? (Math.log10(v) - Math.log10(a.lo)) / (Math.log10(a.hi) - Math.log10(a.lo)) : (v - a.lo) / (a.hi - a.lo);
  return M.t + (1 - t) * PH;
}

const r1 = (v: number) => Math.round(v * 10) / 10;

/** Keeps points at least `tol` px from the last kept one (always the first and last). */
function thin(px: number[], py: number[], tol = 0.5): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  let lx = NaN;
  let ly = NaN;
  for (let i = 0; i < px.length; i++) {
    const last = i === px.length - 1;
    if (i === 0 || last || Math.abs(px[i]! - lx) >= tol || Math.abs(py[i]! - ly) >= tol) {
      x.push(px[i]!);
      y.push(py[i]!);
      lx = px[i]!;
      ly = py[i]!;
    }
  }
  return { x, y };
}

function pointsAttr(t: { x: number[]; y: number[] }): string {
  return t.x.map((x, i) => `${r1(x)},${r1(t.y[i]!)}`).join(' ');
}

/** The points plus 9 evenly spaced points on each segment: long straight runs count when placing a legend. */
function densify(t: { x: number[]; y: number[] }): { x: number[]; y: number[] } {
  const x: number[] = [];
  const y: number[] = [];
  for (let i = 0; i < t.x.length; i++) {
    x.push(t.x[i]!);
    y.push(t.y[i]!);
    if (i + 1 < t.x.length) {
      for (let f = 1; f < 10; f++) {
        x.push(t.x[i]! + ((t.x[i + 1]! - t.x[i]!) * f) / 10);
        y.push(t.y[i]! + ((t.y[i + 1]! - t.y[i]!) * f) / 10);
      }
    }
  }
  return { x, y };
}

function frame(title: string, subtitle: string, x: Axis, y: Axis, body: string, ariaLabel: string): string {
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" class="ds-chart" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${escapeXml(ariaLabel)}" ${FONT}>`);
  parts.push(`<title>${escapeXml(ariaLabel)}</title>`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${M.l}" y="18" font-size="15" font-weight="600" fill="${COLORS.text}">${escapeXml(title)}</text>`);
  parts.push(`<text x="${M.l}" y="35" font-size="12" fill="${COLORS.axis}">${escapeXml(subtitle)}</text>`);
  // grid and ticks
  for (const t of x.ticks) {
    const px = r1(scaleX(x, t));
    parts.push(`<line x1="${px}" y1="${M.t}" x2="${px}" y2="${M.t + PH}" stroke="${COLORS.grid}"/>`);
    parts.push(`<line x1="${px}" y1="${M.t + PH}" x2="${px}" y2="${M.t + PH + 5}" stroke="${COLORS.axis}"/>`);
    parts.push(`<text x="${px}" y="${M.t + PH + 18}" font-size="11" text-anchor="middle" fill="${COLORS.axis}">${escapeXml(fmtNum(t))}</text>`);
  }
  for (const t of y.ticks) {
    const py = r1(scaleY(y, t));
    parts.push(`<line x1="${M.l}" y1="${py}" x2="${M.l + PW}" y2="${py}" stroke="${COLORS.grid}"/>`);
    parts.push(`<line x1="${M.l - 5}" y1="${py}" x2="${M.l}" y2="${py}" stroke="${COLORS.axis}"/>`);
    parts.push(`<text x="${M.l - 8}" y="${py + 4}" font-size="11" text-anchor="end" fill="${COLORS.axis}">${escapeXml(fmtNum(t))}</text>`);
  }
  parts.push(`<g class="ds-plot">${body}</g>`);
  parts.push(`<rect x="${M.l}" y="${M.t}" width="${PW}" height="${PH}" fill="none" stroke="${COLORS.axis}"/>`);
  parts.push(`<text x="${M.l + PW / 2}" y="${H - 10}" font-size="12" text-anchor="middle" fill="${COLORS.text}">${escapeXml(x.label)}</text>`);
  parts.push(`<text x="16" y="${M.t + PH / 2}" font-size="12" text-anchor="middle" fill="${COLORS.text}" transform="rotate(-90 16 ${M.t + PH / 2})">${escapeXml(y.label)}</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

interface LegendItem {
  label: string;
  color: string;
  kind: 'line' | 'dash' | 'box' | 'dot';
}

type Corner = 'br' | 'tr' | 'bl' | 'tl';

function legendSize(items: LegendItem[]): { w: number; h: number } {
  return { w: 14 + 26 + Math.max(...items.map((i) => i.label.length)) * 6.4, h: items.length * 17 + 8 };
}

function legendBox(items: LegendItem[], corner: Corner): { x: number; y: number; w: number; h: number } {
  const { w, h } = legendSize(items);
  const x = corner === 'bl' || corner === 'tl' ? M.l + 8 : M.l + PW - w - 8;
  const y = corner === 'tr' || corner === 'tl' ? M.t + 8 : M.t + PH - h - 8;
  return { x, y, w, h };
}

/** The corner (in order of preference) whose legend box covers the fewest curve points. */
function freeCorner(items: LegendItem[], px: number[], py: number[], prefs: Corner[]): Corner {
  let best = prefs[0]!;
  let bestHits = Infinity;
  for (const c of prefs) {
    const b = legendBox(items, c);
    let hits = 0;
    for (let i = 0; i < px.length; i++) if (px[i]! >= b.x - 4 && px[i]! <= b.x + b.w + 4 && py[i]! >= b.y - 4 && py[i]! <= b.y + b.h + 4) hits++;
    if (hits < bestHits) {
      bestHits = hits;
      best = c;
    }
  }
  return best;
}

/** A legend box anchored to a corner of the plot area. */
function legend(items: LegendItem[], corner: Corner): string {
  const lh = 17;
  const { x, y, w, h } = legendBox(items, corner);
  const parts = [`<g class="ds-legend"><rect x="${r1(x)}" y="${y}" width="${r1(w)}" height="${h}" fill="#ffffff" fill-opacity="0.92" stroke="${COLORS.grid}" rx="3"/>`];
  items.forEach((it, i) => {
    const cy = y + 4 + lh * i + lh / 2;
    const sx = x + 8;
    if (it.kind === 'box') parts.push(`<rect x="${r1(sx)}" y="${cy - 5}" width="20" height="10" fill="${it.color}" fill-opacity="0.45" stroke="${it.color}"/>`);
    else if (it.kind === 'dot') parts.push(`<circle cx="${r1(sx + 10)}" cy="${cy}" r="4.5" fill="${it.color}" stroke="#fff"/>`);
    else parts.push(`<line x1="${r1(sx)}" y1="${cy}" x2="${r1(sx + 20)}" y2="${cy}" stroke="${it.color}" stroke-width="2"${it.kind === 'dash' ? ' stroke-dasharray="5 4"' : ''}/>`);
    parts.push(`<text x="${r1(sx + 26)}" y="${cy + 4}" font-size="11.5" fill="${COLORS.text}">${escapeXml(it.label)}</text>`);
  });
  parts.push('</g>');
  return parts.join('');
}

const UNIT: Axis = { lo: 0, hi: 1, log: false, ticks: [0, 0.2, 0.4, 0.6, 0.8, 1], label: '' };

/** Operating points of markers on a curve: (fpr, tpr) or (recall, precision) at each marker's threshold. */
function markerDots(s: Sweep, markers: ChartMarker[], kind: 'roc' | 'pr'): { items: LegendItem[]; svg: string } {
  const items: LegendItem[] = [];
  const svg: string[] = [];
  markers.forEach((m, i) => {
    const { tp, fp } = confusionAt(s, m.threshold);
    const tpr = s.positives ? tp / s.positives : 0;
    const fpr = s.negatives ? fp / s.negatives : 0;
    const prec = tp + fp ? tp / (tp + fp) : 1;
    const [x, y] = kind === 'roc' ? [fpr, tpr] : [tpr, prec];
    // later markers drawn smaller, so coinciding operating points stay visible as a ring and a dot
    svg.push(`<circle cx="${r1(scaleX(UNIT, x))}" cy="${r1(scaleY(UNIT, y))}" r="${i === 0 ? 6.5 : 4}" fill="${m.color}" stroke="#fff" stroke-width="1.5"><title>${escapeXml(`${m.label}: threshold ${fmtNum(m.threshold, 4)}`)}</title></circle>`);
    items.push({ label: `${m.label} (t = ${fmtNum(m.threshold, 4)})`, color: m.color, kind: 'dot' });
  });
  return { items, svg: svg.join('') };
}

/** The ROC curve (TPR = recall against FPR) with the chance diagonal and the markers' operating points. */
export function rocChartSvg(s: Sweep, auc: number | null, level: string, markers: ChartMarker[] = []): string {
  const x: Axis = { ...UNIT, label: 'false-positive rate (normal items flagged)' };
  const y: Axis = { ...UNIT, label: 'true-positive rate = recall' };
  const body: string[] = [];
  body.push(`<line x1="${scaleX(x, 0)}" y1="${scaleY(y, 0)}" x2="${scaleX(x, 1)}" y2="${scaleY(y, 1)}" stroke="${COLORS.chance}" stroke-dasharray="5 4"/>`);
  let curve = { x: [] as number[], y: [] as number[] };
  if (s.positives > 0 && s.negatives > 0) {
    const c = rocCurve(s);
    curve = thin(Array.from(c.fpr, (v) => scaleX(x, v)), Array.from(c.tpr, (v) => scaleY(y, v)));
    body.push(`<polyline class="ds-curve" points="${pointsAttr(curve)}" fill="none" stroke="${COLORS.curve}" stroke-width="2.2" stroke-linejoin="round"/>`);
  }
  const dots = markerDots(s, markers, 'roc');
  body.push(dots.svg);
  const items: LegendItem[] = [{ label: `ROC (AUC ${auc === null ? 'n/a' : auc.toFixed(4)})`, color: COLORS.curve, kind: 'line' }, { label: 'chance', color: COLORS.chance, kind: 'dash' }, ...dots.items];
  const dense = densify(curve);
  body.push(legend(items, freeCorner(items, dense.x, dense.y, ['br', 'tl'])));
  const sub = `${level}: ${s.positives} anomalous, ${s.negatives} normal`;
  return frame(`ROC curve — ${level}`, sub, x, y, body.join('\n'), `ROC curve at ${level} level, AUC ${auc === null ? 'undefined' : auc.toFixed(4)}`);
}

/** The precision-recall curve drawn as steps (its area is exactly the average precision). */
export function prChartSvg(s: Sweep, ap: number | null, level: string, markers: ChartMarker[] = []): string {
  const x: Axis = { ...UNIT, label: 'recall (anomalies found)' };
  const y: Axis = { ...UNIT, label: 'precision (flags that are anomalies)' };
  const body: string[] = [];
  const n = s.positives + s.negatives;
  const base = n ? s.positives / n : 0;
  body.push(`<line x1="${scaleX(x, 0)}" y1="${r1(scaleY(y, base))}" x2="${scaleX(x, 1)}" y2="${r1(scaleY(y, base))}" stroke="${COLORS.chance}" stroke-dasharray="5 4"/>`);
  let curve = { x: [] as number[], y: [] as number[] };
  if (s.positives > 0) {
    const c = prCurve(s);
    const px: number[] = [];
    const py: number[] = [];
    let prevR = 0;
    for (let k = 0; k < c.recall.length; k++) {
      // step: along recall at the new precision, as in the AP sum Σ (R_k − R_{k−1}) P_k
      px.push(scaleX(x, prevR), scaleX(x, c.recall[k]!));
      py.push(scaleY(y, c.precision[k]!), scaleY(y, c.precision[k]!));
      prevR = c.recall[k]!;
    }
    curve = thin(px, py);
    body.push(`<polyline class="ds-curve" points="${pointsAttr(curve)}" fill="none" stroke="${COLORS.curve}" stroke-width="2.2" stroke-linejoin="round"/>`);
  }
  const dots = markerDots(s, markers, 'pr');
  body.push(dots.svg);
  const items: LegendItem[] = [{ label: `PR (AP ${ap === null ? 'n/a' : ap.toFixed(4)})`, color: COLORS.curve, kind: 'line' }, { label: `random (${fmtNum(base)})`, color: COLORS.chance, kind: 'dash' }, ...dots.items];
  const dense = densify(curve);
  body.push(legend(items, freeCorner(items, dense.x, dense.y, ['bl', 'br', 'tr', 'tl'])));
  return frame(`Precision-recall — ${level}`, `${level}: ${s.positives} anomalous of ${n}`, x, y, body.join('\n'), `Precision-recall curve at ${level} level, average precision ${ap === null ? 'undefined' : ap.toFixed(4)}`);
}

/**
 * Histograms of the scores of normal and anomalous items over the real score range, with threshold lines.
 * Counts go on a log axis when the classes differ in size by more than ~20× (anomalies are usually a few
 * percent and would be flat on a linear axis); scores go on a log axis when all are positive and either span
 * more than three orders of magnitude, or span more than 20× with most of them crowded into the bottom tenth
 * of the range (a long tail of high scores, typical of prediction errors).
 */
export function scoreDistributionSvg(scores: ArrayLike<number>, labels: ArrayLike<number>, level: string, markers: ChartMarker[] = [], bins = 40): string {
  let lo = Infinity;
  let hi = -Infinity;
  let infinite = 0;
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (!Number.isFinite(v)) {
      infinite++;
      continue;
    }
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  let logX = lo > 0 && hi / lo > 1000;
  if (!logX && lo > 0 && hi / lo > 20) {
    const finite = Float64Array.from(Array.prototype.filter.call(scores, Number.isFinite) as number[]).sort();
    const median = finite[finite.length >> 1]!;
    logX = (median - lo) / (hi - lo) < 0.1;
  }
  if (!(hi >= lo)) {
    lo = 0;
    hi = 1;
  }
  if (hi === lo) {
    const pad = Math.abs(lo) * 0.1 || 0.5;
    lo -= pad;
    hi += pad;
  }
  const f = (v: number) => (logX ? Math.log10(v) : v);
  const fl = f(lo);
  const fh = f(hi);
  const counts = [new Float64Array(bins), new Float64Array(bins)];
  const totals = [0, 0];
  for (let i = 0; i < scores.length; i++) {
    const v = scores[i]!;
    if (!Number.isFinite(v)) continue;
    const b = Math.min(bins - 1, Math.floor(((f(v) - fl) / (fh - fl)) * bins));
    const c = labels[i] ? 1 : 0;
    counts[c]![b]!++;
    totals[c]!++;
  }
  let maxC = 1;
  let minPos = Infinity;
  for (const cs of counts) for (const v of cs) {
    if (v > maxC) maxC = v;
    if (v > 0 && v < minPos) minPos = v;
  }
  const ratio = Math.max(totals[0]!, totals[1]!) / Math.max(1, Math.min(totals[0]!, totals[1]!));
  const logY = ratio > 20 || maxC / (minPos === Infinity ? 1 : minPos) > 200;
  const x: Axis = {
    lo,
    hi,
    log: logX,
    ticks: logX ? logTicks(lo, hi) : niceTicks(lo, hi).filter((t) => t >= lo && t <= hi),
    label: `anomaly score${logX ? ' (log scale)' : ''}`,
  };
  // headroom: the tallest bar stays below the legend (top-right), whatever the data
  const legendRows = 2 + markers.filter((m) => Number.isFinite(m.threshold) && m.threshold >= lo && m.threshold <= hi).length;
  const free = Math.min(0.6, (legendRows * 17 + 8 + 14) / PH);
  const yHi = logY ? Math.pow(10, Math.log10(0.7) + (Math.log10(maxC) - Math.log10(0.7)) / (1 - free)) : maxC / (1 - free);
  const y: Axis = logY
    ? { lo: 0.7, hi: yHi, log: true, ticks: logTicks(1, yHi), label: `${level}s (log scale)` }
    : { lo: 0, hi: yHi, log: false, ticks: niceTicks(0, yHi).filter((t) => t <= yHi), label: `${level}s` };
  const body: string[] = [];
  const edge = (b: number) => (logX ? Math.pow(10, fl + ((fh - fl) * b) / bins) : lo + ((hi - lo) * b) / bins);
  const yBase = scaleY(y, y.lo);
  [0, 1].forEach((c) => {
    const color = c ? COLORS.anomalous : COLORS.normal;
    const d: string[] = [];
    for (let b = 0; b < bins; b++) {
      const v = counts[c]![b]!;
      if (v <= 0) continue;
      const x0 = scaleX(x, edge(b));
      const x1 = scaleX(x, edge(b + 1));
      const yy = scaleY(y, v);
      d.push(`M${r1(x0)},${r1(yBase)}V${r1(yy)}H${r1(x1)}V${r1(yBase)}Z`);
    }
    body.push(`<path class="ds-bars" d="${d.join('')}" fill="${color}" fill-opacity="${c ? 0.5 : 0.4}" stroke="${color}" stroke-width="1"/>`);
  });
  const items: LegendItem[] = [
    { label: `normal (${totals[0]})`, color: COLORS.normal, kind: 'box' },
    { label: `anomalous (${totals[1]})`, color: COLORS.anomalous, kind: 'box' },
  ];
  markers.forEach((m, i) => {
    if (!Number.isFinite(m.threshold) || m.threshold < lo || m.threshold > hi) return;
    const px = r1(scaleX(x, m.threshold));
    // the first marker solid and wide, later ones dashed on top: coinciding thresholds stay distinguishable
    body.push(`<line x1="${px}" y1="${M.t}" x2="${px}" y2="${M.t + PH}" stroke="${m.color}" stroke-width="${i === 0 ? 3 : 2}"${i === 0 ? '' : ' stroke-dasharray="6 4"'}><title>${escapeXml(`${m.label}: ${fmtNum(m.threshold, 4)}`)}</title></line>`);
    items.push({ label: `${m.label} (${fmtNum(m.threshold, 4)})`, color: m.color, kind: i === 0 ? 'line' : 'dash' });
  });
  body.push(legend(items, 'tr'));
  const sub = `${bins} bins over ${fmtNum(lo, 4)} … ${fmtNum(hi, 4)}` + (infinite ? `; ${infinite} infinite score${infinite > 1 ? 's' : ''} not shown` : '');
  return frame(`Score distribution — ${level}`, sub, x, y, body.join('\n'), `Histogram of ${level} scores, normal against anomalous`);
}
