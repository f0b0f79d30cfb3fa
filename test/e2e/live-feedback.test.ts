/**
 * `POST /feedback` on a real `deepsentry live --follow` child: the tiny model (trained on hdfs-dev's first 20k
 * lines) follows the first 30k lines, raises an alert for a block labelled normal, and that alert, posted back,
 * is learnt as normal; the new model is written as version 2 and swapped in while the monitor follows on.
 *
 * The proof that lines after the swap are scored by the new model: copies of the marked block under fresh
 * block ids, appended before and after the feedback (with timestamps that keep the session clock moving, and a
 * line a whole idle timeout later so that each copy ends and its end is scored). The copy before alerts as the
 * block did; the copy after does not. The proof that no line is lost or doubled: the child's line and event
 * counts equal those of the same lines scored in this process in one go (event counts do not depend on the
 * model, only on the sessions, which the swap keeps).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { DeepSentryError } from '../../lib/errors';
import { LiveMonitor } from '../../lib/live/monitor';
import { DeepSentry } from '../../lib/pipeline/model';
import { createModelScorer } from '../../lib/pipeline/model';
import { ModelScorer } from '../../lib/live/model_scorer';
import { countHorizon } from '../../lib/models/counts';
import { hdfsSlice, hdfsTimeOf, trainedModelCountsPerSession, withHdfsTime } from '../support/pipeline-fixtures';
import { HDFS_DEV_LABELS, requireData } from '../support/data';
import { startCli, until, type StartedCli } from '../support/cli';
import { tempDir } from '../support/tmp';

const TOKEN = 'feedback-token-1';

/** An HDFS line's timestamp (`yyMMdd HHmmss`, UTC) in ms. */
interface Scenario {
  model: string;
  log: string;
  /** the block marked normal, and its end score before */
  marked: string;
  threshold: number;
  /** lines appended before the feedback (a copy of the marked block, then a line to end it) and after */
  before: string[];
  after: string[];
  copyBefore: string;
  copyAfter: string;
  /** lines and events of all of it, scored in this process with the old model */
  lines: number;
  events: number;
  /** the old model's end score of the copy appended after the feedback */
  copyAfterOldScore: number;
}

let base: Scenario = null as never;

/** The scenario's lines and expectations, computed once with the old model in this process. */
async function prepare(): Promise<void> {
  // Its count relations judged at each session's end: a normal block's write cut by the idle timeout alerts.
  const model = await trainedModelCountsPerSession();
  const log = hdfsSlice(30000);
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter((l) => l !== '');
  const labels = new Map(fs.readFileSync(HDFS_DEV_LABELS, 'utf8').split('\n').map((l) => l.split(',').map((x) => x.trim()) as [string, string]));
  const sc = await createModelScorer(model);
  try {
    const idle = sc.model.logConfig.session.idleTimeoutMs as number;
    expect(idle, 'the tiny model ends sessions after an idle timeout').to.be.a('number');
    const seq = { n: 0 };
    const score = (ls: string[]) => sc.scoreLines(ls.map((text) => ({ seq: ++seq.n, lineNo: seq.n, offset: 0, text })));
    const first = await score(lines);
    const ends = first.filter((e) => e.isSessionEnd && e.score > sc.savedThreshold && labels.get(e.session) === 'Normal').sort((a, b) => b.score - a.score);
    expect(ends.length, 'the tiny model raises an alert for a normal block of hdfs-dev 0-30k').to.be.greaterThan(0);
    const marked = ends[0].session;
    // The lines of the segment that alerted (a block may be cut into segments by idle gaps).
    const from = Math.max(0, ...first.filter((e) => e.isSessionEnd && e.session === marked && e.seq < ends[0].seq).map((e) => e.seq));
    const own = lines.filter((l, i) => i + 1 > from && i + 1 <= ends[0].seq && (l.match(/blk_-?\d+/g) ?? []).join(' ') === marked);
    const t = hdfsTimeOf(lines[lines.length - 1]);
    const copy = (id: string, at: number) => own.map((l) => withHdfsTime(l.split(marked).join(id), at));
    const copyBefore = 'blk_-1000000000000000001';
    const copyAfter = 'blk_-1000000000000000002';
    // Each copy is followed by a line long enough after it that its end — and its key's count judgement, when
    // the alert was one — has come.
    const gap = Math.max(idle, countHorizon(sc.model.config.scoring.countTimeoutMs, idle, sc.model.logConfig.session.mode) ?? 0) + 60_000;
    const before = [...copy(copyBefore, t), ...copy('blk_-1000000000000000003', t + gap).slice(0, 1)];
    const after = [...copy(copyAfter, t + gap), ...copy('blk_-1000000000000000004', t + 2 * gap).slice(0, 1)];
    const rest = [...(await score(before)), ...(await score(after))];
    const endOf = (id: string) => rest.find((e) => e.isSessionEnd && e.session === id && e.endReason === ends[0].endReason);
    expect(endOf(copyBefore)?.score, 'the copy scores as the block did').to.equal(ends[0].score);
    const copyAfterOldScore = endOf(copyAfter)?.score as number;
    expect(copyAfterOldScore, 'the old model would flag the copy appended after the feedback').to.be.above(sc.savedThreshold);
    base = { model, log, marked, threshold: sc.savedThreshold, before, after, copyBefore, copyAfter, lines: lines.length + before.length + after.length, events: first.length + rest.length, copyAfterOldScore };
  } finally {
    await sc.close();
  }
}

/** A fresh copy of the model and the log for one child. */
function scenario(name: string): Scenario & { dir: string } {
  const dir = tempDir(`live-feedback-${name}`);
  const model = path.join(dir, 'model');
  fs.cpSync(base.model, model, { recursive: true });
  const log = path.join(dir, 'app.log');
  fs.copyFileSync(base.log, log);
  return { ...base, model, log, dir };
}

async function http(port: number, route: string, init: { method?: string; body?: string; token?: string | null; type?: string } = {}): Promise<{ status: number; json: Record<string, unknown>; text: string }> {
  const headers: Record<string, string> = {};
  if (init.token !== null) headers.authorization = `Bearer ${init.token ?? TOKEN}`;
  if (init.type) headers['content-type'] = init.type;
  const res = await fetch(`http://127.0.0.1:${port}${route}`, { method: init.method ?? 'GET', headers, ...(init.body !== undefined ? { body: init.body } : {}) });
  const text = await res.text();
  let json: Record<string, unknown> = {};
  try {
    json = JSON.parse(text);
  } catch {
    /* /metrics is text */
  }
  return { status: res.status, json, text };
}

function startLive(s: Scenario & { dir: string }, extra: string[]): StartedCli {
  return startCli(['live', '--model', s.model, '--follow', s.log, '--listen', '127.0.0.1:0', '--token', TOKEN, '--alerts', path.join(s.dir, 'alerts.ndjson'), '--poll-ms', '10', ...extra]);
}

async function portOf(c: StartedCli): Promise<number> {
  await until(() => /listening on http:\/\/127\.0\.0\.1:(\d+)\//.test(c.err()) || c.child.exitCode !== null, 'the HTTP server');
  const m = /listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(c.err());
  if (!m) throw new Error(`live did not start: ${c.err()}`);
  return Number(m[1]);
}

/** Waits until the child has scored `lines` lines and nothing is queued; returns its stats. */
async function scored(port: number, lines: number): Promise<Record<string, unknown>> {
  let s: Record<string, unknown> = {};
  const end = Date.now() + 60_000;
  for (;;) {
    s = (await http(port, '/api/stats')).json;
    if (s.lines === lines && s.queuedLines === 0) return s;
    if (Date.now() > end) throw new Error(`timed out at ${JSON.stringify({ lines: s.lines, queued: s.queuedLines })} waiting for ${lines} lines`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function alerts(s: { dir: string }): Array<{ id: string; session: string; seq: number; score: number }> {
  const f = path.join(s.dir, 'alerts.ndjson');
  return fs.existsSync(f) ? fs.readFileSync(f, 'utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l)) : [];
}

describe('deepsentry live: POST /feedback learns alerts as normal and swaps the model in without losing its place', function () {
  this.timeout(120_000);
  before(async function () {
    requireData(this);
    await prepare();
  });

  it('worker thread: the posted alert is learnt (version 2 written), later lines are scored by it, no line lost or doubled; 401 without the token, 400/422 for bad marks', async () => {
    const s = scenario('worker');
    const parentSha = JSON.parse(fs.readFileSync(path.join(s.model, 'model.json'), 'utf8')).contentSha256;
    const state = path.join(s.dir, 'app.state');
    const c = startLive(s, ['--state', state, '--checkpoint-ms', '50']);
    try {
      const port = await portOf(c);
      await scored(port, s.lines - s.before.length - s.after.length);
      fs.appendFileSync(s.log, s.before.join('\n') + '\n');
      const stats0 = await scored(port, s.lines - s.after.length);
      expect(stats0.modelVersion).to.equal(1);
      await until(() => alerts(s).some((a) => a.session === s.copyBefore), 'the alert for the copy before the feedback');

      // Refused: no token, a wrong one, an empty body, a body of another kind, an unknown block.
      const marks = alerts(s).filter((a) => a.session === s.marked);
      expect(marks.length, 'the monitor alerted on the marked block').to.be.greaterThan(0);
      const body = marks.map((a) => JSON.stringify(a)).join('\n') + '\n';
      expect((await http(port, '/feedback', { method: 'POST', body, token: null })).status).to.equal(401);
      expect((await http(port, '/feedback', { method: 'POST', body, token: 'wrong-token-123' })).status).to.equal(401);
      const empty = await http(port, '/feedback', { method: 'POST', body: '' });
      expect([empty.status, empty.json.error]).to.deep.equal([400, 'the body is empty: it should hold alerts (NDJSON), a sessions.csv or session ids, one per line']);
      const csv = await http(port, '/feedback', { method: 'POST', body: 'BlockId,Label\nblk_1,Normal\n', type: 'text/csv' });
      expect(csv.status).to.equal(400);
      expect(csv.json.error).to.match(/the body line 1: .*neither an alert/);
      const unknown = await http(port, '/feedback', { method: 'POST', body: JSON.stringify({ sessions: [s.marked, 'blk_424242'] }), type: 'application/json' });
      expect(unknown.status).to.equal(422);
      expect(unknown.json.error).to.match(/1 of 2 sessions are not among the \d+ sessions the monitor scored recently: blk_424242 \(the model was not changed\)/);
      expect(JSON.parse(fs.readFileSync(path.join(s.model, 'model.json'), 'utf8')).contentSha256).to.equal(parentSha);

      // The alerts, posted back as `deepsentry feedback --normal` takes them; /health answers meanwhile.
      let health = 0;
      let done = false;
      const post = http(port, '/feedback', { method: 'POST', body, type: 'application/x-ndjson' }).finally(() => (done = true));
      while (!done) {
        if ((await http(port, '/health', { token: null })).status === 200 && !done) health++;
        await new Promise((r) => setTimeout(r, 5));
      }
      const r = await post;
      expect(r.status, r.text).to.equal(200);
      expect(health, '/health answered while the feedback was learnt').to.be.greaterThan(0);
      const sessions = r.json.sessions as Array<{ session: string; before: number; after: number }>;
      expect(sessions.map((x) => x.session)).to.deep.equal([s.marked]);
      expect(sessions[0].before).to.be.above(s.threshold);
      expect(sessions[0].after).to.be.below(s.threshold);
      expect(r.json).to.deep.include({ version: 2, threshold: s.threshold, model: s.model, lastSeqOldModel: s.lines - s.after.length });
      // The copy appended before is, message for message, the marked block's flagged segment: it is named.
      expect(r.json.identical).to.deep.equal([{ session: s.copyBefore, as: s.marked }]);
      expect((r.json.warnings as string[]).join('\n')).to.include(`${s.copyBefore} (as ${s.marked})`);
      const saved = JSON.parse(fs.readFileSync(path.join(s.model, 'model.json'), 'utf8'));
      expect(saved.metrics.lineage).to.deep.include({ version: 2, parent: { version: 1, contentSha256: parentSha } });
      expect(saved.metrics.lineage.feedback[0]).to.deep.include({ sessions: [s.marked], source: 'POST /feedback', log: `live ${s.log}` });

      // Lines after the swap: the copy of the marked block ends below the threshold (the old model: above).
      fs.appendFileSync(s.log, s.after.join('\n') + '\n');
      const stats = await scored(port, s.lines);
      await until(() => c.err().includes('feedback: 1 session(s) learnt as normal'), 'the log line');
      expect(stats.modelVersion).to.equal(2);
      expect(stats.events, 'events: the same as scoring all the lines in one go').to.equal(s.events);
      const all = alerts(s);
      expect(new Set(all.map((a) => a.id)).size, 'no alert twice').to.equal(all.length);
      expect(all.filter((a) => a.session === s.copyAfter)).to.deep.equal([]);
      const metrics = (await http(port, '/metrics')).text;
      expect(metrics).to.match(/deepsentry_feedback_total\{result="ok"\} 1\n/);
      expect(metrics).to.match(/deepsentry_feedback_total\{result="failed"\} 1\n/); // the unknown block above
      c.child.kill('SIGTERM');
      expect(await c.exit, c.err()).to.equal(0);
    } finally {
      if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }
    // The checkpoint written after the swap resumes with the new model (same training data: same model hash).
    const again = startLive(s, ['--state', state]);
    try {
      const port = await portOf(again);
      await until(() => /resumed from/.test(again.err()), 'the resume');
      const st = (await http(port, '/api/stats')).json;
      expect([st.modelVersion, st.lines]).to.deep.equal([2, 0]);
      again.child.kill('SIGTERM');
      expect(await again.exit, again.err()).to.equal(0);
    } finally {
      if (again.child.exitCode === null) again.child.kill('SIGKILL');
    }
  });

  it('in a service: a model in memory is swapped without writing; sessions open across a restart, or none kept, cannot be learnt', async () => {
    const lines = fs.readFileSync(base.log, 'utf8').split('\n').filter((l) => l !== '');
    const rejects = async (p: Promise<unknown>, code: string, re: RegExp) => {
      const e = await p.then(() => null, (x: unknown) => x);
      expect(e).to.be.instanceOf(DeepSentryError);
      expect((e as DeepSentryError).code).to.equal(code);
      expect((e as Error).message).to.match(re);
    };
    // A model loaded, then held only in memory (no directory): learnt and swapped, nothing written.
    const model = await DeepSentry.load(base.model);
    model.directory = null;
    const monitor = new LiveMonitor(new ModelScorer(model, { feedbackSessions: 100_000 }), { threshold: { mode: 'fixed' }, tickMs: 0 });
    await monitor.start();
    try {
      await monitor.push(lines);
      await monitor.idle();
      const r = await monitor.feedback([base.marked], 'test');
      expect([r.version, r.model, r.lastSeqOldModel]).to.deep.equal([2, null, lines.length]);
      expect(r.sessions[0].after).to.be.below(base.threshold);
      expect(monitor.snapshot().modelVersion).to.equal(2);
      // Sessions open in a checkpoint and restored: their first lines are not known.
      const open = (await monitor.scorer.snapshot()) as { sessions: [string, unknown][] };
      const restored = new ModelScorer(await DeepSentry.load(base.model), { feedbackSessions: 10 });
      await restored.restore(open);
      await rejects(restored.feedback({ sessions: [open.sessions[0][0]], from: 'test' }), 'DS_INVALID_ARGUMENT', /1 of 1 sessions are held only in part .*deepsentry feedback --log/);
      await restored.close();
    } finally {
      await monitor.stop();
    }
    // No sessions kept: feedback is refused, naming why.
    const none = new LiveMonitor(await createModelScorer(base.model), { threshold: { mode: 'fixed' }, tickMs: 0 });
    await none.start();
    try {
      await rejects(none.feedback([base.marked]), 'DS_UNSUPPORTED', /keeps no recent sessions \(feedbackSessions is 0\)/);
    } finally {
      await none.stop();
    }
  });

  it('in the main thread (--no-worker): a model directory that cannot be written is a 500 and the old model scores on; a second feedback while one is learnt is a 409', async () => {
    const s = scenario('main');
    const c = startLive(s, ['--no-worker']);
    try {
      const port = await portOf(c);
      fs.appendFileSync(s.log, s.before.join('\n') + '\n');
      await scored(port, s.lines - s.after.length);
      // The model's place now holds something else: it is not replaced, the request fails, nothing changes.
      const moved = `${s.model}.moved`;
      fs.renameSync(s.model, moved);
      fs.mkdirSync(s.model);
      fs.writeFileSync(path.join(s.model, 'notes.txt'), 'not a model\n');
      const bad = await http(port, '/feedback', { method: 'POST', body: `${s.marked}\n` });
      expect(bad.status, bad.text).to.equal(500);
      expect(bad.json.error).to.include(s.model).and.to.match(/the model was not changed/);
      expect((await http(port, '/api/stats')).json.modelVersion).to.equal(1);
      fs.rmSync(s.model, { recursive: true });
      fs.renameSync(moved, s.model);

      const first = http(port, '/feedback', { method: 'POST', body: JSON.stringify({ sessions: [s.marked] }), type: 'application/json' });
      let firstDone = false;
      void first.finally(() => (firstDone = true));
      await new Promise((r) => setTimeout(r, 100));
      const firstDoneAtSecond = firstDone;
      const second = await http(port, '/feedback', { method: 'POST', body: `${s.marked}\n` });
      const r = await first;
      expect(r.status, r.text).to.equal(200);
      // The second is refused while the first learns (it takes about a second here); one sent after the first
      // was over would be learnt too.
      expect([second.status, second.json.error ?? null]).to.deep.equal(firstDoneAtSecond ? [200, null] : [409, 'a feedback is being learnt: send this one when it is done']);
      expect((r.json.sessions as Array<{ after: number }>)[0].after).to.be.below(s.threshold);

      fs.appendFileSync(s.log, s.after.join('\n') + '\n');
      const stats = await scored(port, s.lines);
      expect(stats.modelVersion).to.equal(second.status === 200 ? 3 : 2);
      expect(stats.events).to.equal(s.events);
      expect(alerts(s).filter((a) => a.session === s.copyAfter)).to.deep.equal([]);
      expect(alerts(s).filter((a) => a.session === s.copyBefore).length).to.be.greaterThan(0);
      const metrics = (await http(port, '/metrics')).text;
      expect(metrics).to.match(/deepsentry_feedback_total\{result="failed"\} 1\n/);
      c.child.kill('SIGTERM');
      expect(await c.exit, c.err()).to.equal(0);
    } finally {
      if (c.child.exitCode === null) c.child.kill('SIGKILL');
    }
  });
});
