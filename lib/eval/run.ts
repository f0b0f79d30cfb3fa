/**
 * The whole evaluation in one call — labels, metrics, files — as `deepsentry eval` runs it and as `run`
 * (with --labels) should call it, so both commands produce the same outputs and warnings.
 */
import { DeepSentryError } from '../errors';
import { assertReadableFile } from './csv';
import { evaluate, type EvaluationResult } from './evaluate';
import { loadLineLabels, loadSessionLabels, type Labels } from './labels';
import type { ThresholdSource } from './types';
import { EVALUATION_FILES, writeEvaluation, type WrittenFiles } from './write';
import { createOutputDir } from '../outdir';

/** Options of {@link runEvaluation}. */
export interface RunEvaluationOptions {
  /** the directory with sessions.csv (and lines.csv) */
  scoresDir: string;
  /** a loghub BlockId,Label file, or (with `labelField`) a log whose lines carry their label */
  labelsFile?: string;
  /** labels already read (e.g. lineLabelsFromFormat), instead of labelsFile */
  labels?: Labels;
  /** per-line labels: the 1-based whitespace-separated field holding the label (BGL: 1) */
  labelField?: number;
  /** per-line labels: values meaning normal (default ['-']) */
  normalValues?: string[];
  /** judge at this threshold (score >= threshold); omitted: the model's own decisions in the scores files */
  threshold?: number;
  thresholdSource?: Extract<ThresholdSource, 'model' | 'option'>;
  /** output directory for metrics.json, the SVGs and report.html */
  outDir: string;
  /** the scored log: the report shows the top sessions' lines */
  logFile?: string;
  beta?: number;
  top?: number;
  dataset?: Record<string, unknown>;
  modelConfig?: Record<string, unknown> | null;
  /** replace an earlier evaluation in outDir (lib/outdir.ts); default: refuse it */
  force?: boolean;
  /** the caller has checked outDir already (runPipeline, which writes more into it) */
  outputChecked?: boolean;
  /** what the commands before warned about (training, scoring): the report shows them with its own */
  warnings?: string[];
}

/** What {@link runEvaluation} produced. */
export interface RunEvaluationResult {
  result: EvaluationResult;
  files: WrittenFiles;
  /** things the operator should know (unlabelled sessions or lines, no anomaly at all); not the ones given */
  warnings: string[];
  /** an earlier evaluation's files that force removed from outDir */
  replaced: string[];
}

export async function runEvaluation(o: RunEvaluationOptions): Promise<RunEvaluationResult> {
  if ((o.labelsFile === undefined) === (o.labels === undefined)) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', 'runEvaluation: give exactly one of labelsFile and labels');
  }
  if (o.labelsFile !== undefined) assertReadableFile(o.labelsFile, 'label file');
  if (o.logFile !== undefined) assertReadableFile(o.logFile, 'log file');
  if (o.normalValues !== undefined && o.labelField === undefined) {
    throw new DeepSentryError('DS_INVALID_ARGUMENT', 'normal label values describe per-line labels: give the label field too');
  }
  // The output folder before any work: an earlier evaluation there is refused unless force (the scores it
  // reads may be in the same folder: inputs, never removed).
  const out = o.outputChecked
    ? null
    : await createOutputDir(o.outDir, {
        writes: EVALUATION_FILES,
        inputs: [o.scoresDir, ...(o.labelsFile !== undefined ? [o.labelsFile] : []), ...(o.logFile !== undefined ? [o.logFile] : [])],
        ...(o.force ? { force: true } : {}),
      });
  const file = o.labelsFile as string;
  const labels = o.labels ?? (o.labelField !== undefined
    ? await loadLineLabels(file, { field: o.labelField, ...(o.normalValues ? { normalValues: o.normalValues } : {}) })
    : await loadSessionLabels(file));
  const result = await evaluate({
    scoresDir: o.scoresDir,
    labels,
    ...(o.threshold !== undefined ? { threshold: o.threshold, thresholdSource: o.thresholdSource ?? 'option' } : {}),
    ...(o.beta !== undefined ? { beta: o.beta } : {}),
    ...(o.top !== undefined ? { top: o.top } : {}),
  });
  const m = result.metrics;
  const warnings: string[] = [];
  const unlabelled = m.coverage.sessionsScored - m.coverage.sessionsLabelled;
  if (unlabelled > 0) warnings.push(`${unlabelled} of ${m.coverage.sessionsScored} scored sessions have no label and were left out`);
  const unlabelledLines = m.coverage.linesScored - m.coverage.linesLabelled;
  if (unlabelledLines > 0) {
    warnings.push(`${unlabelledLines} of ${m.coverage.linesScored} scored lines have no label and were left out${labels.kind === 'line' ? ' (is the label file the log that was scored?)' : ''}`);
  }
  if (m.session.anomalies === 0) warnings.push('no labelled session is anomalous: ROC-AUC, PR-AUC and best F1 are undefined');
  const files = await writeEvaluation(result, o.outDir, {
    dataset: { ...(o.logFile ? { log: o.logFile } : {}), ...(o.dataset ?? {}) },
    modelConfig: o.modelConfig ?? null,
    ...(o.logFile ? { logFile: o.logFile } : {}),
    warnings: [...(o.warnings ?? []), ...warnings],
  });
  return { result, files, warnings, replaced: out?.removed ?? [] };
}
