/**
 * lib/cli/fast.ts against yargs: on every command line it takes, the argv it gives is the one yargs gives the
 * command's handler (same keys, same values); the lines it must leave to yargs (help, usage errors, anything
 * doubtful) it leaves. yargs' argv is what buildCli hands the real command's handler, caught by swapping the
 * handler for the parse.
 */
import { expect } from 'chai';
import type { ArgumentsCamelCase } from 'yargs';
import { buildCli } from '../../lib/cli/main';
import { commands } from '../../lib/cli/commands';
import { fastParse } from '../../lib/cli/fast';
import { withGlobalOptions } from '../../lib/cli/options';

/** The argv yargs hands the handler of `args`' command, or null when yargs calls no handler (help, a usage error). */
async function yargsArgv(args: string[]): Promise<Record<string, unknown> | null> {
  const c = commands.find((x) => typeof x.command === 'string' && x.command.split(' ')[0] === args[0]);
  if (!c) throw new Error(`no command ${args[0]}`);
  const handler = c.handler;
  let got: Record<string, unknown> | null = null;
  c.handler = async (a: ArgumentsCamelCase) => {
    got = { ...a };
  };
  try {
    await buildCli(args)
      .fail(() => undefined)
      .exitProcess(false)
      .parseAsync();
  } catch {
    // a usage error: no handler ran
  } finally {
    c.handler = handler;
  }
  return got;
}

const fast = (args: string[]) => fastParse(args, commands, withGlobalOptions);

describe('CLI arguments without yargs (lib/cli/fast.ts): the argv yargs gives, or left to yargs', () => {
  const taken: string[][] = [
    ['score', 'x.log', '--model', 'm', '--out', 'o'],
    ['score', '--model', 'm', 'x.log', '--out', 'o', '-q', '--force'],
    ['score', '-', '--model', 'm', '--out', 'o', '--json'],
    ['score', 'x.log', '--model=m', '--out=o', '--no-lines', '--with-text', '--accept-truncated'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--precision', 'bf16', '--threads', '2', '--backend', 'native', '--seed', '7', '-v'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--idle-timeout', '20s', '--session-key', 'blk_\\d+', '--session-mode', 'key', '--session-lines', '50'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--idle-timeout', 'none', '--session-window', '5m', '--config', 'c.yaml'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--lines'],
    ['run', '--out', 'o'],
    ['run', 'x.log', '--out', 'o', '--labels', 'l.csv', '-q'],
    ['info'],
    ['info', '--json'],
    ['config', '--defaults'],
    ['encode', 'dir', '--force'],
    ['train-text', 'dir'],
    ['train-detector', 'dir'],
    ['publish', 'x.log', '--nats', 'nats://127.0.0.1:4222'],
    ['feedback', '--model', 'm', '--normal', 'n.ndjson', '--log', 'x.log'],
    ['live', '-', '--model', 'm'],
  ];
  for (const args of taken) {
    it(`${args.join(' ')}: yargs' argv`, async () => {
      const want = await yargsArgv(args);
      const got = fast(args);
      expect(want, 'yargs runs the handler').to.not.equal(null);
      if (got === null) {
        // a command this path does not take (its builder declares what only yargs does) is fine; score must be taken
        expect(args[0], `${args.join(' ')} is parsed without yargs`).to.not.equal('score');
        return;
      }
      expect(got.argv).to.deep.equal(want);
    });
  }

  const left: string[][] = [
    ['score', '--help'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--help'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--version'],
    ['score', 'x.log', '--model', 'm'],
    ['score', '--model', 'm', '--out', 'o'],
    ['score', 'x.log', 'y.log', '--model', 'm', '--out', 'o'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--model', 'n'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--threads', '0'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--threads', 'two'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--precision', 'fp16'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '-q', '-v'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--idle-timeout', 'soon'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--session-key', '('],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--no-such-flag'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--force', 'false'],
    ['score', 'x.log', '--model', 'm', '--out', 'o', '--', 'more'],
    ['score', '1234', '--model', 'm', '--out', 'o', '--seed', '-1'],
    ['train', 'x.log', '--out', 'm'],
    ['eval', 's', '--labels', 'l.csv', '--out', 'o'],
    ['prepare', 'x.log', '--out', 'o'],
    ['help'],
    ['--version'],
    ['nonsense'],
    [],
  ];
  for (const args of left) {
    it(`${args.join(' ') || '(nothing)'}: left to yargs`, () => {
      expect(fast(args)).to.equal(null);
    });
  }
});
