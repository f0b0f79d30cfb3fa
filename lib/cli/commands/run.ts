import type { Argv, CommandModule } from 'yargs';
import { FORMAT_DESCRIPTION, withAcceptTruncatedOption, withForceOption, withSessionOptions, withSetAsideNewOption, type AcceptTruncatedOption, type ForceOption, type GlobalOptions, type SessionFlags, type SetAsideNewOption } from '../options';

/** Arguments of `deepsentry run`. */
export interface RunArgs extends GlobalOptions, ForceOption, AcceptTruncatedOption, SessionFlags, SetAsideNewOption {
  /** the log (default: the embedded HDFS sample, with its labels) */
  log?: string;
  /** loghub BlockId,Label file to evaluate with (never used for training) */
  labels?: string;
  /** output directory: model/, sessions.csv, lines.csv, and with labels metrics.json, report.html, charts */
  out: string;
  /** fraction of the sessions (earliest first) to train on; the rest is scored */
  trainFraction?: number;
  format?: string;
  /** lines.csv carries each line's message */
  withText?: boolean;
  /** normal-only training: only the training sessions this loghub label file labels normal */
  normalLabels?: string;
}

export const runCommand: CommandModule<object, RunArgs> = {
  command: 'run [log]',
  describe: 'train on the earlier sessions of a log, score the rest and evaluate with --labels or the labels in its lines (no log: the embedded HDFS sample)',
  builder: (y) =>
    withSetAsideNewOption(withSessionOptions(withAcceptTruncatedOption(withForceOption(y))))
      .positional('log', { type: 'string', describe: 'log file (plain or gzip); default: the embedded HDFS sample with its labels' })
      .option('labels', { type: 'string', describe: 'labels for evaluation: loghub anomaly_label.csv (BlockId,Label); without it, a log whose format carries a label per line (BGL) is evaluated against those' })
      .option('out', { type: 'string', demandOption: true, describe: 'output directory' })
      .option('train-fraction', { type: 'number', describe: 'fraction of sessions, in time order, to train on (default 0.5)' })
      .option('format', { type: 'string', describe: FORMAT_DESCRIPTION })
      .option('with-text', { type: 'boolean', describe: "lines.csv gets a text column: each line's message" })
      .option('normal-labels', { type: 'string', describe: 'train only on the training sessions this loghub BlockId,Label file labels normal (may be the --labels file)' })
      .check((argv) => {
        const f = argv['train-fraction'] as number | undefined;
        if (f !== undefined && !(f > 0 && f < 1)) throw new Error(`Expected a number in (0, 1) for --train-fraction but received ${String(f)}`);
        return true;
      }) as unknown as Argv<RunArgs>,
  handler: async (argv) => {
    const { runRun } = await import('./run-impl');
    await runRun(argv);
  },
};
