import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../errors';
import { runEvaluation, summaryTable } from '../../eval';
import { loadModelDir, MODEL_JSON } from '../../models/files';
import type { EvalArgs } from './eval';
import { reportOutput } from '../output';
import { describeModel } from '../../pipeline/describe';
import { flagWording } from '../flags';

/** The saved threshold and configuration of a model directory, as evaluation needs them. */
export interface ModelInfo {
  threshold: number;
  config: Record<string, unknown> | null;
  /** the model in words, for the report (lib/pipeline/describe.ts) */
  description: Record<string, string>;
  /** what training warned about (model.json metrics.warnings) */
  warnings: string[];
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
  const metrics = (json.metrics ?? {}) as { warnings?: unknown };
  const extra = (json.extra ?? {}) as { logConfig?: unknown; knownNormal?: unknown };
  return {
    threshold: t,
    config,
    description: describeModel({ directory: dir, config, thresholds: json.thresholds, metrics, logConfig: extra.logConfig, knownNormal: extra.knownNormal }),
    warnings: Array.isArray(metrics.warnings) ? metrics.warnings.map(String) : [],
  };
}

export async function runEval(argv: EvalArgs): Promise<void> {
  const model = argv.model !== undefined ? await readModelInfo(argv.model) : null;
  const threshold = argv.threshold ?? model?.threshold;
  const { result, files, warnings, replaced } = await runEvaluation({
    scoresDir: argv.scores,
    labelsFile: argv.labels,
    ...(argv.labelField !== undefined ? { labelField: argv.labelField } : {}),
    ...(argv.normalLabel ? { normalValues: argv.normalLabel.map(String) } : {}),
    ...(threshold !== undefined ? { threshold, thresholdSource: argv.threshold !== undefined ? 'option' as const : 'model' as const } : {}),
    outDir: argv.out,
    ...(argv.log !== undefined ? { logFile: argv.log } : {}),
    beta: argv.beta,
    top: argv.top,
    modelConfig: model ? model.description : null,
    ...(model ? { warnings: model.warnings } : {}),
    force: argv.force === true,
  });
  const m = result.metrics;
  if (argv.json) {
    process.stdout.write(JSON.stringify({ metrics: m, files, warnings: warnings.map(flagWording), replaced }) + '\n');
    return;
  }
  reportOutput(argv, argv.out, replaced, argv.quiet ? [] : warnings);
  if (argv.quiet) return;
  process.stdout.write(summaryTable(m));
  process.stdout.write(`\nwrote ${files.metrics}\n      ${files.report}\n      ${files.charts.length} SVG charts in ${argv.out}\n`);
}
