import type { Argv, CommandModule } from 'yargs';
import { withForceOption, type ForceOption, type GlobalOptions } from '../options';

/** Arguments of `deepsentry eval`. */
export interface EvalArgs extends GlobalOptions, ForceOption {
  /** directory with sessions.csv (and lines.csv) written by `score` / `run` */
  scores: string;
  /** label file: loghub BlockId,Label CSV, or with --label-field a log whose lines carry a label field */
  labels: string;
  /** 1-based whitespace-separated field of each line of --labels holding a per-line label (BGL: 1) */
  labelField?: number;
  /** values of the label field meaning normal (default '-') */
  normalLabel?: string[];
  /** judge the model at this threshold (score >= threshold) instead of its saved one */
  threshold?: number;
  /** model directory: its saved threshold and configuration */
  model?: string;
  /** the scored log, to show the top sessions' line texts in the report */
  log?: string;
  beta: number;
  top: number;
  out: string;
}

export function withEvalOptions<T>(y: Argv<T>) {
  return withForceOption(y)
    .positional('scores', { type: 'string', demandOption: true, describe: 'scores directory (sessions.csv, optional lines.csv)' })
    .option('labels', { type: 'string', demandOption: true, describe: 'labels: loghub anomaly_label.csv (BlockId,Label), or a log with a per-line label field (see --label-field)' })
    .option('label-field', { type: 'number', describe: 'per-line labels: 1-based whitespace field of each line of --labels (BGL: 1)' })
    .option('normal-label', { type: 'string', array: true, describe: "per-line labels: field values meaning normal (default '-')" })
    .option('threshold', { type: 'number', describe: "evaluate at this threshold (score >= threshold) instead of the model's saved one" })
    .option('model', { type: 'string', describe: "model directory: use its saved threshold and show its configuration" })
    .option('log', { type: 'string', describe: 'the scored log: the report then shows the top sessions\' lines' })
    .option('beta', { type: 'number', default: 2, describe: 'beta of the F-beta score (2: recall counts twice)' })
    .option('top', { type: 'number', default: 10, describe: 'top-scoring sessions listed in the report' })
    .option('out', { type: 'string', demandOption: true, describe: 'output directory for metrics.json, *.svg, report.html' })
    .conflicts('threshold', 'model')
    .check((argv) => {
      const t = argv.threshold as number | undefined;
      if (t !== undefined && Number.isNaN(t)) throw new Error('Expected a number for --threshold');
      const f = argv['label-field'] as number | undefined;
      if (f !== undefined && (!Number.isInteger(f) || f < 1)) throw new Error(`Expected a positive integer for --label-field but received ${String(f)}`);
      if (argv['normal-label'] !== undefined && f === undefined) throw new Error('--normal-label needs --label-field (it describes per-line labels)');
      const b = argv.beta as number;
      if (!(b > 0) || !Number.isFinite(b)) throw new Error(`Expected a positive number for --beta but received ${String(b)}`);
      const top = argv.top as number;
      if (!Number.isInteger(top) || top < 0) throw new Error(`Expected a non-negative integer for --top but received ${String(top)}`);
      return true;
    });
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval <scores>',
  describe: 'evaluate scores against labels: metrics.json, ROC/PR/score-distribution SVGs and report.html',
  builder: (y) => withEvalOptions(y) as unknown as Argv<EvalArgs>,
  handler: async (argv) => {
    const { runEval } = await import('./eval-impl');
    await runEval(argv);
  },
};
