import type { Argv, CommandModule } from 'yargs';
import { stdinMarker, type GlobalOptions } from '../options';

/** Arguments of `deepsentry publish` (see lib/scale/publisher.ts). */
export interface PublishArgs extends GlobalOptions {
  log: string;
  nats: string;
  stream: string;
  partitions?: number;
  model?: string;
  format?: string;
  source?: string;
}

export const publishCommand: CommandModule<object, PublishArgs> = {
  command: 'publish <log>',
  describe: 'publish a log to a NATS JetStream stream partitioned by session key, for `deepsentry live --nats` workers',
  builder: (y) =>
    y
      .positional('log', { type: 'string', demandOption: true, describe: 'log file (plain or .gz); - = stdin', coerce: stdinMarker })
      .option('nats', { type: 'string', demandOption: true, describe: 'NATS server URL, e.g. nats://127.0.0.1:4222' })
      .option('stream', { type: 'string', default: 'DEEPSENTRY', describe: 'JetStream stream name (subjects <name in lower case>.p.<partition>)' })
      .option('partitions', { type: 'number', describe: 'partition count when the stream is new (default 12); must match an existing stream' })
      .option('model', { type: 'string', describe: "key lines by this model's log configuration (the workers' model: recommended)" })
      .option('format', { type: 'string', describe: 'without --model: the log format (default auto) with the default session keys' })
      .option('source', { type: 'string', describe: 'source name in message ids and alerts (default: the file name, or stdin)' })
      .check((a) => {
        if (a.partitions !== undefined && (!Number.isInteger(a.partitions) || a.partitions < 1 || a.partitions > 4096)) throw new Error(`Expected an integer in 1..4096 for --partitions but received ${String(a.partitions)}`);
        if (a.model !== undefined && a.format !== undefined) throw new Error('Give --model DIR or --format, not both (the model fixes the format)');
        return true;
      }) as unknown as Argv<PublishArgs>,
  handler: async (argv) => {
    const { runPublish } = await import('./scale-impl');
    await runPublish(argv);
  },
};
