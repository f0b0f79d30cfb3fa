/**
 * Scale-out on a real nats-server (test/support/nats.ts): `deepsentry publish` semantics through the
 * Publisher API, and `deepsentry live --nats` workers as separate processes, with the tiny trained model of
 * test/pipeline-fixtures.ts on a slice of hdfs-dev.
 *
 * The run that matters: 12 partitions, 3 workers; one worker is killed with SIGKILL mid-stream and replaced,
 * a fourth joins halfway, and the NATS server restarts while lines are being published. Every event is made
 * an alert (threshold far below every score), so the alert stream holds every score the workers computed.
 * Then: every event equals the single-process live scorer's bit for bit, every session's scores equal
 * `deepsentry score`'s (scoreLog: lines.csv and sessions.csv), no alert is missing or stored twice, and
 * every partition's lines are checkpointed and acked up to its last one. The joining worker serves the dashboard,
 * /api/stats and /metrics behind a token (the page is loaded in headless chromium when it is installed).
 */
import { expect } from 'chai';
import type { ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import { LineSplitter } from '../../lib/logs/lines';
import { configuredFormat, ParseFailure } from '../../lib/logs/formats';
import { ModelScorer, liveSessionKeyer } from '../../lib/live/model_scorer';
import { createScorer } from '../../lib/live/engine';
import { eventId, type Alert, type RawLine, type ScoredEvent } from '../../lib/live/types';
import { DeepSentry, scoreLog } from '../../lib/pipeline';
import { Publisher, publishLogConfig } from '../../lib/scale/publisher';
import { CheckpointStore } from '../../lib/scale/checkpoints';
import type { WorkerSnapshot } from '../../lib/scale/worker';
import { assign } from '../../lib/scale/leases';
import { connectNats, partitionOf, stableHash, topology } from '../../lib/scale/topology';
import { runCli as cli, startCli } from '../support/cli';
import { hdfsSlice, hdfsTimeOf, trainedModel, withHdfsTime } from '../support/pipeline-fixtures';
import { workDir } from '../support/tmp';
import { requireData } from '../support/data';
import { NatsServer, requireNats } from '../support/nats';
import { CHROMIUM, CHROMIUM_FLAGS, chromiumExpected } from '../support/chromium';

/** Lines of hdfs-dev the CI run publishes (bench/scale.ts runs the whole log). */
const LINES = Number(process.env.DS_SCALE_TEST_LINES ?? 12000);
const P = 12;
const TOKEN = 'scale-worker-token';

interface Worker {
  proc: ChildProcess;
  stderr: () => string;
  exited: Promise<number | null>;
}

/** Worker processes still running when the test process exits are killed (one exit listener for all of them). */
const running = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of running) c.kill('SIGKILL');
});

function startWorker(modelDir: string, url: string, stream: string, extra: string[] = []): Worker {
  const args = [...extra, 'live', '--model', modelDir, '--nats', url, '--stream', stream, '--lease-ms', '3000', '--checkpoint-ms', '200', '--max-batch', '500', '--threshold=-1e9', '--context', '1', '--threads', '1'];
  const w = startCli(args);
  running.add(w.child);
  w.child.once('exit', () => running.delete(w.child));
  return { proc: w.child, stderr: w.err, exited: w.exit };
}

async function until(what: string, f: () => Promise<boolean>, ms: number, diag: () => string = () => ''): Promise<void> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await f().catch(() => false)) return;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what}\n${diag()}`);
}

async function alertCount(jsm: JetStreamManager, stream: string): Promise<number> {
  return (await jsm.streams.info(stream)).state.messages;
}

function readCsv(file: string): string[][] {
  return fs.readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split(','));
}

describe('scale-out on NATS JetStream (real nats-server, worker processes)', function () {
  this.timeout(240_000);
  let bin: string;
  let modelDir: string;
  before(async function () {
    requireData(this);
    modelDir = await trainedModel();
  });

  it('partition assignment is balanced and moves few partitions when a worker joins', () => {
    const three = assign(['a', 'b', 'c'], P);
    const four = assign(['a', 'b', 'c', 'd'], P);
    for (const m of ['a', 'b', 'c']) expect(three.filter((x) => x === m)).to.have.length(4);
    for (const m of ['a', 'b', 'c', 'd']) expect(three.length === P && four.filter((x) => x === m).length).to.equal(3);
    expect(four.filter((x, p) => x !== three[p]).length).to.be.at.most(6);
    expect(assign(['c', 'a', 'b'], P)).to.deep.equal(three); // every worker computes the same
  });

  it('partitioned scoring in-process: per-partition scorers with the stream clock give the single process\'s events exactly; without the clock they do not', async () => {
    const model = await DeepSentry.load(modelDir);
    const format = configuredFormat(model.logConfig);
    const keyer = liveSessionKeyer(model.logConfig);
    const lines = new LineSplitter().push(fs.readFileSync(hdfsSlice(LINES)));
    const parts: RawLine[][] = Array.from({ length: P }, () => []);
    let clock: number | null = null;
    lines.forEach((l, i) => {
      const p = format.parse(l.text);
      const keys = p instanceof ParseFailure ? [] : keyer.keys(p, p.timestamp);
      if (!(p instanceof ParseFailure) && p.timestamp !== null && (clock === null || p.timestamp > clock)) clock = p.timestamp;
      const ps = new Set(keys.map((k) => partitionOf(k, P)));
      if (ps.size === 0) ps.add(stableHash(l.text) % P);
      for (const q of ps) parts[q]!.push({ seq: i + 1, lineNo: l.lineNo, offset: l.offset, text: l.text, ...(clock !== null ? { clock } : {}) });
    });
    const key = (e: ScoredEvent) => `${e.lineNo}:${e.isSessionEnd ? 'end:' : ''}${e.session}`;
    const partitioned = async (withClock: boolean) => {
      const out = new Map<string, number>();
      for (let q = 0; q < P; q++) {
        const scorer = new ModelScorer(model, { ownsKey: (k) => partitionOf(k, P) === q });
        const input = withClock ? [...parts[q]!, { seq: 0, lineNo: 0, offset: 0, text: '', clock: clock! }] : parts[q]!.map(({ clock: _c, ...l }) => l);
        for (const e of await scorer.scoreLines(input)) out.set(key(e), e.score);
      }
      return out;
    };
    const one = new ModelScorer(model, {});
    const want = new Map((await one.scoreLines(lines.map((l, i) => ({ seq: i + 1, lineNo: l.lineNo, offset: l.offset, text: l.text })))).map((e) => [key(e), e.score]));
    expect(want.size).to.be.greaterThan(LINES * 0.9);
    expect([...(await partitioned(true))].sort()).to.deep.equal([...want].sort());
    // The clock is what makes a quiet partition end its sessions when the stream's time passes them.
    expect([...(await partitioned(false))].sort()).not.to.deep.equal([...want].sort());
    model.dispose();
  });

  it('bad arguments are clear errors naming the option', () => {
    const a = cli(['live', '--model', modelDir, '--nats', 'nats://127.0.0.1:1', '--follow', 'x.log']);
    expect([a.code, a.stderr]).to.satisfy(([c, e]: [number, string]) => c !== 0 && /Give one input: --follow FILE, - \(stdin\) or --nats URL/.test(e));
    const b = cli(['publish', 'x.log', '--nats', 'nats://127.0.0.1:1', '--partitions', '0']);
    expect(b.code).to.not.equal(0);
    expect(b.stderr).to.match(/Expected an integer in 1\.\.4096 for --partitions but received 0/);
    expect(() => topology('bad name!')).to.throw(/for stream but received/);
  });

  describe('with a real nats-server', function () {
    before(function () {
      bin = requireNats(this);
    });

    it('checkpoints: a state over the message size survives a takeover; a fenced owner cannot save; the bucket does not grow per save', async () => {
      const server = await NatsServer.start(bin);
      const nc = await connectNats(server.url, 'test');
      try {
        const kv = await new Kvm(nc).create('T_ckpt', { history: 1 });
        const a = new CheckpointStore(kv, 'a');
        const b = new CheckpointStore(kv, 'b');
        // ~1.3 MB of JSON, ~750 KB gzipped: two chunks
        const big = Array.from({ length: 60_000 }, (_, i) => `${i}:${stableHash(String(i)).toString(36)}${stableHash(`x${i}`).toString(36)}`);
        const state = (n: number) => ({ scorer: 'bilstm', scorerState: { n, big }, threshold: { mode: 'fixed' as const, seen: n } });
        const ca = await a.claim(0);
        expect(ca.state).to.equal(null);
        let rev = ca.revision;
        for (let n = 1; n <= 4; n++) rev = (await a.save(0, rev, ca.revision, 100 * n, state(n)))!;
        // messages kept by the bucket's stream (a purged key leaves a marker: keys() would not show it)
        const jsm = await jetstreamManager(nc);
        const stored = async () => (await jsm.streams.info('KV_T_ckpt')).state.messages;
        const after4 = await stored();
        rev = (await a.save(0, rev, ca.revision, 500, state(5)))!;
        expect(await stored(), 'a save left messages behind').to.equal(after4);
        const cb = await b.claim(0);
        expect([cb.lastSeq, (cb.state!.scorerState as { n: number }).n, (cb.state!.scorerState as { big: string[] }).big]).to.deep.equal([500, 5, big]);
        expect(await a.save(0, rev, ca.revision, 600, state(6)), 'the fenced owner saved').to.equal(null);
        const r2 = await b.save(0, cb.revision, cb.revision, 700, state(7));
        expect(r2).to.be.a('number');
        expect((await new CheckpointStore(kv, 'c').claim(0)).lastSeq).to.equal(700);
      } finally {
        await nc.close();
        await server.stop();
      }
    });

    it('deepsentry publish: a summary; a different partition count or an unreachable server is a clear error', async () => {
      const server = await NatsServer.start(bin);
      try {
        const log = hdfsSlice(300);
        const r = cli(['publish', log, '--nats', server.url, '--stream', 'CLI', '--partitions', '12', '--model', modelDir, '--json']);
        expect(r.code, r.stderr).to.equal(0);
        const sum = JSON.parse(r.stdout);
        expect([sum.lines, sum.partitions, sum.duplicates]).to.deep.equal([300, 12, 0]);
        expect(sum.messages).to.be.at.least(300);
        // again: every message is already stored (same ids), none twice
        const again = JSON.parse(cli(['publish', log, '--nats', server.url, '--stream', 'CLI', '--model', modelDir, '--json']).stdout);
        expect([again.messages, again.duplicates]).to.deep.equal([0, sum.messages]);
        const bad = cli(['publish', log, '--nats', server.url, '--stream', 'CLI', '--partitions', '4', '--model', modelDir]);
        expect(bad.code).to.equal(1);
        expect(bad.stderr).to.match(/stream CLI has 12 partitions, not 4/);
      } finally {
        await server.stop();
      }
      const down = cli(['publish', hdfsSlice(300), '--nats', 'nats://127.0.0.1:1', '--model', modelDir]);
      expect(down.code).to.equal(1);
      expect(down.stderr).to.match(/cannot connect to NATS at nats:\/\/127\.0\.0\.1:1/);
    });

    it(`${LINES} hdfs-dev lines, 12 partitions: kill -9 a worker, a fourth joins, the server restarts; scores equal score's, alerts once, all acked`, async () => {
      // The slice and one line of another block two hours after it: the stream moves on past the count horizon,
      // so every key's count judgement is due in the workers as at the end of `score`'s input.
      const log = path.join(workDir(), `scale-${LINES}.log`);
      const slice = fs.readFileSync(hdfsSlice(LINES), 'utf8').split('\n').filter(Boolean);
      const last = slice[slice.length - 1]!;
      fs.writeFileSync(log, [...slice, withHdfsTime(last.replace(/blk_-?\d+/g, 'blk_4242424242'), hdfsTimeOf(last) + 2 * 3_600_000)].join('\n') + '\n');
      const stream = 'DSTEST';
      const topo = topology(stream);
      const server = await NatsServer.start(bin);
      const workers: Worker[] = [];
      const closers: (() => Promise<unknown>)[] = [];
      const diag = () => workers.map((w, i) => `worker ${i}: ${w.stderr().slice(-1500)}`).join('\n');
      try {
        const pub = await Publisher.open({ nats: server.url, stream, partitions: P, logConfig: publishLogConfig({ model: modelDir }), source: 'hdfs' });
        closers.push(() => pub.close());
        const nc = await connectNats(server.url, 'test');
        closers.push(() => nc.close());
        const jsm = await jetstreamManager(nc);
        const text = fs.readFileSync(log);
        const lines = new LineSplitter().push(text);
        const quarter = Math.ceil(lines.length / 4);
        workers.push(startWorker(modelDir, server.url, stream), startWorker(modelDir, server.url, stream), startWorker(modelDir, server.url, stream));

        await pub.publish(lines.slice(0, quarter));
        // kill -9 one worker once scoring is under way, and start a replacement
        await until('the first alerts', async () => (await alertCount(jsm, topo.alertStream)) > 500, 120_000, diag);
        // ... and once every partition has a checkpoint past its start, so that the killed worker's partitions
        // are taken over from one (without this wait the kill can come before its first checkpoint)
        const kvm = new Kvm(nc);
        const ckpts = new CheckpointStore(await kvm.open(topo.ckptBucket), 'test');
        await until('a checkpoint on every partition', async () => (await ckpts.positions(P)).every((s) => s > 0), 120_000, diag);
        workers[0]!.proc.kill('SIGKILL');
        workers.push(startWorker(modelDir, server.url, stream));
        await pub.publish(lines.slice(quarter, 2 * quarter));
        // a fourth worker joins halfway (serving its dashboard and metrics, behind a token)
        workers.push(startWorker(modelDir, server.url, stream, ['--listen', '127.0.0.1:0', '--token', TOKEN]));
        // the server restarts while the third quarter is being published
        const third = pub.publish(lines.slice(2 * quarter, 3 * quarter));
        await new Promise((r) => setTimeout(r, 50));
        await server.restart();
        await third;
        await pub.publish(lines.slice(3 * quarter));
        await pub.finish();

        // every partition checkpointed and acked up to its last message
        const js = jetstream(nc);
        const last: number[] = [];
        for (let p = 0; p < P; p++) last.push((await jsm.streams.getMessage(stream, { last_by_subj: topo.subject(p) }))!.seq);
        await until('every partition checkpointed', async () => (await ckpts.positions(P)).every((s, p) => s >= last[p]!), 180_000, () => `positions ${JSON.stringify(last)}\n${diag()}`);
        // Each partition's consumer (the owner's: a takeover deletes the previous owner's) has nothing pending
        // and its ack floor — or its start, when the lines before it were acked on a predecessor and are in
        // the checkpoint it started from — at the partition's last line.
        await until(
          'every line acked',
          async () => {
            const done = new Set<number>();
            for await (const ci of jsm.consumers.list(stream)) {
              if (!ci) continue;
              const p = Number(/^p(\d+)-/.exec(ci.name)![1]);
              const floor = Math.max(ci.ack_floor.stream_seq, (ci.config.opt_start_seq ?? 1) - 1);
              if (ci.num_ack_pending === 0 && ci.num_pending === 0 && floor >= last[p]!) done.add(p);
            }
            return done.size === P;
          },
          30_000,
          diag,
        );

        // the joiner serves what a monitor serves, behind its token: the dashboard, /api/stats and /metrics
        // (which name the partitions it owns and their lag); /health and /ready need no token
        const port = Number(/listening on http:\/\/127\.0\.0\.1:(\d+)\//.exec(workers[4]!.stderr())?.[1]);
        const base = `http://127.0.0.1:${port}`;
        const auth = { headers: { authorization: `Bearer ${TOKEN}` } };
        for (const route of ['/', '/api/stats', '/metrics']) {
          expect((await fetch(base + route)).status, `${route} without the token`).to.equal(401);
          expect((await fetch(base + route, { headers: { authorization: 'Bearer not-the-token' } })).status, `${route} with a wrong token`).to.equal(401);
        }
        const metrics = await (await fetch(`${base}/metrics`, auth)).text();
        const owned = Number(/^deepsentry_scale_owned_partitions (\d+)$/m.exec(metrics)?.[1]);
        expect(owned, metrics.slice(0, 500)).to.be.within(1, P);
        expect(metrics.match(/^deepsentry_scale_partition_lag\{partition="\d+"\} 0$/gm) ?? []).to.have.length(owned);
        expect(Number(/^deepsentry_lines_total (\d+)$/m.exec(metrics)?.[1])).to.be.greaterThan(0);
        const page = await fetch(`${base}/?token=${TOKEN}`);
        expect(page.status).to.equal(200);
        expect(page.headers.get('content-type')).to.match(/^text\/html/);
        expect(await page.text()).to.contain('id="partRows"');
        const stats = (await (await fetch(`${base}/api/stats?token=${TOKEN}`)).json()) as WorkerSnapshot;
        expect(stats.worker).to.be.a('string');
        expect(stats.stream).to.equal(stream);
        expect(stats.partitions).to.equal(P);
        expect(stats.owned).to.have.length(owned);
        expect(stats.owned.every((s) => s.partition >= 0 && s.partition < P && s.lag === 0 && s.lastSeq > 0)).to.equal(true);
        expect(stats.lag).to.equal(0);
        expect(stats.ready).to.equal(true);
        expect(stats.lines).to.be.greaterThan(0);
        expect(stats.history.length).to.be.greaterThan(0);
        expect(stats.alerts.length).to.be.greaterThan(0); // every event is an alert here
        expect((await fetch(`${base}/health`)).status).to.equal(200);
        expect((await fetch(`${base}/ready`)).status).to.equal(200);
        // the dashboard in a real browser (when chromium is there: always in CI) draws the worker's partitions
        if (chromiumExpected()) {
          const { chromium } = await import('playwright-core');
          const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_FLAGS });
          try {
            const pg = await browser.newPage();
            const errors: string[] = [];
            pg.on('pageerror', (e) => errors.push(e.message));
            expect((await pg.goto(`${base}/?token=${TOKEN}`))!.status()).to.equal(200);
            await pg.waitForFunction(`document.querySelectorAll('#partRows tr').length === ${owned}`, undefined, { timeout: 20_000 });
            const view = (await pg.evaluate(`({ source: document.getElementById('source').textContent, status: document.getElementById('status').textContent,
              lines: document.getElementById('lines').textContent, rows: [...document.querySelectorAll('#partRows tr')].map((tr) => [...tr.children].map((td) => td.textContent)) })`)) as {
              source: string; status: string; lines: string; rows: string[][];
            };
            expect(view.source).to.contain(`worker ${stats.worker} · owns ${owned} of ${P} partitions · lag 0`);
            expect(view.status).to.equal('live');
            expect(view.lines).to.not.equal('–');
            expect(view.rows.map((r) => Number(r[0]))).to.deep.equal(stats.owned.map((o) => o.partition));
            expect(view.rows.every((r) => r[1] === '0')).to.equal(true); // no lag
            expect(errors).to.deep.equal([]);
          } finally {
            await browser.close();
          }
        }

        // the workers leave cleanly
        for (const w of workers.slice(1)) w.proc.kill('SIGTERM');
        for (const w of workers.slice(1)) expect(await w.exited, diag()).to.equal(0);
        expect(workers.some((w) => /reconnected to NATS/.test(w.stderr())), 'no worker saw the restart').to.equal(true);
        // the killed worker's partitions were taken over mid-stream, from their checkpoints
        expect(workers.slice(1).some((w) => /partition \d+: resumed after stream sequence [1-9]/.test(w.stderr())), diag()).to.equal(true);

        // every alert, each once
        const alerts: Alert[] = [];
        const oc = await js.consumers.get(topo.alertStream);
        const total = await alertCount(jsm, topo.alertStream);
        // in pulls of 5,000 (one pull of everything may not arrive within its expiry), at most a minute
        for (const end = Date.now() + 60_000; alerts.length < total && Date.now() < end; ) {
          for await (const m of await oc.fetch({ max_messages: Math.min(5000, total - alerts.length), expires: 5000 })) alerts.push(m.json<Alert>());
        }
        expect(alerts.length, 'alerts read back').to.equal(total);
        const ids = new Set(alerts.map((a) => a.id));
        expect(ids.size, 'an alert was stored twice').to.equal(alerts.length);

        // the single-process live scorer: the same events, bit for bit
        const model = await DeepSentry.load(modelDir);
        const one = await createScorer(modelDir, { worker: false });
        const events = await one.scoreLines(lines.map((l, i) => ({ seq: i + 1, lineNo: l.lineNo, offset: l.offset, text: l.text })));
        await one.close();
        // (a key's count judgement comes at its last session's last line, as that session's end: its own key)
        const key = (e: { lineNo: number; session: string; isSessionEnd: boolean; endReason?: string }) => `${e.lineNo}:${e.isSessionEnd ? `${e.endReason === 'counts' ? 'counts' : 'end'}:` : ''}${e.session}`;
        const got = new Map(alerts.map((a) => [key(a), a.score]));
        expect(got.size, 'two alerts for one event').to.equal(alerts.length);
        const missing = events.filter((e) => !got.has(key(e))).map(key);
        expect(missing.slice(0, 10), `${missing.length} events without an alert`).to.deep.equal([]);
        expect(alerts.length, 'alerts for events the single process does not have').to.equal(events.length);
        const differ = events.filter((e) => got.get(key(e)) !== e.score);
        expect(differ.slice(0, 5).map((e) => [key(e), e.score, got.get(key(e))]), `${differ.length} scores differ`).to.deep.equal([]);
        for (const a of alerts) expect(a.id).to.equal(eventId(a)); // ids are stream sequences: stable across replays

        // and deepsentry score's per-line and per-session scores (as it writes them)
        const out = path.join(workDir(), 'scale-score');
        await scoreLog(model, log, out);
        model.dispose();
        const f = (x: number) => Math.fround(x).toPrecision(6);
        const lineScores = readCsv(path.join(out, 'lines.csv'));
        const byLine = new Map(alerts.filter((a) => !a.isSessionEnd).map((a) => [`${a.lineNo}:${a.session}`, a.score]));
        expect(byLine.size).to.equal(lineScores.length);
        for (const r of lineScores) expect(f(byLine.get(`${r[0]}:${r[1]}`) as number), `line ${r[0]} ${r[1]}`).to.equal(f(Number(r[2])));
        const max = new Map<string, number>();
        for (const a of alerts) max.set(a.session, Math.max(max.get(a.session) ?? -Infinity, a.score));
        const sessions = readCsv(path.join(out, 'sessions.csv'));
        expect(max.size).to.equal(sessions.length);
        for (const r of sessions) expect(f(max.get(r[0]!) as number), r[0]).to.equal(f(Number(r[1])));
      } finally {
        for (const c of closers) await c().catch(() => undefined);
        for (const w of workers) w.proc.kill('SIGKILL');
        await server.stop();
      }
    });
  });
});
