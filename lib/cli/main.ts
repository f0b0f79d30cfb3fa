/**
 * CLI entry point. Exit codes: 0 success, 1 failure (the message says what and where), 2 usage error.
 */
import type { Argv } from 'yargs';
import { DeepSentryError } from '../errors';
import { mark } from '../marks';
import { flagWording } from './flags';
import { withGlobalOptions } from './options';
import { commands } from './commands';
import { fastParse } from './fast';

/** yargs, loaded when first needed (~60 ms): the plain command lines are parsed without it (lib/cli/fast.ts). */
function yargsFor(args: string[]): Argv {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const m = require('yargs') as ((a: string[]) => Argv) | { default: (a: string[]) => Argv };
  return (typeof m === 'function' ? m : m.default)(args);
}

class UsageError extends Error {}

/** Exported apart from parsing so that docs and tests can walk the command tree. */
export function buildCli(args: string[], onHandlerError: (err: unknown) => void = (e) => { throw e; }) {
  let y = withGlobalOptions(yargsFor(args))
    .scriptName('deepsentry')
    .strict()
    .demandCommand(1, 'Name a command; see deepsentry --help')
    .recommendCommands()
    .help()
    // yargs renders the whole help text whenever a command runs (to have it at hand): ~30 ms of every
    // command's start spent wrapping text nobody reads. Wrapped to the terminal only when help is asked for.
    .wrap(args.some((a) => a === '--help' || a === 'help' || a.startsWith('--help=')) ? Math.min(110, process.stdout.columns || 100) : null);
  // A handler's own failure is a failure (exit 1), not a usage error: keep it away from yargs' fail().
  for (const c of commands) {
    const handler = c.handler;
    y = y.command({
      ...c,
      handler: async (argv) => {
        try {
          mark('command');
          await handler(argv);
        } catch (err) {
          onHandlerError(err);
        }
      },
    });
  }
  return y;
}

export async function main(args: string[]): Promise<number> {
  mark('cli');
  let usageError: string | null = null;
  let failure: unknown = null;
  const fast = fastParse(args, commands, withGlobalOptions);
  if (fast !== null) {
    try {
      mark('command');
      await fast.command.handler(fast.argv);
    } catch (err) {
      failure = err;
    }
  } else {
    const cli = buildCli(args, (err) => {
      failure = err;
    }).fail((msg, err) => {
      usageError = msg ?? err?.message ?? 'invalid usage';
      throw new UsageError(usageError); // stops yargs before any handler runs
    });
    try {
      await cli.parseAsync();
    } catch (err) {
      if (!(err instanceof UsageError)) failure = err;
    }
  }
  if (failure !== null && usageError === null) {
    const err = failure;
    const json = args.includes('--json');
    if (err instanceof DeepSentryError) {
      const message = flagWording(err.message);
      if (json) process.stdout.write(JSON.stringify({ error: { code: err.code, message } }) + '\n');
      else process.stderr.write(`deepsentry: ${message}\n`);
      if (args.includes('--verbose') || args.includes('-v')) process.stderr.write(`${err.stack}\n`);
      return 1;
    }
    const e = err as Error;
    process.stderr.write(`deepsentry: ${e?.message ?? String(err)}\n${e?.stack ?? ''}\n`);
    return 1;
  }
  if (usageError !== null) {
    process.stderr.write(`deepsentry: ${usageError}\nRun deepsentry --help for usage.\n`);
    return 2;
  }
  return 0;
}
