import type { Argv, CommandModule } from 'yargs';
import { stdinMarker, withAcceptTruncatedOption, withForceOption, withSessionOptions, withSetAsideNewOption, type AcceptTruncatedOption, type ForceOption, type GlobalOptions, type SessionFlags, type SetAsideNewOption } from '../options';

/** Arguments of `deepsentry score`. */
export interface ScoreArgs extends GlobalOptions, ForceOption, AcceptTruncatedOption, SessionFlags, SetAsideNewOption {
  /** model directory written by `deepsentry train` */
  model: string;
  /** the log to score (plain or gzip; - = stdin) */
  log: string;
  /** output directory for sessions.csv and lines.csv */
  out: string;
  /** write lines.csv (default true; --no-lines to skip) */
  lines: boolean;
  /** lines.csv carries each line's message */
  withText?: boolean;
}

export const scoreCommand: CommandModule<object, ScoreArgs> = {
  command: 'score <log>',
  describe: "score a log with a trained model: sessions.csv and lines.csv, anomaly at the model's saved threshold",
  builder: (y) =>
    withSetAsideNewOption(withSessionOptions(withAcceptTruncatedOption(withForceOption(y))))
      .positional('log', { type: 'string', demandOption: true, describe: 'log file to score (plain or gzip); - = stdin', coerce: stdinMarker })
      .option('model', { type: 'string', demandOption: true, describe: 'model directory written by deepsentry train' })
      .option('out', { type: 'string', demandOption: true, describe: 'output directory (sessions.csv, lines.csv)' })
      .option('lines', { type: 'boolean', default: true, describe: 'write lines.csv (--no-lines to skip it)' })
      .option('with-text', { type: 'boolean', describe: "lines.csv gets a text column: each line's message" }) as unknown as Argv<ScoreArgs>,
  handler: async (argv) => {
    const { runScore } = await import('./score-impl');
    await runScore(argv);
  },
};
