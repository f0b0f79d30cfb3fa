import type { Argv, CommandModule } from 'yargs';
import { FORMAT_DESCRIPTION, withAcceptTruncatedOption, withForceOption, withSessionOptions, type AcceptTruncatedOption, type ForceOption, type GlobalOptions, type SessionFlags } from '../options';

/** Arguments of `deepsentry train`. */
export interface TrainArgs extends GlobalOptions, ForceOption, AcceptTruncatedOption, SessionFlags {
  /** log files (plain or gzip), read in order */
  logs: string[];
  /** the model directory to write (an earlier model there needs --force; replaced atomically) */
  out: string;
  /** log format (default: auto-detected) */
  format?: string;
  /** normal-only training: a loghub BlockId,Label file; only sessions labelled normal are trained on */
  normalLabels?: string;
}

export function withTrainOptions<T>(y: Argv<T>) {
  return withSessionOptions(withAcceptTruncatedOption(withForceOption(y)))
    .positional('logs', { type: 'string', array: true, demandOption: true, describe: 'log files (plain or gzip), in order' })
    .option('out', { type: 'string', demandOption: true, describe: 'model directory to write (config, vocabulary, weights, thresholds, metrics)' })
    .option('format', { type: 'string', describe: FORMAT_DESCRIPTION })
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
