import type { Argv, CommandModule } from 'yargs';
import { withAcceptTruncatedOption, withForceOption, type AcceptTruncatedOption, type ForceOption, type GlobalOptions } from '../options';

/** Arguments of `deepsentry feedback`. */
export interface FeedbackArgs extends GlobalOptions, ForceOption, AcceptTruncatedOption {
  /** the model directory to update (replaced atomically by the new version unless --out) */
  model: string;
  /** sessions to learn as normal: alerts NDJSON, a sessions.csv (its flagged rows) or session ids, one per line */
  normal: string;
  /** the log the sessions came from */
  log: string;
  /** write the new version here instead of replacing --model */
  out?: string;
  epochs?: number;
  learningRate?: number;
  weight?: number;
  seen?: number;
  replay?: number;
  /** read the log as score does, the messages common and new set aside (default true) */
  setAsideNew?: boolean;
}

export const feedbackCommand: CommandModule<object, FeedbackArgs> = {
  command: 'feedback',
  describe: 'learn false alarms as normal (DeepLog-style online update): fine-tune the model on them with a replay of normal sessions (messages in them it never saw become known ones), save a new version',
  builder: (y) =>
    withAcceptTruncatedOption(withForceOption(y))
      .option('model', { type: 'string', demandOption: true, describe: 'model directory to update (replaced atomically by its new version unless --out)' })
      .option('normal', { type: 'string', demandOption: true, describe: "sessions that are normal: live's alerts NDJSON, a sessions.csv (its rows with anomaly = 1: keep only the false alarms) or session ids, one per line" })
      .option('log', { type: 'string', demandOption: true, describe: 'the log those sessions came from (plain or gzip): their lines and the replayed normal sessions are read from it' })
      .option('out', { type: 'string', describe: 'write the new version to this model directory instead of replacing --model' })
      .option('epochs', { type: 'number', describe: 'fine-tuning epochs (default 10)' })
      .option('learning-rate', { type: 'number', describe: 'fine-tuning learning rate (default 0.003)' })
      .option('weight', { type: 'number', describe: 'each marked session counts as this many sessions in the fine-tuning (default 2000)' })
      .option('seen', { type: 'number', describe: "each message of a marked session counts as seen this many more times in the detector's rarity term (default 100)" })
      .option('replay', { type: 'number', describe: 'at most this many normal sessions of the log replayed (default 20000)' })
      .option('set-aside-new', {
        type: 'boolean',
        default: true,
        describe: 'read the log as `deepsentry score` scores it: the messages it never saw that 5 % of the sessions or more hold are left out, not learnt; --no-set-aside-new learns them too',
      })
      .check((argv) => {
        for (const k of ['epochs', 'weight', 'seen'] as const) {
          const v = argv[k] as number | undefined;
          if (v !== undefined && !(Number.isInteger(v) && v >= 1)) throw new Error(`Expected a positive integer for --${k} but received ${String(v)}`);
        }
        const r = argv.replay as number | undefined;
        if (r !== undefined && !(Number.isInteger(r) && r >= 0)) throw new Error(`Expected a non-negative integer for --replay but received ${String(r)}`);
        const lr = argv['learning-rate'] as number | undefined;
        if (lr !== undefined && !(lr > 0 && Number.isFinite(lr))) throw new Error(`Expected a positive number for --learning-rate but received ${String(lr)}`);
        return true;
      }) as unknown as Argv<FeedbackArgs>,
  handler: async (argv) => {
    const { runFeedback } = await import('./feedback-impl');
    await runFeedback(argv);
  },
};
