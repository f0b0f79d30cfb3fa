/**
 * Writes an evaluation to a directory: metrics.json, the SVG charts of each level and report.html.
 * Each file is written to a temporary name and renamed, so a reader never sees half a file.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../errors';
import { COLORS, prChartSvg, rocChartSvg, scoreDistributionSvg, type ChartMarker } from './charts';
import { readTextLines } from './csv';
import { fromScoreValue, type EvaluationResult, type LevelData } from './evaluate';
import { renderReport, type LevelCharts } from './report';
import type { LevelMetrics } from './types';
import { createOutputDir } from '../outdir';
import { EVALUATION_FILES } from './files';

/** Options of {@link writeEvaluation}. */
export interface WriteOptions {
  /** facts about the dataset for the report (e.g. `{ name: 'hdfs-dev', log: '…/HDFS.log' }`) */
  dataset?: Record<string, unknown>;
  /** the model's configuration, shown in the report */
  modelConfig?: Record<string, unknown> | null;
  /** the scored log: when given, the report shows the text of the listed sessions' lines */
  logFile?: string;
  /** warnings of the commands that produced the scores, shown in the report */
  warnings?: string[];
  title?: string;
}

export { EVALUATION_FILES };

/** The files written, by role. */
export interface WrittenFiles {
  metrics: string;
  report: string;
  charts: string[];
}

function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, file);
  } catch (err) {
    try { fs.rmSync(tmp, { force: true }); } catch { /* nothing left to clean */ }
    throw new DeepSentryError('DS_IO', `cannot write ${file}: ${(err as Error).message}`, { cause: err });
  }
}

function markers(m: LevelMetrics): ChartMarker[] {
  const out: ChartMarker[] = [];
  if (m.saved && m.saved.threshold !== null) out.push({ label: m.saved.source === 'option' ? 'given threshold' : 'saved threshold', threshold: fromScoreValue(m.saved.threshold), color: COLORS.saved });
  if (m.best && m.best.threshold !== null) out.push({ label: 'best F1', threshold: fromScoreValue(m.best.threshold), color: COLORS.best });
  return out;
}

function chartsOf(m: LevelMetrics, d: LevelData): LevelCharts {
  const mk = markers(m);
  return {
    roc: rocChartSvg(d.sweep, m.rocAuc, m.level, mk),
    pr: prChartSvg(d.sweep, m.averagePrecision, m.level, mk),
    scores: scoreDistributionSvg(d.scores, d.labels, m.level, mk),
  };
}

/** Fills in the text of the top sessions' lines from the scored log (streamed; only those lines are kept). */
async function attachLineTexts(result: EvaluationResult, logFile: string): Promise<void> {
  const wanted = new Map<number, { text?: string }[]>();
  for (const s of [...result.top, ...result.falseAlarms, ...result.missed]) for (const l of s.topLines) {
    const list = wanted.get(l.lineNo) ?? [];
    list.push(l);
    wanted.set(l.lineNo, list);
  }
  if (wanted.size === 0) return;
  const last = Math.max(...wanted.keys());
  for await (const { lineNo, text } of readTextLines(logFile, 'log file', { strict: false })) {
    const ls = wanted.get(lineNo);
    if (ls) for (const l of ls) l.text = text.length > 2000 ? text.slice(0, 2000) + '…' : text;
    if (lineNo >= last) break;
  }
}

/**
 * Writes metrics.json, <level>-roc.svg, <level>-pr.svg, <level>-scores.svg and report.html into `outDir`
 * (created if missing; runEvaluation checks it for an earlier run's files first).
 */
export async function writeEvaluation(result: EvaluationResult, outDir: string, options: WriteOptions = {}): Promise<WrittenFiles> {
  await createOutputDir(outDir);
  if (options.logFile) await attachLineTexts(result, options.logFile);
  const charts: string[] = [];
  const session = chartsOf(result.metrics.session, result.session);
  const line = result.metrics.line && result.line ? chartsOf(result.metrics.line, result.line) : null;
  for (const [level, c] of [['session', session], ['line', line]] as const) {
    if (!c) continue;
    for (const kind of ['roc', 'pr', 'scores'] as const) {
      const file = path.join(outDir, `${level}-${kind}.svg`);
      writeAtomic(file, `<?xml version="1.0" encoding="UTF-8"?>\n${c[kind]}\n`);
      charts.push(file);
    }
  }
  const metricsFile = path.join(outDir, 'metrics.json');
  writeAtomic(metricsFile, JSON.stringify(result.metrics, null, 2) + '\n');
  const report = path.join(outDir, 'report.html');
  const html = renderReport({
    result,
    charts: { session, line },
    ...(options.dataset ? { dataset: options.dataset } : {}),
    modelConfig: options.modelConfig ?? null,
    ...(options.warnings ? { warnings: options.warnings } : {}),
    ...(options.title ? { title: options.title } : {}),
  });
  writeAtomic(report, html);
  return { metrics: metricsFile, report, charts };
}
