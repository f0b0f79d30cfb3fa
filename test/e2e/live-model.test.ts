/**
 * The live monitor's model scorer (lib/live/model_scorer.ts) on a real (tiny) trained model: its per-window caches
 * of scores and expected messages and its batched context() must give exactly what scoring or predicting each
 * window alone gives, in this thread and through the worker.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import { DeepSentryError } from '../../lib/errors';
import { createScorer } from '../../lib/live/engine';
import { LiveMonitor } from '../../lib/live/monitor';
import type { Alert, ScoredEvent } from '../../lib/live/types';
import { createModelScorer } from '../../lib/pipeline/model';
import { hdfsSlice, trainedModel } from '../support/pipeline-fixtures';
import { requireData } from '../support/data';

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
      const alerts: Alert[] = [];
      m.on('anomaly', (a: Alert) => alerts.push(a));
      await m.start();
      await m.push(raw.map((r) => r.text));
      await m.idle();
      await m.stop();
      return alerts.map((a) => ({ ...a, time: undefined }));
    };
    const local = await run(false);
    const remote = await run(true);
    expect(local.length).to.be.greaterThan(0);
    expect(local.some((a) => typeof a.expected === 'string')).to.equal(true);
    expect(remote).to.deep.equal(local);
  });
});
