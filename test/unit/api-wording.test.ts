/**
 * lib/ is a library first: its errors and warnings name API options and configuration keys, never the CLI's
 * flags; lib/cli/flags.ts rewrites those phrases into the flags before the CLI prints them. The first test scans
 * the library's source for a `--flag` in a message, the others check that each API phrase of a real library
 * message reads, through flagWording, as the CLI has always said it.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import ts from 'typescript';
import { decideBackend, type MachineProbe } from '../../lib/backend/select';
import type { NativeCapabilities } from '../../lib/backend/binding';
import { flagWording } from '../../lib/cli/flags';
import { loadSessionLabels } from '../../lib/eval/labels';
import { LiveThreshold } from '../../lib/live/thresholds';
import { parseListen } from '../../lib/live/server';
import { detectFormat, parseFormatArg } from '../../lib/logs/formats';
import { prepareLogs } from '../../lib/logs/prepared';
import { createOutputDir } from '../../lib/outdir';
import { SHORTER_SESSIONS, applyFlags, dataWarnings, defaultPipelineConfig } from '../../lib/pipeline/config';
import { connectNats, topology } from '../../lib/scale/topology';
import { tempDir } from '../support/tmp';

const LIB = path.resolve(__dirname, '../../lib');

/** A command-line flag in text: `--word` not inside a word (`a--b`) and not a CSS custom property (`--fg:`). */
const FLAG = /(^|[^\w-])--[a-z][a-z0-9-]*(?![\w:-])/;

/**
 * A backticked `deepsentry …` command line is advice to run that command (a model made by `deepsentry train`,
 * a session learnt with `deepsentry feedback --log`): it reads the same to a library caller, and names no
 * option of the API, so its flags are not the API's options misnamed. A template literal splits at `${…}`,
 * so the command may run to the end of the piece.
 */
const COMMAND = /`deepsentry [^`]*(`|$)/g;

const callee = (e: ts.Expression): string => (ts.isIdentifier(e) ? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : '');
const fnName = (n: ts.Node): string => {
  if ((ts.isFunctionDeclaration(n) || ts.isMethodDeclaration(n)) && n.name) return n.name.getText();
  if ((ts.isArrowFunction(n) || ts.isFunctionExpression(n)) && ts.isVariableDeclaration(n.parent)) return n.parent.name.getText();
  return '';
};

/**
 * Whether `n` makes a message for a caller: a throw, a `new …Error(…)`, a call of an error factory
 * (`invalidParameterError`, `ioError`) or of a warn function, a `warnings` variable or property, or the body
 * of a function that builds warnings or advice (dataWarnings, moreSessionsAdvice, …).
 */
function isMessageContext(n: ts.Node): boolean {
  if (ts.isThrowStatement(n)) return true;
  if (ts.isNewExpression(n) && /Error$/.test(callee(n.expression))) return true;
  if (ts.isCallExpression(n) && /Error$|warn/i.test(callee(n.expression))) return true;
  if ((ts.isVariableDeclaration(n) || ts.isPropertyAssignment(n)) && /warn/i.test(n.name.getText())) return true;
  return /warn|advice/i.test(fnName(n));
}

/** Every string and template piece inside a message context of lib/ (lib/cli excepted), with where it is. */
function libraryMessages(): { where: string; text: string }[] {
  const out: { where: string; text: string }[] = [];
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) {
        if (p !== path.join(LIB, 'cli')) walk(p);
      } else if (p.endsWith('.ts')) files.push(p);
    }
  };
  walk(LIB);
  for (const f of files) {
    const sf = ts.createSourceFile(f, fs.readFileSync(f, 'utf8'), ts.ScriptTarget.Latest, true);
    const visit = (n: ts.Node, inMessage: boolean) => {
      const here = inMessage || isMessageContext(n);
      if (here && (ts.isStringLiteral(n) || ts.isNoSubstitutionTemplateLiteral(n) || ts.isTemplateHead(n) || ts.isTemplateMiddle(n) || ts.isTemplateTail(n))) {
        out.push({ where: `${path.relative(LIB, f)}:${sf.getLineAndCharacterOfPosition(n.getStart()).line + 1}`, text: n.text });
      }
      ts.forEachChild(n, (c) => visit(c, here));
    };
    visit(sf, false);
  }
  return out;
}

const errorOf = async (f: () => unknown): Promise<string> => {
  try {
    await f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('no error thrown');
};

describe('library messages name API options; the CLI names its flags', () => {
  it('no error or warning of lib/ outside lib/cli names a --flag', () => {
    const messages = libraryMessages();
    // the scan sees the library's messages: hundreds of them, the ones below among them
    expect(messages.length).to.be.above(300);
    expect(messages.some((m) => m.where.startsWith(`backend${path.sep}select.ts`) && m.text.includes("precision: 'bf16'"))).to.equal(true);
    expect(messages.some((m) => m.where.startsWith(`pipeline${path.sep}config.ts`) && m.text.includes('logs.session.windowLines, now'))).to.equal(true);
    const flagged = messages.filter((m) => FLAG.test(m.text.replace(COMMAND, ''))).map((m) => `${m.where}: ${m.text}`);
    expect(flagged).to.deep.equal([]);
    // and the scan would see one
    expect(FLAG.test('pass --force to replace it')).to.equal(true);
    expect(FLAG.test(':root{--fg:#000}')).to.equal(false);
  });

  it('backend and precision: backend/precision options in the library, --backend/--precision in the CLI', async () => {
    const caps = { simd: 'avx2', threads: 2, cudaCompiled: false, cudaDeviceCount: 0, cudaError: 'not compiled', bf16Instructions: 'emulated' } as unknown as NativeCapabilities;
    const probe: MachineProbe = { capabilities: caps, nativeError: null };
    const cpu = await errorOf(() => decideBackend('cpu', probe, 'bf16'));
    expect(cpu).to.equal("precision: 'bf16': backend: 'cpu' computes in float64/float32 TypeScript; the bf16 tier runs on the native CPU and CUDA kernels (backend: 'native' or 'auto'; backend: 'cuda' with a device), or use precision: 'fp32'");
    expect(flagWording(cpu)).to.equal('--precision bf16: --backend cpu computes in float64/float32 TypeScript; the bf16 tier runs on the native CPU and CUDA kernels (--backend native or auto; --backend cuda with a device), or use --precision fp32');
    expect(flagWording(await errorOf(() => decideBackend('cuda', probe)))).to.equal('--backend cuda: CUDA not compiled into the addon (not compiled); use --backend native or auto');
    expect(flagWording(await errorOf(() => decideBackend('native', { capabilities: null, nativeError: 'not built' })))).to.equal(
      '--backend native: the native addon cannot be loaded (not built); build it with `npm run build:native` or use --backend cpu',
    );
  });

  it('output locations: force and outDir in the library, --force and --out in the CLI', async () => {
    const dir = tempDir('wording-out');
    fs.writeFileSync(path.join(dir, 'sessions.csv'), 'x\n');
    const m = await errorOf(() => createOutputDir(dir, { writes: ['sessions.csv'] }));
    expect(m).to.match(/: pass force: true to replace it \(only those files are removed\), or choose another outDir$/);
    expect(flagWording(m)).to.match(/: pass --force to replace it \(only those files are removed\), or choose another --out$/);
    const input = await errorOf(() => createOutputDir(dir, { writes: ['sessions.csv'], force: true, inputs: [path.join(dir, 'sessions.csv')] }));
    expect(flagWording(input)).to.match(/: --force will not remove it; choose another --out$/);
  });

  it('NATS deployment and live address: stream, nats, partitions, listen address', async () => {
    expect(flagWording(await errorOf(() => topology('a b')))).to.equal(`Expected a stream name of letters, digits, '-' or '_' for --stream but received "a b"`);
    expect(flagWording(await errorOf(() => connectNats('nats://a b', 'test')))).to.equal('Expected a NATS URL like nats://127.0.0.1:4222 for --nats but received "nats://a b"');
    expect(flagWording('Expected an integer in 1..4096 for partitions but received 0')).to.equal('Expected an integer in 1..4096 for --partitions but received 0');
    expect(flagWording('… is fixed (use another stream name, or omit partitions)')).to.equal('… is fixed (use another --stream name, or omit --partitions)');
    expect(flagWording(await errorOf(() => parseListen('localhost:99999')))).to.match(/^Expected HOST:PORT .* for --listen but received/);
  });

  it('live thresholds: threshold.mode, threshold.floor, threshold.window', async () => {
    expect(flagWording(await errorOf(() => new LiveThreshold({ mode: 'fixed' })))).to.equal(
      "threshold mode 'fixed' needs a saved threshold (the model has none): use --threshold-mode rolling or ewma, or give --threshold",
    );
    const rolling = new LiveThreshold({ mode: 'rolling', window: 4 });
    expect(flagWording(await errorOf(() => rolling.restore({ ...rolling.snapshot(), mode: 'ewma' })))).to.match(/use the same --threshold-mode$/);
    expect(flagWording(await errorOf(() => rolling.restore({ ...rolling.snapshot(), ring: [1, 2, 3, 4, 5] })))).to.match(/use the same --window or delete the state file$/);
  });

  it('log formats, sessions and labels: logs.format, logs.session.*, labelField', async () => {
    expect(flagWording(await errorOf(() => parseFormatArg('json:message')))).to.equal('Expected key=value in --format "json:message" but received "message"');
    expect(flagWording(await errorOf(() => parseFormatArg('json:x=1')))).to.equal('Unknown key "x" in --format "json:x=1" (message, time, timeFormat, session, label)');
    expect(flagWording(await errorOf(() => detectFormat(['???'], { year: 2020, utcOffsetMinutes: 0 })))).to.match(/; pass --format \(a built-in name, a loghub format string, regex:… or json:…\)$/);
    const dir = tempDir('wording-logs');
    const log = path.join(dir, 'a.log');
    fs.writeFileSync(log, '081109 203615 148 INFO dfs.DataNode: hello\n081109 203616 148 INFO dfs.DataNode: again\n');
    const key = await errorOf(() => prepareLogs([log], path.join(dir, 'k'), { format: 'hdfs', session: { mode: 'key', keyPattern: 'nomatch_\\d+' } }));
    expect(flagWording(key)).to.match(/matches no message: pass --session-key REGEX that matches one, or --session-mode time or count$/);
    const field = await errorOf(() => prepareLogs([log], path.join(dir, 'f'), { format: 'hdfs', session: { mode: 'field', field: 'Nope' } }));
    expect(flagWording(field)).to.match(/: pass --session-field NAME, or --session-mode time or count$/);
    const garbage = path.join(dir, 'garbage.log');
    fs.writeFileSync(garbage, 'not a log line\n');
    expect(flagWording(await errorOf(() => prepareLogs([garbage], path.join(dir, 'p'), { format: 'hdfs' })))).to.match(/; pass --format$/);
    expect(flagWording(`(${SHORTER_SESSIONS})`)).to.equal('(--session-mode time --session-window 10s, or --session-mode count --session-lines 20)');
    expect(flagWording('logs.session { mode: "time", windowMs: 1500 }')).to.equal('--session-mode time --session-window 1500ms');
    expect(flagWording('logs.session { mode: "time", maxOpen: 5 }')).to.equal('logs.session { mode: "time", maxOpen: 5 }');
    const count = dataWarnings({ sessionKeys: 2, heldBackSessions: 30, distinctMessages: 3 }, applyFlags(defaultPipelineConfig(), { session: { mode: 'count', windowLines: 50 } }));
    expect(count.map(flagWording)).to.deep.equal([
      'trained on 2 sessions (fewer than 100): too few examples of normal behaviour for the detector to learn it; give a longer log, or cut shorter count windows (--session-lines, now 50)',
      'the training sessions hold 3 distinct messages (fewer than 5): there is little order to learn; check that --format finds the message (<Content>) and that masking does not make every line alike',
    ]);
    const bgl = path.join(dir, 'bgl.csv');
    fs.writeFileSync(bgl, '- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 RAS KERNEL INFO ok\n');
    expect(flagWording(await errorOf(() => loadSessionLabels(bgl)))).to.match(/use a per-line label field \(--label-field\)$/);
  });

  it('feedback: the log option and the fine-tuning options', () => {
    expect(flagWording('feedback: 1 of 2 sessions are not in x.log (…): blk_1 (is the log option the log the sessions came from?)')).to.match(/\(is --log the log the sessions came from\?\)$/);
    expect(flagWording('session blk_1 still scores 12.0000 ≥ the threshold: more epochs, weight or seen (feedback options), or train again with it')).to.equal(
      'session blk_1 still scores 12.0000 ≥ the threshold: more --epochs, --weight or --seen, or train again with it',
    );
  });
});
