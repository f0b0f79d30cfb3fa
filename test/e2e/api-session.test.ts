/**
 * One answer for the same lines, whichever way they are scored: `deepsentry score`, the in-process API
 * (DeepSentry.session with an explicit end of input, and the one-shot scoreLines) and `deepsentry live
 * --follow` give identical per-session and per-line scores on a real hdfs-dev slice with the trained model —
 * sessions cut by the idle timeout by log time, the sessions still open at the end of input censored.
 * Also the session contract itself: sessions stay open across pushes, and calls after the end are refused.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { DeepSentry, scoreLog } from '../../lib/pipeline';
import type { ClosedSessionScore, LineScore } from '../../lib/pipeline/session';
import { runCli, startCli, until } from '../support/cli';
import { requireData } from '../support/data';
import { hdfsSlice, tinyConfig, trainedModel } from '../support/pipeline-fixtures';
import { trainModel } from '../../lib/pipeline';
import { tempDir } from '../support/tmp';

const rows = (file: string) => fs.readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));

describe('score, the API and live agree', function () {
  this.timeout(300_000);
  let modelDir: string;
  let log: string;
  let lines: string[];
  /** sessions.csv: key → score; lines.csv: `line_no|session` → score */
  const cliSessions = new Map<string, number>();
  const cliLines = new Map<string, number>();

  before(async function () {
    requireData(this);
    modelDir = await trainedModel();
    // The slice and one more line two hours after its last: a block of its own, still open at the end (censored
    // everywhere). It moves the log's clock past the count horizon, so `live --follow`, whose input never ends,
    // has judged every other block's count relations by the time it is stopped, as `score` judges them at the end
    // of its input.
    log = path.join(tempDir('api-log'), 'hdfs-10000-and-later.log');
    const slice = fs.readFileSync(hdfsSlice(10_000), 'utf8');
    const [, yy, mo, dd, hh, mi, ss] = /(\d\d)(\d\d)(\d\d) (\d\d)(\d\d)(\d\d) [^\n]*\n$/.exec(slice)!.map(Number);
    const later = new Date(Date.UTC(2000 + yy!, mo! - 1, dd!, hh! + 2, mi!, ss!)).toISOString(); // YYYY-MM-DDTHH:MM:SS
    const stamp = `${later.slice(2, 4)}${later.slice(5, 7)}${later.slice(8, 10)} ${later.slice(11, 13)}${later.slice(14, 16)}${later.slice(17, 19)}`;
    fs.writeFileSync(log, `${slice}${stamp} 5033 INFO dfs.DataNode$DataXceiver: Receiving block blk_1 src: /10.250.10.100:47477 dest: /10.250.10.100:50010\n`);
    lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
    const out = tempDir('api-score');
    const r = runCli(['score', log, '--model', modelDir, '--out', out, '--force']);
    expect(r.code, r.stderr).to.equal(0);
    for (const [k, s] of rows(path.join(out, 'sessions.csv'))) cliSessions.set(k!, Number(s));
    for (const [n, k, s] of rows(path.join(out, 'lines.csv'))) cliLines.set(`${n}|${k}`, Number(s));
  });

  /** Per key: max over its segments (as sessions.csv). */
  const byKey = (segments: readonly ClosedSessionScore[]) => {
    const m = new Map<string, number>();
    for (const s of segments) m.set(s.session, Math.max(m.get(s.session) ?? -Infinity, s.score));
    return m;
  };
  /** Scores as score writes them: float32 printed to 9 significant digits, which reads back exactly. */
  const f32 = (x: number) => Number(Math.fround(x).toPrecision(9));

  function expectSameSessions(got: Map<string, number>, what: string): void {
    expect(got.size, `${what}: sessions`).to.equal(cliSessions.size);
    const differ = [...cliSessions].filter(([k, s]) => f32(got.get(k) ?? NaN) !== s);
    expect(differ.slice(0, 5).map(([k, s]) => `${k}: score ${s}, ${what} ${got.get(k)}`), `${differ.length} sessions differ`).to.deep.equal([]);
  }

  function expectSameLines(got: readonly LineScore[], what: string): void {
    expect(got.length, `${what}: line events`).to.equal(cliLines.size);
    const differ = got.filter((l) => f32(l.score) !== cliLines.get(`${l.index + 1}|${l.session}`));
    expect(differ.slice(0, 5).map((l) => `line ${l.index + 1} ${l.session}: score ${cliLines.get(`${l.index + 1}|${l.session}`)}, ${what} ${l.score}`), `${differ.length} line events differ`).to.deep.equal([]);
  }

  let pushed: { lines: LineScore[]; ended: ClosedSessionScore[]; atEnd: ClosedSessionScore[] };

  it('the API (session: pushes of 1,000 lines, then end()) gives the scores of `deepsentry score`', async () => {
    const model = await DeepSentry.load(modelDir);
    const s = model.session();
    pushed = { lines: [], ended: [], atEnd: [] };
    for (let i = 0; i < lines.length; i += 1000) {
      const u = await s.push(lines.slice(i, i + 1000));
      pushed.lines.push(...u.lines);
      pushed.ended.push(...u.sessions);
    }
    const e = await s.end();
    expect(e.lines).to.deep.equal([]);
    pushed.atEnd = e.sessions;
    // Sessions span pushes (a block's lines come minutes apart); some end by the idle timeout before the end
    // of input, and at the end of input every open one is censored (the model has an idle timeout). Keys whose
    // sessions break a count relation get their count judgement (no lines) once quiet for the count horizon,
    // or at the end of input.
    expect(pushed.ended.length).to.be.greaterThan(0);
    expect(pushed.ended.every((x) => x.end === 'idle' || x.end === 'counts')).to.equal(true);
    expect(pushed.atEnd.length).to.be.greaterThan(0);
    expect(pushed.atEnd.every((x) => x.end === 'censored' || x.end === 'counts')).to.equal(true);
    const judged = [...pushed.ended, ...pushed.atEnd].filter((x) => x.end === 'counts');
    expect(judged.length).to.be.greaterThan(0);
    expect(judged.every((x) => x.lines.length === 0)).to.equal(true);
    const spanning = [...pushed.ended, ...pushed.atEnd].filter((x) => Math.floor(x.lines[0]! / 1000) !== Math.floor(x.lines[x.lines.length - 1]! / 1000));
    expect(spanning.length).to.be.greaterThan(0);
    expectSameLines(pushed.lines, 'API session');
    expectSameSessions(byKey([...pushed.ended, ...pushed.atEnd]), 'API session');
    await s.end().then(
      () => expect.fail('a second end() was accepted'),
      (err) => expect(err).to.be.instanceOf(DeepSentryError).with.property('message').that.matches(/end\(\): the session has ended/),
    );
    await s.push(lines.slice(0, 1)).then(
      () => expect.fail('a push after end() was accepted'),
      (err) => expect(err).to.be.instanceOf(DeepSentryError).with.property('code', 'DS_INVALID_ARGUMENT'),
    );
    const t = model.session({ worker: false });
    await t.push('one line' as unknown as string[]).then(
      () => expect.fail('a string was accepted as lines'),
      (err) => expect(err).to.be.instanceOf(DeepSentryError).with.property('message').that.matches(/push\(lines\): expected an array of strings/),
    );
    await t.push([lines[0]!, 42 as unknown as string]).then(
      () => expect.fail('a number was accepted as a line'),
      (err) => expect(err).to.be.instanceOf(DeepSentryError).with.property('message').that.matches(/lines\[1\] is number/),
    );
    await t.close();
    await t.end().then(
      () => expect.fail('end() after close() was accepted'),
      (err) => expect(err).to.be.instanceOf(DeepSentryError).with.property('message').that.matches(/been closed/),
    );
    model.dispose();
  });

  it('the one-shot scoreLines (the batch is the whole input), in the worker and in this thread, gives the same', async () => {
    const model = await DeepSentry.load(modelDir);
    const r = await model.scoreLines(lines);
    expectSameLines(r.lines, 'scoreLines');
    expectSameSessions(new Map(r.sessions.map((x) => [x.session, x.score])), 'scoreLines');
    expect(r.sessions.filter((x) => x.anomaly).length).to.equal([...cliSessions.values()].filter((x) => x >= model.threshold).length);
    const inThread = await model.scoreLines(lines, { worker: false });
    expect(inThread).to.deep.equal(r);
    expect(() => model.session({ chunkLines: 0 })).to.throw(DeepSentryError, /chunkLines/);
    model.dispose();
  });

  it('with more sessions open than logs.session.maxOpen, evicted sessions close unscored, as in `score`', async () => {
    const model = await DeepSentry.load(modelDir);
    model.logConfig.session.maxOpen = 20;
    const out = tempDir('api-evict');
    const summary = await scoreLog(model, log, out);
    const want = new Map(rows(path.join(out, 'sessions.csv')).map(([k, x]) => [k!, Number(x)]));
    const s = model.session({ worker: false });
    const segments: ClosedSessionScore[] = [];
    for (let i = 0; i < lines.length; i += 1000) segments.push(...(await s.push(lines.slice(i, i + 1000))).sessions);
    segments.push(...(await s.end()).sessions);
    const evicted = segments.filter((x) => x.end === 'evicted');
    expect(evicted.length).to.be.greaterThan(100);
    const got = byKey(segments);
    expect(got.size).to.equal(summary.sessions);
    const differ = [...want].filter(([k, x]) => f32(got.get(k) ?? NaN) !== x);
    expect(differ.slice(0, 5), `${differ.length} sessions differ`).to.deep.equal([]);
    model.dispose();
  });

  it('`deepsentry live --follow` gives the same per-line and per-session scores', async () => {
    expect(pushed, 'the API test ran first').to.not.equal(undefined);
    const dir = tempDir('api-live');
    const alerts = path.join(dir, 'alerts.ndjson');
    // A threshold below every score makes every event an alert: the alert file is the live scores.
    const c = startCli(['live', '--model', modelDir, '--follow', log, '--alerts', alerts, '--threshold-mode', 'fixed', '--threshold=-1e30', '--context', '1', '--poll-ms', '10', '--quiet']);
    const expected = pushed.lines.length + pushed.ended.length;
    const count = () => (fs.existsSync(alerts) ? fs.readFileSync(alerts, 'utf8').split('\n').length - 1 : 0);
    try {
      await until(() => count() >= expected || c.child.exitCode !== null, `${expected} live events`, 240_000);
    } finally {
      c.child.kill('SIGTERM');
      expect(await c.exit, c.err()).to.equal(0);
    }
    const events = fs.readFileSync(alerts, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { lineNo: number; session: string; score: number; isSessionEnd: boolean; endReason?: string });
    expect(events.length).to.equal(expected);
    expectSameLines(events.filter((e) => !e.isSessionEnd).map((e) => ({ index: e.lineNo - 1, session: e.session, score: e.score, anomaly: false })), 'live');
    const segments = events.map((e) => ({ session: e.session, score: e.score, anomaly: false, lines: [], end: 'idle' as const }));
    expectSameSessions(byKey(segments), 'live');
    expect(events.filter((e) => e.isSessionEnd).every((e) => e.endReason === 'idle' || e.endReason === 'counts')).to.equal(true);
  });

  it('a BOM, invalid UTF-8, a NUL byte and an over-long line: `score` and `live --follow` drop and count the same lines and score the rest alike', async () => {
    const dir = tempDir('api-policy');
    const clean = lines.slice(0, 3000);
    // The clean lines, with a BOM before the first and three bad lines among them (physical lines 11, 22, 33).
    const parts: Buffer[] = [Buffer.from([0xef, 0xbb, 0xbf])];
    clean.forEach((l, i) => {
      parts.push(Buffer.from(`${l}\n`));
      if (i === 9) parts.push(Buffer.concat([Buffer.from(l.slice(0, 40)), Buffer.from([0xff, 0xfe]), Buffer.from(`${l.slice(40)}\n`)]));
      if (i === 19) parts.push(Buffer.from(`${l.slice(0, 40)}\u0000${l.slice(40)}\n`));
      if (i === 29) parts.push(Buffer.from(`${l} ${'x'.repeat(2 << 20)}\n`));
    });
    const dirty = path.join(dir, 'dirty.log');
    fs.writeFileSync(dirty, Buffer.concat(parts));
    const cleanLog = path.join(dir, 'clean.log');
    fs.writeFileSync(cleanLog, clean.join('\n') + '\n');

    const score = (file: string, out: string) => {
      const r = runCli(['score', file, '--model', modelDir, '--out', out, '--json']);
      expect(r.code, r.stderr).to.equal(0);
      return JSON.parse(r.stdout) as { lines: number; parsed: number; unparsed: number; warnings: string[] };
    };
    const d = score(dirty, path.join(dir, 'dirty'));
    const c = score(cleanLog, path.join(dir, 'clean'));
    // The BOM costs no line; the three bad lines are dropped, counted and named.
    expect([d.lines, d.parsed, d.unparsed]).to.deep.equal([c.lines + 3, c.parsed, 3]);
    expect(d.warnings.join('\n')).to.match(/1 invalid utf8, 1 nul byte, 1 line too long \(first: .*dirty\.log:11: invalid UTF-8/);
    const sessionsOf = (out: string) => new Map(rows(path.join(out, 'sessions.csv')).map(([k, x]) => [k!, x!]));
    expect(sessionsOf(path.join(dir, 'dirty'))).to.deep.equal(sessionsOf(path.join(dir, 'clean')));

    // live --follow on the dirty file: the same line events (physical line numbers), the same lines dropped.
    const want = new Map(rows(path.join(dir, 'dirty', 'lines.csv')).map(([n, k, x]) => [`${n}|${k}`, Number(x)]));
    expect(want.has(`1|${rows(path.join(dir, 'dirty', 'lines.csv')).find(([n]) => n === '1')![1]}`), 'the line after the BOM is scored').to.equal(true);
    const alerts = path.join(dir, 'alerts.ndjson');
    const l = startCli(['live', '--model', modelDir, '--follow', dirty, '--alerts', alerts, '--threshold-mode', 'fixed', '--threshold=-1e30', '--context', '1', '--poll-ms', '10']);
    const lineEvents = () => (fs.existsSync(alerts) ? fs.readFileSync(alerts, 'utf8').split('\n').filter((x) => x.includes('"isSessionEnd":false')).length : 0);
    try {
      await until(() => lineEvents() >= want.size || l.child.exitCode !== null, `${want.size} live line events`, 240_000);
    } finally {
      l.child.kill('SIGTERM');
      expect(await l.exit, l.err()).to.equal(0);
    }
    const got = fs.readFileSync(alerts, 'utf8').trim().split('\n').map((x) => JSON.parse(x) as { lineNo: number; session: string; score: number; isSessionEnd: boolean }).filter((e) => !e.isSessionEnd);
    expect(got.length).to.equal(want.size);
    const differ = got.filter((e) => f32(e.score) !== want.get(`${e.lineNo}|${e.session}`));
    expect(differ.slice(0, 5), `${differ.length} live line events differ from score's`).to.deep.equal([]);
    expect(l.err()).to.match(/1 invalid utf8, 1 nul byte, 1 line too long \(first: .*dirty\.log:11: invalid UTF-8/);
    expect(l.err()).to.match(/0 unparsed/);
  });

  it('a model whose sessions are count windows: `score` and the API cut the same windows and give the same scores', async () => {
    const dir = tempDir('api-count');
    const model = path.join(dir, 'model');
    const slice = hdfsSlice(6000);
    await trainModel([slice], model, { config: tinyConfig({ logs: { session: { mode: 'count', windowLines: 50, idleTimeoutMs: null } } }) });
    const out = path.join(dir, 'score');
    const r = runCli(['score', slice, '--model', model, '--out', out]);
    expect(r.code, r.stderr).to.equal(0);
    const want = new Map(rows(path.join(out, 'sessions.csv')).map(([k, x, , n]) => [k!, [Number(x), Number(n)]]));
    // 6,000 parsed lines in windows of 50
    expect(want.size).to.equal(120);
    expect([...want.values()].every(([, n]) => n === 50)).to.equal(true);
    expect(rows(path.join(out, 'lines.csv')).length).to.equal(6000);
    const m = await DeepSentry.load(model);
    const got = await m.scoreLines(fs.readFileSync(slice, 'utf8').split('\n').filter(Boolean));
    expect(got.sessions.map((x) => [x.session, f32(x.score), x.lines.length])).to.deep.equal([...want].map(([k, [x, n]]) => [k, x, n]));
    m.dispose();
  });
});
