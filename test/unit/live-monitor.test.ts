import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { createScorer } from '../../lib/live/engine';
import { LiveMonitor, type MonitorOptions } from '../../lib/live/monitor';
import { NoveltyScorer } from '../../lib/live/novelty';
import { NdjsonFileSink } from '../../lib/live/sinks';
import { packEvents, packLines, unpackEvents, unpackLines } from '../../lib/live/worker';
import { ParsedEncoder } from '../../lib/live/parsed_lines';
import { resolveLogConfig } from '../../lib/logs/config';
import { configuredFormat } from '../../lib/logs/formats';
import { Masker } from '../../lib/logs/masking';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { StateStore } from '../../lib/live/state';
import { HotHistogram } from '../../lib/live/metrics';
import { Histogram, Registry } from 'prom-client';
import { monitorStream } from '../../lib/live/stream';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Alert, JudgedEvent, LineScorer, RawLine, ScoredEvent } from '../../lib/live/types';
import { hdfsLines } from '../support/live-fixtures';
import { tempDir } from '../support/tmp';

const hdfs = hdfsLines;

/** A real NoveltyScorer that also records the size of every batch it was given (to observe batching). */
class RecordingScorer extends NoveltyScorer {
  batches: number[] = [];
  override async scoreLines(lines: RawLine[]): Promise<ScoredEvent[]> {
    this.batches.push(lines.length);
    return super.scoreLines(lines);
  }
}

const rolling: MonitorOptions['threshold'] = { mode: 'rolling', window: 500, k: 3 };

async function runAll(scorer: LineScorer, lines: string[], chunk: (i: number) => number, opts: Partial<MonitorOptions> = {}) {
  const m = new LiveMonitor(scorer, { threshold: rolling, tickMs: 0, ...opts });
  const events: JudgedEvent[] = [];
  const alerts: Alert[] = [];
  m.on('event', (e) => events.push(e));
  m.on('anomaly', (a) => alerts.push(a));
  await m.start();
  for (let i = 0, k = 0; i < lines.length; k++) {
    const n = chunk(k);
    await m.push(lines.slice(i, i + n));
    i += n;
    if (k % 3 === 0) await new Promise((r) => setImmediate(r)); // let some batches start mid-stream
  }
  await m.stop({ flushSessions: true });
  return { m, events, alerts };
}
const key = (e: JudgedEvent) => `${e.seq}|${e.session}|${e.isSessionEnd}|${e.score.toFixed(9)}|${e.threshold.toFixed(9)}|${e.anomaly}`;
const alertKey = (a: Alert) => JSON.stringify({ ...a, time: undefined });

describe('live monitor', function () {
  let dir: string;
  beforeEach(() => {
    dir = tempDir('mon');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lines arriving together go to the scorer in one call; maxBatchLines splits them', async () => {
    const s = new RecordingScorer({ logs: { format: 'hdfs' } });
    const m = new LiveMonitor(s, { threshold: rolling, tickMs: 0 });
    await m.start();
    for (const l of hdfs(100)) m.offer(l); // 100 separate arrivals within one tick
    await m.idle();
    expect(s.batches).to.deep.equal([100]);
    await m.stop();

    const s2 = new RecordingScorer({ logs: { format: 'hdfs' } });
    const m2 = new LiveMonitor(s2, { threshold: rolling, tickMs: 0, maxBatchLines: 10 });
    await m2.start();
    m2.offer(hdfs(25));
    await m2.idle();
    expect(s2.batches).to.deep.equal([10, 10, 5]);
    await m2.stop();
  });

  it('events and alerts do not depend on how lines are cut into batches', async () => {
    const lines = hdfs(6000);
    const a = await runAll(new NoveltyScorer(), lines, () => 1000);
    const b = await runAll(new NoveltyScorer(), lines, (k) => 1 + ((k * 7919) % 37), { maxBatchLines: 13 });
    expect(a.events.length).to.be.greaterThan(6000);
    expect(a.alerts.length).to.be.greaterThan(0);
    expect(b.events.map(key)).to.deep.equal(a.events.map(key));
    expect(b.alerts.map(alertKey)).to.deep.equal(a.alerts.map(alertKey));
  });

  it('a scorer in a worker thread gives the same events and alerts (windows fetched on demand)', async () => {
    const lines = hdfs(4000);
    const local = await runAll(new NoveltyScorer(), lines, () => 500);
    const worker = await createScorer(undefined, { scorer: 'novelty', worker: true });
    expect(worker.constructor.name).to.equal('WorkerScorer');
    const remote = await runAll(worker, lines, () => 500);
    expect(remote.events.map(key)).to.deep.equal(local.events.map(key));
    expect(remote.alerts.map(alertKey)).to.deep.equal(local.alerts.map(alertKey));
    expect(remote.alerts[0]!.window.length).to.be.greaterThan(0);
  });

  it('as a stream: raw bytes in (any chunking), the same judged events out, sessions ended at the end', async () => {
    const lines = hdfs(3000);
    const want = await runAll(new NoveltyScorer(), lines, () => 3000);
    const m = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0 });
    await m.start();
    const bytes = Buffer.from(lines.join('\n')); // no final newline: the last line still counts
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 777) chunks.push(bytes.subarray(i, i + 777)); // cuts lines anywhere
    const got: JudgedEvent[] = [];
    await pipeline(Readable.from(chunks), monitorStream(m), async function* (events: AsyncIterable<JudgedEvent>) {
      for await (const e of events) got.push(e);
    });
    await m.stop();
    expect(got.map(key)).to.deep.equal(want.events.map(key));
    expect(got.filter((e) => e.isSessionEnd && e.endReason === 'flush').length).to.be.greaterThan(0);
  });

  it('alerts carry the session, score, threshold, context window and what was expected', async () => {
    const { alerts } = await runAll(new NoveltyScorer({ windowLines: 4 }), hdfs(3000), () => 3000);
    expect(alerts.length).to.be.greaterThan(0);
    for (const a of alerts) {
      expect(a.score).to.be.greaterThan(a.threshold);
      expect(a.window.length).to.be.within(1, 4);
      expect(a.line).to.equal(a.window[a.window.length - 1]);
      if (!a.isSessionEnd) expect(a.line).to.contain(a.session);
      expect(a.id).to.equal(a.isSessionEnd ? `${a.seq}:end:${a.session}` : `${a.seq}:${a.session}`);
    }
    expect(alerts.some((a) => a.expected !== undefined)).to.equal(true);
  });

  it('sessions end after the idle timeout (event time), and the end event is scored', async () => {
    const s = new NoveltyScorer({ idleTimeoutMs: 60_000 });
    const m = new LiveMonitor(s, { threshold: { mode: 'rolling', window: 10, warmup: 1000 }, tickMs: 0 });
    const ends: JudgedEvent[] = [];
    m.on('event', (e) => e.isSessionEnd && ends.push(e));
    await m.start();
    const base = hdfs(200).slice(0, 20); // 20 lines within one minute
    await m.push(base);
    await m.idle();
    expect(ends).to.deep.equal([]);
    // A line two minutes later (another block): every earlier session has been idle for over 60 s.
    await m.push('081109 210000 1 INFO dfs.DataNode$DataXceiver: Receiving block blk_42 src: /10.0.0.1:1 dest: /10.0.0.2:2');
    await m.idle();
    const open = new Set(base.map((l) => /blk_-?\d+/.exec(l)![0]));
    expect(new Set(ends.map((e) => e.session))).to.deep.equal(open);
    expect(ends.every((e) => e.endReason === 'idle' && Number.isFinite(e.score))).to.equal(true);
    expect(s.stats().openSessions).to.equal(1);
    await m.stop();
  });

  it('a quiet stream ends idle sessions by wall time (tick), not while lines flow', async () => {
    const s = new NoveltyScorer({ idleTimeoutMs: 50 });
    await s.scoreLines(hdfs(20).map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text })));
    const open = s.stats().openSessions;
    expect(open).to.be.greaterThan(0);
    expect(await s.tick(Date.now())).to.deep.equal([]); // not quiet long enough
    const ends = await s.tick(Date.now() + 1000);
    expect(ends.length).to.equal(open);
    expect(ends.every((e) => e.isSessionEnd && e.endReason === 'idle')).to.equal(true);
    expect(s.stats().openSessions).to.equal(0);
  });

  it('a wall-clock tick before the first line does not move the clock: a log with older timestamps still ends its sessions by them', async () => {
    // A monitor started on a quiet file ticks before any line: the clock must stay where the log puts it (2008
    // here, or a log whose times lag the wall clock), or no session would ever end by its idle timeout.
    const run = async (tickFirst: boolean) => {
      const s = new NoveltyScorer({ idleTimeoutMs: 60_000, logs: { format: 'hdfs' } });
      if (tickFirst) expect(await s.tick(Date.now())).to.deep.equal([]);
      const at = (t: string, b: number) => `081109 ${t} 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_${b} src: /10.0.0.1:1 dest: /10.0.0.2:2`;
      const lines = [at('203518', 1), at('203519', 2), at('204000', 3)]; // blk_1 and blk_2 idle for over 60 s at 20:40
      const events = await s.scoreLines(lines.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text })));
      return events.filter((e) => e.isSessionEnd).map((e) => [e.session, e.endReason]);
    };
    expect(await run(false)).to.deep.equal([
      ['blk_1', 'idle'],
      ['blk_2', 'idle'],
    ]);
    expect(await run(true)).to.deep.equal(await run(false));
  });

  it('open sessions are bounded: the least recently active is evicted, scored, and counted', async () => {
    const s = new NoveltyScorer({ maxOpenSessions: 3, idleTimeoutMs: null, logs: { format: 'hdfs' } });
    const m = new LiveMonitor(s, { threshold: rolling, tickMs: 0 });
    const ends: JudgedEvent[] = [];
    m.on('event', (e) => e.isSessionEnd && ends.push(e));
    await m.start();
    const lines = [1, 2, 3, 4, 5].map((b) => `081109 203518 143 INFO dfs.DataNode$DataXceiver: Receiving block blk_${b} src: /10.0.0.1:1 dest: /10.0.0.2:2`);
    await m.push(lines);
    await m.idle();
    expect(ends.map((e) => [e.session, e.endReason])).to.deep.equal([
      ['blk_1', 'evicted'],
      ['blk_2', 'evicted'],
    ]);
    expect(s.stats()).to.deep.include({ openSessions: 3, evictedSessions: 2 });
    const metrics = await m.metrics.registry.metrics();
    expect(metrics).to.match(/^deepsentry_evicted_sessions_total 2$/m);
    expect(metrics).to.match(/^deepsentry_open_sessions 3$/m);
    await m.stop();
  });

  it('offer() refuses what does not fit and counts it as dropped; push() waits for room instead', async () => {
    const s = new RecordingScorer();
    const m = new LiveMonitor(s, { threshold: rolling, tickMs: 0, maxQueuedLines: 50, batchDelayMs: 50 });
    await m.start();
    expect(m.offer(hdfs(40))).to.equal(true);
    expect(m.offer(hdfs(20))).to.equal(false); // 40 + 20 > 50: all or nothing
    expect(m.snapshot().droppedLines).to.equal(20);
    await m.push(hdfs(300)); // 6x the queue: resolves as batches free room
    await m.idle();
    expect(m.snapshot().lines).to.equal(340);
    expect(await m.metrics.registry.metrics()).to.match(/^deepsentry_dropped_lines_total 20$/m);
    await m.stop();
  });

  it('push() lets at most readAheadLines wait for the scorer (a source that can wait reads a few batches ahead), offer() up to maxQueuedLines', async () => {
    const s = new RecordingScorer();
    const m = new LiveMonitor(s, { threshold: rolling, tickMs: 0, maxBatchLines: 10, maxQueuedLines: 500, batchDelayMs: 0 });
    await m.start();
    let most = 0;
    const pushing = m.push(hdfs(200));
    const watch = setInterval(() => (most = Math.max(most, m.queuedLines)), 0);
    await pushing;
    most = Math.max(most, m.queuedLines);
    await m.idle();
    clearInterval(watch);
    expect(most).to.be.within(1, 40); // 4 batches of 10
    expect(s.batches.reduce((a, b) => a + b, 0)).to.equal(200);
    expect(m.offer(hdfs(450))).to.equal(true); // HTTP has no source to wait on: the whole queue
    expect(m.queuedLines).to.be.greaterThan(400);
    await m.idle();
    expect(m.snapshot().lines).to.equal(650);
    await m.stop();
    expect(() => new LiveMonitor(s, { threshold: rolling, readAheadLines: 0 })).to.throw(DeepSentryError, /readAheadLines/);
  });

  it('a failing scorer stops the monitor with an error naming the lines; later pushes are refused', async () => {
    class Broken extends NoveltyScorer {
      override async scoreLines(): Promise<ScoredEvent[]> {
        throw new DeepSentryError('DS_PARSE', 'boom');
      }
    }
    const m = new LiveMonitor(new Broken(), { threshold: rolling, tickMs: 0, source: 'test.log' });
    const errors: Error[] = [];
    m.on('error', (e) => errors.push(e));
    await m.start();
    await m.push(hdfs(5));
    const err = await m.idle().then(
      () => null,
      (e: unknown) => e as DeepSentryError,
    );
    expect(err).to.be.instanceOf(DeepSentryError);
    expect(err!.code).to.equal('DS_PARSE');
    expect(err!.message).to.match(/lines 1\.\.5 of test\.log: boom/);
    expect(errors).to.have.length(1);
    expect(() => m.offer('x')).to.throw(/boom/);
    expect(m.ready).to.equal(false);
    await m.stop().catch(() => undefined);
  });

  it('bad arguments are DS_INVALID_ARGUMENT errors naming the option', () => {
    const s = new NoveltyScorer();
    expect(() => new LiveMonitor(s, { threshold: rolling, maxBatchLines: 0 })).to.throw(/maxBatchLines/);
    expect(() => new LiveMonitor(s, { threshold: rolling, batchDelayMs: -1 })).to.throw(/batchDelayMs/);
    const m = new LiveMonitor(s, { threshold: rolling });
    expect(() => m.offer('x')).to.throw(/start\(\)/);
  });

  it('a bad line in a batch is refused whole, naming its index; the stream goes on', async () => {
    const m = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0 });
    await m.start();
    expect(() => m.offer(['ok', 42 as unknown as string])).to.throw(DeepSentryError, /lines\[1\]/);
    expect(m.snapshot().lines).to.equal(0);
    m.offer(hdfs(30));
    await m.idle();
    expect(m.snapshot().lines).to.equal(30);
    await m.stop();
  });

  it('one monitor per state file: a live holder is refused, a dead one\'s lock is taken over', async () => {
    const state = path.join(dir, 's.json');
    const a = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state) });
    await a.start();
    const b = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state) });
    const err = await b.start().then(() => null, (e: unknown) => e as DeepSentryError);
    expect(err?.code).to.equal('DS_IO');
    expect(err?.message).to.match(/in use by process \d+/);
    await a.stop();
    expect(fs.existsSync(state + '.lock')).to.equal(false);
    fs.writeFileSync(state + '.lock', '2147483646'); // a pid no process has: left by a SIGKILLed monitor
    const c = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state) });
    await c.start();
    expect(JSON.parse(fs.readFileSync(state + '.lock', 'utf8')).pid).to.equal(process.pid);
    await c.stop();
  });

  it('the lock is on the real path: a second monitor through a symlink is refused, and the link stays a link', async () => {
    const real = path.join(dir, 'real.state');
    const link = path.join(dir, 'link.state');
    fs.symlinkSync(real, link); // dangling until the first checkpoint
    const a = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(link), checkpointMs: 0 });
    await a.start();
    const b = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(real) });
    const err = await b.start().then(() => null, (e: unknown) => e as DeepSentryError);
    expect(err?.message).to.match(/in use by process \d+/);
    await a.push(hdfs(50));
    await a.stop();
    expect(fs.lstatSync(link).isSymbolicLink()).to.equal(true);
    expect(JSON.parse(fs.readFileSync(real, 'utf8')).seq).to.equal(50);
  });

  it('restart from a checkpoint after a crash: no line skipped, no alert repeated', async () => {
    const lines = hdfs(8000);
    const alertsFile = (name: string) => path.join(dir, name);
    // Uninterrupted run.
    const full = await runAll(new NoveltyScorer(), lines, () => 500, { sinks: [new NdjsonFileSink(alertsFile('full.ndjson'))] });
    // Crashed run: checkpoint after 3000 lines, then 2000 more lines whose alerts reach the file and the
    // journal, then the process "dies" (no stop(), nothing flushed or checkpointed).
    const state = path.join(dir, 'state.json');
    const crashed = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state), checkpointMs: 0, sinks: [new NdjsonFileSink(alertsFile('crash.ndjson'))] });
    await crashed.start();
    await crashed.push(lines.slice(0, 3000).map((text, i) => ({ text, lineNo: i + 1, offset: i, cursor: { path: 'x', dev: 0, ino: 0, offset: i + 1, lineNo: i + 2, head: '' } })));
    await crashed.idle();
    const ckpt = JSON.parse(fs.readFileSync(state, 'utf8')) as { seq: number };
    expect(ckpt.seq).to.equal(3000);
    // From here on no checkpoint: simulate by taking the state store away from the loop.
    (crashed as unknown as { state: StateStore | null }).state!.save = () => undefined;
    await crashed.push(lines.slice(3000, 5000).map((text, i) => ({ text, lineNo: 3001 + i, offset: 3000 + i })));
    await crashed.idle();
    const before = fs.readFileSync(alertsFile('crash.ndjson'), 'utf8').split('\n').filter(Boolean).length;
    const journal = fs.readFileSync(state + '.journal', 'utf8').split('\n').filter(Boolean).length;
    expect(journal).to.be.greaterThan(0); // alerts raised after the checkpoint are journaled
    // The "dead" monitor's state store lets go of the lock file as a dead process would (its stale lock is
    // taken over; see the lock test and the SIGKILL test of live-cli).
    (crashed as unknown as { state: StateStore }).state.close();
    // Restart: resumes after line 3000, replays 3001..5000 (their alerts are not repeated), goes on.
    const restarted = await (async () => {
      const m = new LiveMonitor(new NoveltyScorer(), { threshold: rolling, tickMs: 0, state: new StateStore(state), sinks: [new NdjsonFileSink(alertsFile('crash.ndjson'))] });
      const cursor = await m.start();
      expect(cursor!.offset).to.equal(3000);
      await m.push(lines.slice(cursor!.offset).map((text, i) => ({ text, lineNo: cursor!.offset + 1 + i, offset: cursor!.offset + i })));
      await m.stop({ flushSessions: true });
      return m;
    })();
    expect(restarted.snapshot().lines).to.equal(5000);
    const read = (f: string) =>
      fs.readFileSync(alertsFile(f), 'utf8').split('\n').filter(Boolean).map((l) => {
        const a = JSON.parse(l) as Alert;
        return JSON.stringify({ id: a.id, score: a.score, threshold: a.threshold, session: a.session, line: a.line, window: a.window, expected: a.expected });
      });
    const got = read('crash.ndjson');
    expect(got.length).to.be.greaterThan(before);
    expect(new Set(got).size).to.equal(got.length);
    const want = read('full.ndjson');
    expect(got).to.deep.equal(want);
    expect(full.alerts.length).to.equal(got.length);
  });
});

describe('live worker: lines across the thread boundary', () => {
  it('parsed here: the masking left to the worker is the share asked for, and the spans it gets slice out the messages masked alike', () => {
    const config = resolveLogConfig({ format: 'hdfs' });
    const texts = hdfsLines(400);
    const lineNos = Float64Array.from(texts, (_, i) => i + 1);
    const encode = (leaveMasking: number) => new ParsedEncoder(config, { format: configuredFormat(config), name: 'x', issues: null, withMessages: true, leaveMasking }).encode(texts, lineNos, 0, texts.length);
    const all = encode(0);
    const half = encode(0.5);
    const keyed = (c: typeof all) => Array.from(c.keyCounts, (k, i) => (k > 0 ? i : -1)).filter((i) => i >= 0);
    expect(all.spans).to.equal(null);
    expect(keyed(all).every((i) => all.masked[i]! >= 0)).to.equal(true);
    const left = keyed(half).filter((i) => half.masked[i] === -1);
    expect(left.length).to.be.within(Math.floor(keyed(half).length / 2) - 1, Math.ceil(keyed(half).length / 2) + 1);
    const masker = new Masker(config.masking.rules, config.masking.collapseRepeats);
    for (const i of left) {
      const message = texts[i]!.slice(half.spans![2 * i], half.spans![2 * i + 1]);
      expect(message).to.equal(all.messages![i]);
      expect(masker.maskText(message)).to.equal(all.texts[all.masked[i]!]);
    }
    expect(encode(1).masked.every((m) => m === -1)).to.equal(true);
  });
  it('parsed a slice at a time: the same chunk as in one go, the encoder refusing another meanwhile', () => {
    const config = resolveLogConfig({ format: 'hdfs' });
    const texts = hdfsLines(700);
    texts[5] = '';
    texts[6] = 'not a log line';
    const lineNos = Float64Array.from(texts, (_, i) => i + 1);
    const lines = texts.map((text, i) => ({ text, lineNo: i + 1 }));
    const encoder = () => new ParsedEncoder(config, { format: configuredFormat(config), name: 'x', issues: null, withMessages: true, leaveMasking: 0.3, keysMax: 40 });
    const whole = encoder();
    const sliced = encoder();
    // two chunks each, so the second carries what the first sent (keys and texts as indices, a reset past keysMax)
    for (const [from, n] of [[0, 300], [300, 400]] as const) {
      const want = whole.encode(texts, lineNos, from, n);
      const c = sliced.begin(n);
      expect(() => sliced.begin(1)).to.throw(/already being encoded/);
      for (let at = 0; at < n; at += 64) sliced.addLines(c, lines, from + at, Math.min(64, n - at));
      expect(sliced.end(c)).to.deep.equal(want);
    }
    expect(sliced.parseStats).to.deep.equal(whole.parseStats);
    expect(sliced.lastTs).to.equal(whole.lastTs);
    const short = sliced.begin(3);
    sliced.addLines(short, lines, 0, 2);
    expect(() => sliced.end(short)).to.throw(/ended after 2/);
    expect(() => sliced.addLines(short, lines, 0, 2)).to.throw(/4 lines given to a chunk of 3/);
    sliced.abandon();
    expect(sliced.encode(texts, lineNos, 0, 1).n).to.equal(1);
  });
  it('events come back as they were scored: a session named once, then by index, both sides starting over past the bound', () => {
    const sessions = ['blk_1', 'blk_2', 'blk_1', 'blk_3', 'x\ny', 'blk_2', 'blk_4', 'blk_1'];
    const events: ScoredEvent[] = sessions.map((session, i) => ({ seq: i + 1, lineNo: i + 10, offset: 100 * i, session, score: i / 7, isSessionEnd: i % 3 === 2, window: [], ...(i % 3 === 2 ? { endReason: 'idle' as const } : {}) }));
    const sent = new Map<string, number>();
    const names: string[] = [];
    const got: ScoredEvent[] = [];
    const news: string[][] = [];
    // three answers, the table bound at 2 names: past it (after the second answer) both sides start over
    for (const part of [events.slice(0, 3), events.slice(3, 6), events.slice(6)]) {
      const p = packEvents(part, sent, 2);
      news.push(p.newSessions);
      got.push(...unpackEvents(p, names));
    }
    expect(got).to.deep.equal(events);
    expect(news).to.deep.equal([['blk_1', 'blk_2'], ['blk_3', 'x\ny'], ['blk_4', 'blk_1']]);
  });
  it('arrive as they were sent (ASCII, UTF-8, empty, a newline or a lone surrogate inside), each its own string', () => {
    const texts = ['plain ascii line blk_123', 'ünïcödé → 日本語 blk_-9', '', 'x', 'emoji 🙂 end'];
    const lines = texts.map((text, i) => ({ seq: i + 1, lineNo: i + 10, offset: i * 100, text }));
    const { texts: packed, num } = packLines(lines);
    expect(packed).to.be.instanceOf(Uint8Array);
    expect(unpackLines(packed, num)).to.deep.equal(lines);
    for (const odd of ['a\nb', 'lone \ud800 surrogate']) {
      const l = [...lines, { seq: 9, lineNo: 9, offset: 9, text: odd }];
      const p = packLines(l);
      expect(Array.isArray(p.texts), JSON.stringify(odd)).to.equal(true);
      expect(unpackLines(p.texts, p.num)).to.deep.equal(l);
    }
    expect(unpackLines(packLines([]).texts, packLines([]).num)).to.deep.equal([]);
  });

  it('a piece of a line kept after its batch (a session key) does not keep the batch in memory', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const batch = (b: number) => Array.from({ length: 2000 }, (_, i) => ({ seq: i, lineNo: i, offset: 0, text: `081109 203615 148 INFO dfs.DataNode: ${'x'.repeat(400)} blk_${String(b * 2000 + i).padStart(20, '0')}` }));
    const settled = async () => {
      gc();
      await new Promise((r) => setTimeout(r, 10));
      gc();
      return process.memoryUsage().heapUsed;
    };
    const run = (kept: string[]) => {
      for (let b = 0; b < 20; b++) {
        const p = packLines(batch(b)); // ~0.9 MB of text per batch
        kept.push(unpackLines(p.texts, p.num)[1]!.text.slice(-24));
      }
    };
    run([]);
    const before = await settled();
    const kept: string[] = [];
    run(kept);
    const held = (await settled()) - before;
    expect(kept).to.have.length(20);
    expect(held, `${(held / 1e6).toFixed(1)} MB held by 20 keys`).to.be.below(2e6);
  });
});

describe('live metrics: a histogram observed per line', () => {
  it("exports what prom-client's Histogram exports for the same observations (text and values), repeated ones counted at once", async () => {
    const bounds = [0.001, 0.01, 0.1, 1, 10];
    const [r1, r2] = [new Registry(), new Registry()];
    const theirs = new Histogram({ name: 'x_seconds', help: 'What "x" \\ is.', buckets: bounds, registers: [r1] });
    const ours = new HotHistogram('x_seconds', 'What "x" \\ is.', bounds, r2);
    expect(await r2.metrics()).to.equal(await r1.metrics()); // nothing observed yet
    for (const [v, times] of [[0.0005, 1], [0.001, 2], [0.5, 1], [3, 3], [20, 1], [0.02, 2], [1e-9, 1]] as const) {
      for (let k = 0; k < times; k++) theirs.observe(v);
      ours.observe(v, times);
    }
    expect(await r2.metrics()).to.equal(await r1.metrics());
    const values = async (h: { get(): Promise<{ values: { value: number; labels: object; metricName?: string }[] }> }) => (await h.get()).values.map((v) => ({ value: v.value, labels: v.labels, metricName: v.metricName }));
    expect(await values(ours)).to.deep.equal(await values(theirs));
    expect(() => ours.observe(NaN)).to.throw(TypeError);
  });
});
