import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../errors';
import { evaluate, loadLineLabels, loadSessionLabels, writeEvaluation, type LevelMetrics, type MetricsFile, type ThresholdMetrics } from '../../eval';
import { assertReadableFile } from '../../eval/csv';
import type { EvalArgs } from './eval';

/** The saved threshold and configuration of a model directory, as evaluation needs them. */
export interface ModelInfo {
  threshold: number;
  config: Record<string, unknown> | null;
}

/**
 * Reads a model directory's model.json for its saved threshold (`threshold`, or `thresholds.value`) and
 * its `config`. Missing or corrupt → DS_MODEL naming the file.
 */
export function readModelInfo(dir: string): ModelInfo {
  const file = path.join(dir, 'model.json');
  if (!fs.existsSync(dir)) throw new DeepSentryError('DS_MODEL', `model directory ${dir} does not exist`);
  if (!fs.existsSync(file)) throw new DeepSentryError('DS_MODEL', `${dir} is not a model directory: ${file} does not exist`);
  let m: Record<string, unknown>;
  try {
    m = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new DeepSentryError('DS_MODEL', `${file} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (m === null || typeof m !== 'object') throw new DeepSentryError('DS_MODEL', `${file} does not hold a JSON object`);
  const th = m.thresholds as Record<string, unknown> | undefined;
  const t = typeof m.threshold === 'number' ? m.threshold : th && typeof th === 'object' && typeof th.value === 'number' ? th.value : undefined;
  if (t === undefined || Number.isNaN(t)) throw new DeepSentryError('DS_MODEL', `${file} has no saved threshold (expected a number at "threshold" or "thresholds.value")`);
  const config = m.config && typeof m.config === 'object' ? (m.config as Record<string, unknown>) : null;
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
  const model = argv.model !== undefined ? readModelInfo(argv.model) : null;
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
