import type { Argv, CommandModule } from 'yargs';
import { withAcceptTruncatedOption, withForceOption, type AcceptTruncatedOption, type ForceOption, type GlobalOptions } from '../options';

/** Arguments of `deepsentry prepare`. */
export interface PrepareArgs extends GlobalOptions, ForceOption, AcceptTruncatedOption {
  /** log files (plain or gzip), read in order */
  logs?: string[];
  /** read stdin too, after the files (yargs drops a lone `-` argument, so stdin is a flag) */
  stdin?: boolean;
  /** format: auto (default), a built-in name, a loghub format string, regex:…, json:… */
  format?: string;
  /** session key regex in the raw message (HDFS: blk_-?\d+) */
  sessionKey?: string;
  /** how lines form sessions */
  sessionMode?: 'auto' | 'key' | 'field' | 'time' | 'count';
  /** stop at the first bad line with an error naming file and line */
  strict?: boolean;
  /** output directory of the prepared data */
  out: string;
}

export function withPrepareOptions<T>(y: Argv<T>) {
  return withAcceptTruncatedOption(withForceOption(y))
    .positional('logs', { type: 'string', array: true, describe: 'log files (plain or gzip, detected by content), in order' })
    .option('stdin', { type: 'boolean', describe: 'also read stdin (plain or gzip), after the files' })
    .option('format', {
      type: 'string',
      describe: 'auto (default), hdfs, bgl, spark, zookeeper, hpc, thunderbird, rfc5424, rfc3164, json, a loghub format string "<Date> <Time> <Level>: <Content>", regex:<named groups>, json:message=…,time=…,session=…',
    })
    .option('session-key', { type: 'string', describe: 'regex of the session key in the message (HDFS: blk_-?\\d+)' })
    .option('session-mode', { choices: ['auto', 'key', 'field', 'time', 'count'] as const, describe: 'how lines form sessions (default auto)' })
    .option('strict', { type: 'boolean', describe: 'the first bad line is an error (default: skip, count, report)' })
    .option('out', { type: 'string', demandOption: true, describe: 'output directory (manifest.json, vocab.json, messages.ndjson, lines.bin, sessions.ndjson)' })
    .check((argv) => {
      const logs = (argv.logs as string[] | undefined) ?? [];
      if (logs.length === 0 && !argv.stdin) throw new Error('Name at least one log file, or pass --stdin');
      const k = argv['session-key'] as string | undefined;
      if (k !== undefined) {
        try {
          new RegExp(k);
        } catch (e) {
          throw new Error(`Expected a regular expression for --session-key but received ${JSON.stringify(k)}: ${(e as Error).message}`);
        }
      }
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
