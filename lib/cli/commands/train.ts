import type { Argv, CommandModule } from 'yargs';
import type { GlobalOptions } from '../options';

/** Arguments of `deepsentry train`. */
export interface TrainArgs extends GlobalOptions {
  /** log files (plain or gzip), read in order */
  logs: string[];
  /** the model directory to write (replaced atomically) */
  out: string;
  /** log format (default: auto-detected) */
  format?: string;
  /** session key regex in the raw message (HDFS: blk_-?\d+) */
  sessionKey?: string;
  /** normal-only training: a loghub BlockId,Label file; only sessions labelled normal are trained on */
  normalLabels?: string;
}

export function withTrainOptions<T>(y: Argv<T>) {
  return y
    .positional('logs', { type: 'string', array: true, demandOption: true, describe: 'log files (plain or gzip), in order' })
    .option('out', { type: 'string', demandOption: true, describe: 'model directory to write (config, vocabulary, weights, thresholds, metrics)' })
    .option('format', { type: 'string', describe: 'log format: auto (default), hdfs, bgl, …, a loghub format string, regex:…, json:…' })
    .option('session-key', { type: 'string', describe: 'regex of the session key in the message (HDFS: blk_-?\\d+)' })
    .option('normal-labels', { type: 'string', describe: 'train only on the sessions this loghub BlockId,Label file labels normal (DeepLog/LogAnomaly protocol); model.json records it' });
}

export const trainCommand: CommandModule<object, TrainArgs> = {
  command: 'train <logs..>',
  describe: 'train every stage (text model, message vectors, detector, threshold) on a log, without labels',
  builder: (y) => withTrainOptions(y) as unknown as Argv<TrainArgs>,
  handler: async (argv) => {
    const { runTrain } = await import('./train-impl');
    await runTrain(argv);
  },
};
