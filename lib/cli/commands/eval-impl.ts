import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../errors';
import { evaluate, loadLineLabels, loadSessionLabels, writeEvaluation, type LevelMetrics, type MetricsFile, type ThresholdMetrics } from '../../eval';
import { assertReadableFile } from '../../eval/csv';
import { loadModelDir, MODEL_JSON } from '../../models/files';
import type { EvalArgs } from './eval';

/** The saved threshold and configuration of a model directory, as evaluation needs them. */
export interface ModelInfo {
  threshold: number;
  config: Record<string, unknown> | null;
}

/** A fitted threshold as lib/models saves it: `{ value, method, … }` (scores ≥ value are anomalies). */
function thresholdValue(t: unknown): number | undefined {
  if (typeof t === 'number') return t;
  if (t !== null && typeof t === 'object' && typeof (t as { value?: unknown }).value === 'number') return (t as { value: number }).value;
  return undefined;
}

/**
 * Reads a model directory through the model loader (format, version and checksums checked: a missing or
 * corrupt directory is DS_MODEL naming the file) and picks its saved session threshold: `thresholds` itself
 * when it is a fitted threshold, else `thresholds.session`, else its only fitted threshold.
 */
export async function readModelInfo(dir: string): Promise<ModelInfo> {
  if (!fs.existsSync(dir)) throw new DeepSentryError('DS_MODEL', `model directory ${dir} does not exist`);
  const { json } = await loadModelDir(dir);
  const th = json.thresholds as Record<string, unknown> | null;
  let t = thresholdValue(th);
  if (t === undefined && th && typeof th === 'object') {
    t = thresholdValue(th.session);
    if (t === undefined) {
      const fitted = Object.values(th).map(thresholdValue).filter((v): v is number => v !== undefined);
      if (fitted.length === 1) t = fitted[0];
    }
  }
  const file = path.join(dir, MODEL_JSON);
  if (t === undefined || Number.isNaN(t)) {
    throw new DeepSentryError('DS_MODEL', `${file} has no saved session threshold (thresholds is ${JSON.stringify(th)?.slice(0, 120)}); pass --threshold instead`);
  }
  const config = json.config && typeof json.config === 'object' ? (json.config as Record<string, unknown>) : null;
  return { threshold: t, config };
}

const f4 = (x: number | null | undefined) => (x === null || x === undefined ? 'n/a' : x.toFixed(4));

/** The human summary: one column per level. */
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

export async function runEval(argv: EvalArgs): Promise<void> {
  assertReadableFile(argv.labels, 'label file');
  const labels = argv.labelField !== undefined
    ? await loadLineLabels(argv.labels, { field: argv.labelField, ...(argv.normalLabel ? { normalValues: argv.normalLabel.map(String) } : {}) })
    : await loadSessionLabels(argv.labels);
  const model = argv.model !== undefined ? await readModelInfo(argv.model) : null;
  if (argv.log !== undefined) assertReadableFile(argv.log, 'log file');
  const threshold = argv.threshold ?? model?.threshold;
  const result = await evaluate({
    scoresDir: argv.scores,
    labels,
    ...(threshold !== undefined ? { threshold, thresholdSource: argv.threshold !== undefined ? 'option' as const : 'model' as const } : {}),
    beta: argv.beta,
    top: argv.top,
  });
  const files = await writeEvaluation(result, argv.out, {
    dataset: { ...(argv.log ? { log: argv.log } : {}) },
    modelConfig: model ? model.config ?? { model: argv.model } : null,
    ...(argv.log ? { logFile: argv.log } : {}),
  });
  const m = result.metrics;
  const warnings: string[] = [];
  const unlabelled = m.coverage.sessionsScored - m.coverage.sessionsLabelled;
  if (unlabelled > 0) warnings.push(`${unlabelled} of ${m.coverage.sessionsScored} scored sessions have no label and were left out`);
  const unlabelledLines = m.coverage.linesScored - m.coverage.linesLabelled;
  if (unlabelledLines > 0) warnings.push(`${unlabelledLines} of ${m.coverage.linesScored} scored lines have no label and were left out${labels.kind === 'line' ? ' (is the label file the log that was scored?)' : ''}`);
  if (m.session.anomalies === 0) warnings.push('no labelled session is anomalous: ROC-AUC, PR-AUC and best F1 are undefined');
  if (argv.json) {
    process.stdout.write(JSON.stringify({ metrics: m, files, warnings }) + '\n');
    return;
  }
  if (argv.quiet) return;
  for (const w of warnings) process.stderr.write(`deepsentry: warning: ${w}\n`);
  process.stdout.write(summaryTable(m));
  process.stdout.write(`\nwrote ${files.metrics}\n      ${files.report}\n      ${files.charts.length} SVG charts in ${argv.out}\n`);
}
