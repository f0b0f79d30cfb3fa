/**
 * `deepsentry score` with its reader thread (lib/pipeline/score_reader.ts: the file read, parsed, keyed and
 * masked in a worker while the main thread scores) against the same scoring read in one thread: the same
 * sessions.csv and lines.csv bytes, the same summary (warnings, counts), the same errors — on real HDFS lines
 * with every kind of bad line mixed in, gzip (whole and damaged), --with-text, a key filter, and models whose
 * sessions are time windows and count windows.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { DeepSentry, scoreLog, trainModel, type ScoreLogOptions } from '../../lib/pipeline';
import { ModelScorer, type ModelEvent } from '../../lib/live/model_scorer';
import { IssueLog } from '../../lib/logs/issues';
import { openLogInput } from '../../lib/logs/pipeline';
import { CHUNK_LINES, READER_THREAD_BYTES, ScoreReader, startScoreReader } from '../../lib/pipeline/score_reader';
import { runCli } from '../support/cli';
import { damagedGzips, hdfsSlice, tinyConfig, trainedModel } from '../support/pipeline-fixtures';
import { requireData } from '../support/data';
import { workDir } from '../support/tmp';

/** hdfs-dev's first 6,000 lines with bad lines of every kind spliced in (blank, CRLF, foreign, bad timestamp, out of order, invalid UTF-8, NUL). */
function messyLog(): string {
  const p = path.join(workDir(), 'reader-messy.log');
  if (!fs.existsSync(p)) {
    const lines = fs.readFileSync(hdfsSlice(6000), 'utf8').split('\n').filter((l) => l !== '');
    const parts: Buffer[] = [];
    lines.forEach((l, i) => {
      parts.push(Buffer.from(i % 997 === 5 ? `${l}\r\n` : `${l}\n`));
      if (i === 10) parts.push(Buffer.from('\n   \n'));
      if (i === 20) parts.push(Buffer.from('this is not an HDFS line\n'));
      if (i === 30) parts.push(Buffer.from('081399 203532 147 INFO dfs.DataNode: Receiving block blk_42 (a month 13)\n'));
      if (i === 4000) parts.push(Buffer.from('081109 000001 147 INFO dfs.DataNode$DataXceiver: Receiving block blk_77 src: /10.0.0.1:1 dest: /10.0.0.2:2\n'));
      if (i === 4100) parts.push(Buffer.concat([Buffer.from('081109 235959 147 INFO dfs.DataNode: bad bytes '), Buffer.from([0xc3, 0x28]), Buffer.from(' blk_78\n')]));
      if (i === 4200) parts.push(Buffer.from('081109 235959 147 INFO dfs.DataNode: a NUL \u0000 blk_79\n'));
    });
    fs.writeFileSync(p, Buffer.concat(parts));
  }
  return p;
}

/** scoreLog read in the reader thread and in this thread: both outputs and summaries, or both errors. */
async function bothWays(model: DeepSentry, log: string, name: string, o: ScoreLogOptions = {}) {
  const run = async (readerThread: boolean) => {
    const out = path.join(workDir(), `reader-${name}-${readerThread ? 'thread' : 'inline'}`);
    try {
      const s = await scoreLog(model, log, out, { ...o, readerThread, force: true });
      const files: Record<string, Buffer> = Object.fromEntries(['sessions.csv', 'lines.csv'].filter((f) => fs.existsSync(path.join(out, f))).map((f) => [f, fs.readFileSync(path.join(out, f))]));
      const { seconds: _s, files: _f, ...summary } = s;
      return { summary, files, error: null };
    } catch (e) {
      return { summary: null, files: {} as Record<string, Buffer>, error: e as Error };
    }
  };
  return { thread: await run(true), inline: await run(false) };
}

function expectSame(r: Awaited<ReturnType<typeof bothWays>>): void {
  if (r.inline.error) {
    expect(r.thread.error, 'the reader thread fails too').to.be.instanceOf(DeepSentryError);
    expect([(r.thread.error as DeepSentryError).code, r.thread.error?.message]).to.deep.equal([(r.inline.error as DeepSentryError).code, r.inline.error.message]);
    return;
  }
  expect(r.thread.error).to.equal(null);
  expect(r.thread.summary).to.deep.equal(r.inline.summary);
  expect(Object.keys(r.thread.files)).to.deep.equal(Object.keys(r.inline.files));
  for (const [f, b] of Object.entries(r.inline.files)) expect(r.thread.files[f].equals(b), `${f} byte for byte`).to.equal(true);
}

describe('score: the reader thread gives what reading in one thread gives', function () {
  this.timeout(600000);
  let model: DeepSentry;
  before(async function () {
    requireData(this);
    model = await DeepSentry.load(await trainedModel());
  });

  it('real HDFS lines with bad lines of every kind: same files, same summary (issues, warnings, counts)', async () => {
    const r = await bothWays(model, messyLog(), 'messy');
    expectSame(r);
    const s = r.inline.summary as { unparsed: number; warnings: string[]; sessions: number };
    expect(s.unparsed, 'blank lines are not counted; the foreign, bad-timestamp, invalid UTF-8 and NUL lines are').to.be.above(0);
    expect(s.warnings.join(' ')).to.match(/out of order/);
    expect(s.sessions).to.be.above(100);
  });

  it('with --with-text, with a key filter (run), and without lines.csv', async () => {
    expectSame(await bothWays(model, messyLog(), 'text', { withText: true }));
    expectSame(await bothWays(model, messyLog(), 'select', { selectKey: (k) => k.endsWith('1') || k.endsWith('7') }));
    expectSame(await bothWays(model, messyLog(), 'nolines', { lines: false }));
  });

  it('gzip: whole, and damaged with --accept-truncated (the warning) or without (the error)', async () => {
    const gz = damagedGzips(hdfsSlice(6000));
    expectSame(await bothWays(model, gz.whole, 'gz'));
    const t = await bothWays(model, gz.truncated, 'gz-truncated', { acceptTruncated: true });
    expectSame(t);
    expect((t.inline.summary as { warnings: string[] }).warnings.join(' ')).to.match(/damaged gzip/);
    const e = await bothWays(model, gz.crc, 'gz-crc');
    expect(e.inline.error).to.be.instanceOf(DeepSentryError);
    expectSame(e);
  });

  it('errors: a missing file, an empty file, a log of another format', async () => {
    const empty = path.join(workDir(), 'reader-empty.log');
    fs.writeFileSync(empty, '');
    const other = path.join(workDir(), 'reader-other.log');
    fs.writeFileSync(other, '{"msg":"hello"}\n{"msg":"world"}\n');
    for (const [log, what] of [
      [path.join(workDir(), 'no-such.log'), /no-such/],
      [empty, /empty/],
      [other, /different format/],
    ] as const) {
      const r = await bothWays(model, log, path.basename(log));
      expect(r.inline.error?.message).to.match(what);
      expectSame(r);
    }
    // cancelled: the same error, and no partial output left behind
    const ac = new AbortController();
    ac.abort();
    const c = await bothWays(model, messyLog(), 'cancelled', { signal: ac.signal });
    expect(c.inline.error).to.be.instanceOf(DeepSentryError).with.property('code', 'DS_CANCELLED');
    expectSame(c);
    for (const way of ['thread', 'inline']) expect(fs.readdirSync(path.join(workDir(), `reader-cancelled-${way}`)).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
  });

  it('session keys cross once and, past the bound on remembered keys, are forgotten and sent again: the same events', async () => {
    const log = messyLog();
    const opts = { idleTimeoutMs: model.logConfig.session.idleTimeoutMs, censorEnds: true, countWindows: true, windowLines: 0 };
    const row = (e: ModelEvent) => [e.session, e.lineNo, e.isSessionEnd, e.score];
    const inline = new ModelScorer(model, opts);
    const want: unknown[] = [];
    const input = await openLogInput(log, model.logConfig, new IssueLog(false, 10));
    for await (const b of input.batches) {
      for (let from = 0; from < b.lines.length; from += CHUNK_LINES) {
        const raw = b.lines.slice(from, from + CHUNK_LINES).map((text, i) => ({ seq: b.lineNos[from + i], lineNo: b.lineNos[from + i], offset: 0, text }));
        for (const e of await inline.scoreLines(raw)) want.push(row(e as ModelEvent));
      }
    }
    for (const e of await inline.flush()) want.push(row(e as ModelEvent));
    const threaded = new ModelScorer(model, opts);
    const got: unknown[] = [];
    let resets = 0;
    const reader = new ScoreReader({ file: log, name: log, logConfig: model.logConfig, acceptTruncated: false, withMessages: false, keysMax: 50 });
    for await (const c of reader.chunks()) {
      if (c.keysReset) resets++;
      for (const e of await threaded.scoreParsed(c)) got.push(row(e as ModelEvent));
    }
    for (const e of await threaded.flush()) got.push(row(e as ModelEvent));
    expect(resets, 'the bound was reached').to.be.above(0);
    expect(got.length).to.equal(want.length);
    expect(got).to.deep.equal(want);
  });

  it('models whose sessions are time windows or count windows', async () => {
    for (const mode of ['time', 'count'] as const) {
      const dir = path.join(workDir(), `reader-model-${mode}`);
      if (!fs.existsSync(path.join(dir, 'model.json'))) await trainModel([hdfsSlice(6000)], dir, { config: tinyConfig({ logs: { session: { mode } } }) });
      const m = await DeepSentry.load(dir);
      expect(m.logConfig.session.mode).to.equal(mode);
      const r = await bothWays(m, messyLog(), `mode-${mode}`);
      expectSame(r);
      expect((r.inline.summary as { sessions: number }).sessions).to.be.above(1);
    }
  });

  it('deepsentry score starts the reader before the model loads, with the session flags: the files of the same command on stdin (read in one thread)', () => {
    const big = hdfsSlice(40000);
    expect(fs.statSync(big).size, 'a log read in the reader thread').to.be.at.least(READER_THREAD_BYTES);
    // --session-key changes what the reader computes (the keys); --idle-timeout what the scoring thread does
    const flags = ['--session-key', 'blk_-?\\d{1,6}', '--idle-timeout', '20s', '--with-text', '--json'];
    const run = (log: string, out: string, input?: Buffer) => {
      const r = runCli(['score', '--model', model.directory as string, log, '--out', out, ...flags], input ? { input } : {});
      expect(r.code, r.stderr).to.equal(0);
      const { input: _i, seconds: _s, files: _f, ...summary } = JSON.parse(r.stdout);
      return { summary, files: ['sessions.csv', 'lines.csv'].map((f) => fs.readFileSync(path.join(out, f))) };
    };
    const file = run(big, path.join(workDir(), 'early-file'));
    const stdin = run('-', path.join(workDir(), 'early-stdin'), fs.readFileSync(big));
    expect(file.summary).to.deep.equal(stdin.summary);
    expect(file.files[0].equals(stdin.files[0]), 'sessions.csv byte for byte').to.equal(true);
    expect(file.files[1].equals(stdin.files[1]), 'lines.csv byte for byte').to.equal(true);
    // the flags took effect: the keys are the shortened ones
    expect(file.files[0].toString().split('\n')[1]).to.match(/^blk_-?\d{1,6},/);
  });

  it('deepsentry score stops its early reader when a check fails after it started (the output is there, no --force)', () => {
    const big = hdfsSlice(40000);
    const out = path.join(workDir(), 'early-exists');
    fs.mkdirSync(out, { recursive: true });
    fs.writeFileSync(path.join(out, 'sessions.csv'), 'an earlier run\n');
    const r = runCli(['score', '--model', model.directory as string, big, '--out', out], { timeout: 60000 });
    expect(r.signal, 'the process ends by itself').to.equal(null);
    expect(r.code).to.equal(1);
    expect(r.stderr).to.match(/--force/);
  });

  it("scoreLog refuses a reader thread started on another configuration than the model's, and stops it", async () => {
    const log = messyLog();
    const other = { ...model.logConfig, session: { ...model.logConfig.session, keyPattern: 'blk_\\d{1,3}' } };
    const reader = await startScoreReader({ file: log, name: log, logConfig: other, acceptTruncated: false, withMessages: false }, true);
    expect(reader).to.be.instanceOf(ScoreReader);
    let exited = false;
    (reader as unknown as { worker: { once(e: 'exit', f: () => void): void } }).worker.once('exit', () => (exited = true));
    const e = await scoreLog(model, log, path.join(workDir(), 'reader-other-spec'), { force: true, reader }).catch((x: unknown) => x);
    expect(e).to.be.instanceOf(DeepSentryError).with.property('code', 'DS_INVALID_ARGUMENT');
    expect((e as Error).message).to.match(/another log configuration/);
    await new Promise((r) => setImmediate(r));
    expect(exited, 'the reader thread was stopped').to.equal(true);
  });
});
