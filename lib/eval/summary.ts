/** The plain-text summary table `eval` and `run` print: one column per level. */
import type { LevelMetrics, MetricsFile, ThresholdMetrics } from './types';

const f4 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));

export function summaryTable(m: MetricsFile): string {
  const levels: LevelMetrics[] = [m.session, ...(m.line ? [m.line] : [])];
  const rows: [string, ...string[]][] = [];
  rows.push(['', ...levels.map((l) => l.level)]);
  rows.push(['items', ...levels.map((l) => l.items.toLocaleString('en-US'))]);
  rows.push(['anomalies', ...levels.map((l) => `${l.anomalies.toLocaleString('en-US')} (${(100 * l.anomalyRate).toFixed(2)}%)`)]);
  rows.push(['ROC-AUC', ...levels.map((l) => f4(l.rocAuc))]);
  rows.push(['PR-AUC (AP)', ...levels.map((l) => f4(l.averagePrecision))]);
  const block = (name: string, pick: (l: LevelMetrics) => ThresholdMetrics | null) => {
    const th = (t: ThresholdMetrics | null) => (t === null ? 'n/a' : t.threshold === null ? 'model decisions' : typeof t.threshold === 'number' ? String(Number(t.threshold.toPrecision(6))) : t.threshold);
    rows.push([name, ...levels.map((l) => th(pick(l)))]);
    rows.push(['  precision', ...levels.map((l) => f4(pick(l)?.precision))]);
    rows.push(['  recall', ...levels.map((l) => f4(pick(l)?.recall))]);
    rows.push(['  F1', ...levels.map((l) => f4(pick(l)?.f1))]);
    rows.push([`  F${m.beta}`, ...levels.map((l) => f4(pick(l)?.fBeta))]);
    rows.push(['  TP FP TN FN', ...levels.map((l) => { const c = pick(l)?.confusion; return c ? `${c.tp} ${c.fp} ${c.tn} ${c.fn}` : 'n/a'; })]);
  };
  const savedName = m.session.saved?.source === 'option' ? 'given threshold' : 'saved threshold';
  block(savedName, (l) => l.saved);
  block('best-F1 threshold', (l) => l.best);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)));
  return rows.map((r) => r.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]! + 2))).join('')).join('\n') + '\n';
}

