import type { Argv, CommandModule } from 'yargs';
import { FORMAT_DESCRIPTION, withAcceptTruncatedOption, withForceOption, withSessionOptions, type AcceptTruncatedOption, type ForceOption, type GlobalOptions, type SessionFlags } from '../options';

/** Arguments of `deepsentry prepare`. */
export interface PrepareArgs extends GlobalOptions, ForceOption, AcceptTruncatedOption, SessionFlags {
  /** log files (plain or gzip), read in order */
  logs?: string[];
  /** read stdin too, after the files (yargs drops a lone `-` argument, so stdin is a flag) */
  stdin?: boolean;
  /** format: auto (default), a built-in name, a loghub format string, regex:…, json:… */
  format?: string;
  /** stop at the first bad line with an error naming file and line */
  strict?: boolean;
  /** output directory of the prepared data */
  out: string;
}

export function withPrepareOptions<T>(y: Argv<T>) {
  return withSessionOptions(withAcceptTruncatedOption(withForceOption(y)))
    .positional('logs', { type: 'string', array: true, describe: 'log files (plain or gzip, detected by content), in order' })
    .option('stdin', { type: 'boolean', describe: 'also read stdin (plain or gzip), after the files' })
    .option('format', { type: 'string', describe: FORMAT_DESCRIPTION })
    .option('strict', { type: 'boolean', describe: 'the first bad line is an error (default: skip, count, report)' })
    .option('out', { type: 'string', demandOption: true, describe: 'output directory (manifest.json, vocab.json, messages.ndjson, lines.bin, sessions.ndjson)' })
    .check((argv) => {
      const logs = (argv.logs as string[] | undefined) ?? [];
      if (logs.length === 0 && !argv.stdin) throw new Error('Name at least one log file, or pass --stdin');
      return true;
    });
}

export const prepareCommand: CommandModule<object, PrepareArgs> = {
  command: 'prepare [logs..]',
  describe: 'parse, mask, tokenise and sessionise logs into a prepared-data directory (+ vocabulary)',
  builder: (y) => withPrepareOptions(y) as unknown as Argv<PrepareArgs>,
  handler: async (argv) => {
    const { runPrepare } = await import('./prepare-impl');
    await runPrepare(argv);
  },
};
