/**
 * The live monitor's model scorer (lib/live/model_scorer.ts) on a real (tiny) trained model: its per-window caches
 * of scores and expected messages and its batched context() must give exactly what scoring or predicting each
 * window alone gives, in this thread and through the worker.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { createScorer } from '../../lib/live/engine';
import { LiveMonitor } from '../../lib/live/monitor';
import { ModelScorer } from '../../lib/live/model_scorer';
import { eventId, type Alert, type ScoredEvent } from '../../lib/live/types';
import { WorkerScorer } from '../../lib/live/worker';
import { sha256Hex } from '../../lib/models/files';
import { createModelScorer, DeepSentry } from '../../lib/pipeline/model';
import { DRIFT_MESSAGE, driftLog, hdfsSlice, hdfsTimeOf, trainedModel, withHdfsTime } from '../support/pipeline-fixtures';
import { requireData } from '../support/data';
import { workDir } from '../support/tmp';

/** Model events expose the W ids they were scored on (not part of the ScoredEvent contract). */
const idsOf = (e: ScoredEvent) => (e as ScoredEvent & { ids: Int32Array }).ids;

describe('live monitor with the trained model', function () {
  this.timeout(120000);
  let modelDir: string;
  let raw: { seq: number; lineNo: number; offset: number; text: string }[];
  before(async function () {
    requireData(this);
    modelDir = await trainedModel();
    const lines = fs.readFileSync(hdfsSlice(3000), 'utf8').split('\n').filter(Boolean);
    raw = lines.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text }));
  });

  it('setAside (live --set-aside): in a worker and in this thread, the events of the log without those lines', async () => {
    const d = driftLog();
    const toRaw = (file: string) => fs.readFileSync(file, 'utf8').split('\n').slice(0, -1).map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text }));
    const view = (e: ScoredEvent) => [e.session, e.lineNo, e.isSessionEnd, e.endReason ?? '', e.score];
    const run = async (file: string, o: { worker: boolean; setAside?: string[] }) => {
      const s = await createScorer(modelDir, o);
      const lines = toRaw(file);
      const ev: ScoredEvent[] = [];
      for (let i = 0; i < lines.length; i += 3000) ev.push(...(await s.scoreLines(lines.slice(i, i + 3000))));
      ev.push(...(await s.flush()));
      await s.close();
      return ev.map(view);
    };
    const without = await run(d.blanked, { worker: false });
    expect(without.filter((e) => e[2]).length).to.be.greaterThan(100);
    for (const worker of [true, false]) expect(await run(d.file, { worker, setAside: [DRIFT_MESSAGE] }), `worker ${worker}`).to.deep.equal(without);
    // not set aside, the lines of that message are scored
    expect((await run(d.file, { worker: false })).length).to.equal(without.length + d.blocks);
    const err = await createScorer(undefined, { scorer: 'novelty', worker: false, setAside: [DRIFT_MESSAGE] }).then(() => null, (e: unknown) => e);
    expect((err as DeepSentryError).code).to.equal('DS_INVALID_ARGUMENT');
    // an empty message sets nothing aside: refused, in a worker and in this thread
    for (const worker of [true, false]) {
      const empty = await createScorer(modelDir, { worker, setAside: [DRIFT_MESSAGE, ' '] }).then(
        async (s) => {
          await s.close(); // accepted (the bug): closed, so the failure below is the test's and no worker outlives it
          return null;
        },
        (e: unknown) => e,
      );
      expect((empty as DeepSentryError).code, `worker ${worker}`).to.equal('DS_INVALID_ARGUMENT');
      expect((empty as Error).message).to.match(/setAside: expected masked messages/);
    }
  });

  it('the backend and precision given reach the scorer, in a worker and in this thread', async () => {
    for (const worker of [true, false]) {
      // bf16 runs on the native CPU kernels only: the pure TypeScript backend refuses it, which shows the options arrived
      const err = await createScorer(modelDir, { worker, backend: 'cpu', precision: 'bf16' }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err, `worker ${worker}`).to.be.instanceOf(DeepSentryError).with.property('code', 'DS_UNSUPPORTED');
    }
  });

  it('every score equals its window scored alone (repeated windows are scored once, across calls)', async () => {
    const s = await createModelScorer(modelDir, { idleTimeoutMs: null });
    try {
      const events: ScoredEvent[] = [];
      for (let i = 0; i < raw.length; i += 700) events.push(...(await s.scoreLines(raw.slice(i, i + 700))));
      events.push(...(await s.flush()));
      const distinct = new Set(events.map((e) => idsOf(e).join(',')));
      expect(distinct.size).to.be.lessThan(events.length / 2); // the cache is actually exercised
      // an end event also carries the weighted count surprise of its session's messages (as batch scoring)
      const lines = new Map<string, number[]>();
      const W = s.model.detector.config.window;
      let withCounts = 0;
      for (let i = 0; i < events.length; i++) {
        const e = events[i]!;
        const ids = idsOf(e);
        let l = lines.get(e.session);
        if (!l) lines.set(e.session, (l = []));
        if (!e.isSessionEnd) l.push(ids[W - 1]!);
        let alone = s.model.scoreWindows(ids, 1, false).scores[0]!;
        if (e.isSessionEnd) {
          const extra = s.model.config.scoring.counts * s.model.countSurprise(l);
          if (extra > 0) withCounts++;
          alone = Math.fround(alone + extra);
        }
        if (alone !== e.score) expect.fail(`event ${i}: cached score ${e.score}, scored alone ${alone}`);
      }
      expect(withCounts).to.be.greaterThan(0);
    } finally {
      await s.close();
    }
  });

  it("each event's window is its session's last windowLines lines, also for end events and after a snapshot/restore", async () => {
    for (const windowLines of [1, 3, 12]) {
      const s = await createModelScorer(modelDir, { idleTimeoutMs: null, windowLines });
      const t = await createModelScorer(modelDir, { idleTimeoutMs: null, windowLines });
      try {
        const events = [...(await s.scoreLines(raw.slice(0, 1500)))];
        await t.restore(JSON.parse(JSON.stringify(await s.snapshot())));
        events.push(...(await t.scoreLines(raw.slice(1500))), ...(await t.flush()));
        const seen = new Map<string, string[]>();
        for (const e of events) {
          let l = seen.get(e.session);
          if (l === undefined) seen.set(e.session, (l = []));
          if (!e.isSessionEnd) l.push(raw[e.seq - 1]!.text);
          if (e.window.join('\n') !== l.slice(-windowLines).join('\n')) expect.fail(`windowLines ${windowLines}: window of event ${e.seq} ${e.session} differs`);
        }
      } finally {
        await s.close();
        await t.close();
      }
    }
  });

  it('context(): windows and expected messages of the last call equal one prediction per event; a bad index is DS_OUT_OF_RANGE', async () => {
    const s = await createModelScorer(modelDir, { idleTimeoutMs: null });
    try {
      await s.scoreLines(raw.slice(0, 1000));
      const ev = await s.scoreLines(raw.slice(1000, 2000));
      const idx = [0, 3, 3, ...Array.from({ length: 60 }, (_, k) => (k * 37) % ev.length), ev.length - 1];
      const ctx = await s.context(idx);
      expect(ctx).to.have.length(idx.length);
      idx.forEach((i, k) => {
        const alone = s.model.scoreWindows(idsOf(ev[i]!), 1, true).expected[0];
        expect(ctx[k]!.expected, `event ${i}`).to.equal(alone);
        expect(ctx[k]!.window).to.deep.equal(ev[i]!.window);
      });
      expect(ctx.some((c) => typeof c.expected === 'string')).to.equal(true);
      // The getter agrees with context() (it goes through the same cache).
      expect(ev[5]!.expected).to.equal(s.model.scoreWindows(idsOf(ev[5]!), 1, true).expected[0]);
      // Explanations (sessions.csv) take the scorer's expected message where given, and predict the others alike.
      const w = idsOf(ev[5]!);
      const given = s.model.explainWindows([{ window: w, expected: 'given' }, { window: w }, { window: w, expected: null }]);
      expect(given.map((x) => x.expected)).to.deep.equal(['given', ev[5]!.expected ?? undefined, undefined]);
      await s.context([ev.length]).then(
        () => expect.fail('an index past the last call was accepted'),
        (e) => expect(e).to.be.instanceOf(DeepSentryError).with.property('code', 'DS_OUT_OF_RANGE'),
      );
    } finally {
      await s.close();
    }
  });

  it('a monitor over the model gives the same alerts, with expected messages, in a worker as in this thread', async () => {
    const run = async (worker: boolean) => {
      const scorer = await createScorer(modelDir, { worker, idleTimeoutMs: null });
      // floor 0 and k 1.5: the tiny model's saved threshold is above every score of this slice (no alerts).
      const m = new LiveMonitor(scorer, { threshold: { mode: 'rolling', window: 200, k: 1.5, floor: 0 }, tickMs: 0, maxBatchLines: 500 });
      // All lines are queued at once, so in the worker every batch but the last is handed over (prepare) while
      // the one before is scored, and goes to the worker while the alerts of the one before wait for their context.
      let prepared = 0;
      let overlapped = 0;
      if (scorer instanceof WorkerScorer) {
        const [prepare, context, scoreLines] = [scorer.prepare.bind(scorer), scorer.context.bind(scorer), scorer.scoreLines.bind(scorer)];
        let contextPending = 0;
        scorer.prepare = (lines) => {
          prepared++;
          prepare(lines);
        };
        scorer.context = async (indices) => {
          contextPending++;
          try {
            return await context(indices);
          } finally {
            contextPending--;
          }
        };
        scorer.scoreLines = (lines) => {
          if (contextPending > 0) overlapped++;
          return scoreLines(lines);
        };
      }
      const alerts: Alert[] = [];
      m.on('anomaly', (a: Alert) => alerts.push(a));
      await m.start();
      await m.push(raw.map((r) => r.text));
      await m.idle();
      await m.stop();
      if (worker) expect([prepared > 0, overlapped > 0]).to.deep.equal([true, true]);
      return alerts.map((a) => ({ ...a, time: undefined }));
    };
    const local = await run(false);
    const remote = await run(true);
    expect(local.length).to.be.greaterThan(0);
    expect(local.some((a) => typeof a.expected === 'string')).to.equal(true);
    expect(remote).to.deep.equal(local);
  });

  it('in a worker the lines are parsed in this thread and scored there: the same events and counters, bad lines and a restore included', async () => {
    // A copy of the model that skips out-of-order lines (logs.outOfOrder "skip"): which lines count as out of
    // order depends on the latest timestamp, which the parsing thread must take over from a restored scorer.
    const dir = path.join(workDir(), 'model-skip-out-of-order');
    fs.rmSync(dir, { recursive: true, force: true });
    fs.cpSync(modelDir, dir, { recursive: true });
    const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json'), 'utf8'));
    json.extra.logConfig.outOfOrder = 'skip';
    const { contentSha256: _, ...body } = json;
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify({ ...body, contentSha256: sha256Hex(JSON.stringify(body)) }));
    const texts = raw.map((r) => r.text);
    const hourEarlier = (i: number) => withHdfsTime(texts[i]!, hdfsTimeOf(texts[i - 1]!) - 3_600_000);
    texts[100] = '';
    texts[200] = 'not a log line';
    texts[300] = `081340 256199${texts[300]!.slice(13)}`; // no such date
    texts[700] = hourEarlier(700);
    texts[1500] = hourEarlier(1500); // the first line after the restart
    const lines = texts.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 100 * i, text }));
    const batches = (from: number, to: number) => Array.from({ length: Math.ceil((to - from) / 250) }, (_, k) => lines.slice(from + 250 * k, Math.min(to, from + 250 * (k + 1))));
    const plain = (es: ScoredEvent[]) => es.map((e) => ({ seq: e.seq, lineNo: e.lineNo, offset: e.offset, session: e.session, score: e.score, isSessionEnd: e.isSessionEnd, endReason: e.endReason }));
    const encoding = (s: unknown) => (s as { encoder: unknown }).encoder !== null;

    const local = await createScorer(dir, { worker: false, idleTimeoutMs: null });
    const want: ScoredEvent[] = [];
    for (const b of batches(0, lines.length)) want.push(...(await local.scoreLines(b)));
    want.push(...(await local.flush()));
    const wantStats = local.stats();
    await local.close();
    expect(wantStats.unparsedLines).to.equal(4); // the bad line, the bad date, two out of order (the blank one is skipped, not counted)

    // Half the lines, with the next batch prepared while one is scored (as the monitor does), then a restart.
    const first = await createScorer(dir, { worker: true, idleTimeoutMs: null });
    const got: ScoredEvent[] = [];
    let state: unknown;
    try {
      expect(encoding(first)).to.equal(true);
      const head = batches(0, 1500);
      for (let k = 0; k < head.length; k++) {
        const scored = first.scoreLines(head[k]!);
        if (k + 1 < head.length) first.prepare!(head[k + 1]!);
        got.push(...(await scored));
      }
      state = await first.snapshot();
    } finally {
      await first.close();
    }
    const second = await createScorer(dir, { worker: true, idleTimeoutMs: null });
    try {
      await second.restore(state);
      expect(encoding(second)).to.equal(true);
      const tail = batches(1500, lines.length);
      for (const b of tail.slice(0, 3)) got.push(...(await second.scoreLines(b)));
      // Lines prepared and not used: the parsing thread stops (its clock is ahead) and the worker parses from then on.
      second.prepare!(tail[4]!);
      for (const b of tail.slice(3)) got.push(...(await second.scoreLines(b)));
      expect(encoding(second)).to.equal(false);
      got.push(...(await second.flush()));
      expect(plain(got)).to.deep.equal(plain(want));
      expect(second.stats()).to.deep.equal(wantStats);
    } finally {
      await second.close();
    }
  });

  it('in a worker a prepared batch is parsed here a slice at a time, the event loop running between slices: the same events, none lost or repeated, also when prepared lines are not used or the scorer closes meanwhile', async () => {
    const plain = (es: ScoredEvent[]) => es.map((e) => ({ seq: e.seq, lineNo: e.lineNo, offset: e.offset, session: e.session, score: e.score, isSessionEnd: e.isSessionEnd, endReason: e.endReason }));
    const batches = (from: number, to: number, n: number) => Array.from({ length: Math.ceil((to - from) / n) }, (_, k) => raw.slice(from + n * k, Math.min(to, from + n * (k + 1))));
    const job = (s: unknown) => (s as { prepared: { job: { state: string } } | null }).prepared?.job.state;
    const local = await createScorer(modelDir, { worker: false, idleTimeoutMs: null });
    const want: ScoredEvent[] = [];
    for (const b of batches(0, raw.length, 1000)) want.push(...(await local.scoreLines(b)));
    want.push(...(await local.flush()));
    await local.close();

    const s = await createScorer(modelDir, { worker: true, idleTimeoutMs: null });
    const got: ScoredEvent[] = [];
    try {
      const bs = batches(0, 2000, 1000);
      // The first batch (a call: parsed in one go), then the second prepared behind it, in slices: in order.
      const first = s.scoreLines(bs[0]!);
      s.prepare!(bs[1]!);
      const between: (string | undefined)[] = [];
      await new Promise<void>((r) =>
        setImmediate(() => {
          between.push(job(s)); // the loop ran while the second batch's slices were still being parsed
          r();
        }),
      );
      got.push(...(await first));
      got.push(...(await s.scoreLines(bs[1]!)));
      expect(between).to.deep.equal(['pending']);
      // Prepared and not used while its slices are pending: never sent; the worker parses from then on.
      s.prepare!(raw.slice(2500, 3000));
      expect(job(s)).to.equal('pending');
      got.push(...(await s.scoreLines(raw.slice(2000, 3000))));
      expect((s as unknown as { encoder: unknown }).encoder).to.equal(null);
      got.push(...(await s.flush()));
      expect(plain(got)).to.deep.equal(plain(want));
      expect(new Set(got.filter((e) => !e.isSessionEnd).map((e) => `${e.seq} ${e.session}`)).size).to.equal(got.filter((e) => !e.isSessionEnd).length);
    } finally {
      await s.close();
    }
    // Closed while a prepared batch's slices are pending: it is dropped, the worker ends, nothing is left running.
    const t = await createScorer(modelDir, { worker: true, idleTimeoutMs: null });
    await t.scoreLines(raw.slice(0, 100));
    t.prepare!(raw.slice(100, 1100));
    expect(job(t)).to.equal('pending');
    await t.close();
    const after = await t.scoreLines(raw.slice(100, 1100)).then(
      () => 'scored',
      (err: Error) => err.message,
    );
    expect(after).to.match(/worker was closed/);
  });

  describe('count relations judged once the key has been quiet for the count horizon', () => {
    const MIN = 60_000;
    /** The line with its timestamp moved by `ms`. */
    const shifted = (line: string, ms: number) => withHdfsTime(line, hdfsTimeOf(line) + ms);
    /**
     * A block of the slice written completely (allocated, received and stored three times), alone: its lines, and
     * the same with its last `addStoredBlock` 7 minutes late — past the 5-minute idle timeout, within the hour.
     */
    let onTime: string[];
    let late: string[];
    before(() => {
      const byKey = new Map<string, string[]>();
      for (const r of raw) for (const k of new Set(r.text.match(/blk_-?\d+/g) ?? [])) byKey.set(k, [...(byKey.get(k) ?? []), r.text]);
      const written = [...byKey.values()].find(
        (ls) => ls.length === 13 && ls.filter((l) => l.includes('allocateBlock')).length === 1 && ls.filter((l) => l.includes('addStoredBlock')).length === 3 && ls[ls.length - 1]!.includes('addStoredBlock'),
      )!;
      expect(written, 'a completely written block in the slice').to.not.equal(undefined);
      onTime = written;
      late = [...written.slice(0, -1), shifted(written[written.length - 1]!, 7 * MIN)];
    });
    const run = async (countTimeoutMs: number, lines: string[], restoreAfter?: number) => {
      const model = await DeepSentry.load(modelDir);
      model.config.scoring.countTimeoutMs = countTimeoutMs;
      let s = new ModelScorer(model, { idleTimeoutMs: 5 * MIN });
      const rl = lines.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text }));
      const events: ScoredEvent[] = [];
      const cut = restoreAfter ?? rl.length;
      events.push(...(await s.scoreLines(rl.slice(0, cut))));
      if (restoreAfter !== undefined) {
        const state = JSON.parse(JSON.stringify(await s.snapshot()));
        const again = await DeepSentry.load(modelDir);
        again.config.scoring.countTimeoutMs = countTimeoutMs;
        const t = new ModelScorer(again, { idleTimeoutMs: 5 * MIN });
        await t.restore(state);
        await s.close();
        s = t;
      }
      events.push(...(await s.scoreLines(rl.slice(cut))), ...(await s.flush()));
      const W = s.model.detector.config.window;
      const alone = (e: ScoredEvent) => s.model.scoreWindows(idsOf(e), 1, false).scores[0]!;
      const wc = s.model.config.scoring.counts;
      const surprise = (ls: string[]) => s.model.countSurprise(ls.map((l) => s.model.messageId(s.model.masker.mask(l.split(': ').slice(1).join(': ')).masked)));
      return { events, alone, wc, surprise, W, close: () => s.close() };
    };

    it('a write cut by the idle timeout is judged on both parts; judged per session, its first part breaks a relation', async () => {
      const perSession = await run(0, late);
      const ends = perSession.events.filter((e) => e.isSessionEnd);
      expect(ends.map((e) => e.endReason)).to.deep.equal(['idle', 'flush']);
      // judged at the cut (today's behaviour without a horizon): the first part misses a stored replica
      expect(ends[0]!.score).to.be.greaterThan(perSession.alone(ends[0]!));
      const hour = await run(60 * MIN, late);
      const hEnds = hour.events.filter((e) => e.isSessionEnd);
      // with the horizon the cut's end carries its window's score only, and both parts together break nothing
      expect(hEnds.map((e) => e.endReason)).to.deep.equal(['idle', 'flush']);
      expect(hEnds[0]!.score).to.equal(hour.alone(hEnds[0]!));
      expect(hour.surprise(late)).to.equal(0);
      // the line events are the same either way
      const lines = (r: { events: ScoredEvent[] }) => r.events.filter((e) => !e.isSessionEnd).map((e) => [e.seq, e.score]);
      expect(lines(hour)).to.deep.equal(lines(perSession));
      await perSession.close();
      await hour.close();
    });

    it('a key whose write stops short is judged once quiet, on its own id, the same after a snapshot/restore', async () => {
      const short = onTime.slice(0, -1);
      // later lines of another key move the clock past the idle timeout, then past the hour
      const later = shifted(raw.find((r) => !r.text.includes(/blk_-?\d+/.exec(short[0]!)![0]))!.text, 0);
      const t0 = /^\d{6} \d{6}/.exec(short[short.length - 1]!)![0];
      const other = `${t0}${later.slice(t0.length)}`;
      const lines = [...short, shifted(other, 10 * MIN), shifted(other, 61 * MIN)];
      const r = await run(60 * MIN, lines);
      const key = /blk_-?\d+/.exec(short[0]!)![0];
      const mine = r.events.filter((e) => e.session === key && e.isSessionEnd);
      expect(mine.map((e) => e.endReason)).to.deep.equal(['idle', 'counts']);
      const [end, counts] = mine as [ScoredEvent, ScoredEvent];
      // the session's end: its window alone; the key's count judgement: the same window plus the weighted surprise
      expect(end.score).to.equal(r.alone(end));
      expect(r.surprise(short)).to.be.greaterThan(0);
      expect(counts.score).to.equal(Math.fround(r.alone(counts) + r.wc * r.surprise(short)));
      expect(idsOf(counts)).to.deep.equal(idsOf(end));
      expect(eventId(counts)).to.not.equal(eventId(end));
      // its context names the relation broken (what the alert prints)
      const model = await DeepSentry.load(modelDir);
      const one = new ModelScorer(model, { idleTimeoutMs: 5 * MIN });
      const ev = await one.scoreLines(lines.map((text, i) => ({ seq: i + 1, lineNo: i + 1, offset: 0, text })));
      const at = ev.findIndex((e) => e.endReason === 'counts' && e.session === key);
      const [ctx, ctxEnd] = await one.context([at, ev.findIndex((e) => e.endReason === 'idle' && e.session === key)]);
      expect(ctx!.countRelation).to.match(/count\(.*\) = .*count\(.*\) held in \d+ of \d+ training sessions; here \d+ and \d+/);
      expect(ctxEnd!.countRelation).to.equal(undefined);
      await one.close();
      expect(counts.seq).to.equal(end.seq);
      // it comes when the clock passes the hour, before the line that moved it
      expect(r.events.indexOf(counts)).to.be.lessThan(r.events.findIndex((e) => e.seq === lines.length && !e.isSessionEnd));
      // the wait survives a snapshot/restore taken while the key is quiet
      const again = await run(60 * MIN, lines, short.length + 1);
      expect(again.events.map((e) => [e.seq, e.session, e.endReason, e.score])).to.deep.equal(r.events.map((e) => [e.seq, e.session, e.endReason, e.score]));
      // at the end of input the key is judged on what it has
      const atEnd = await run(60 * MIN, short);
      expect(atEnd.events.filter((e) => e.isSessionEnd).map((e) => e.endReason)).to.deep.equal(['flush', 'counts']);
      await Promise.all([r.close(), again.close(), atEnd.close()]);
    });
  });
});
