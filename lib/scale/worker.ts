/**
 * A scale-out worker: joins the worker group of a partitioned stream (topology.ts), owns the partitions the
 * group assigns it (leases.ts), and scores each owned partition with the live monitor's model scorer
 * (lib/live/model_scorer.ts ModelScorer, one per partition over one loaded model, scoring only the partition's
 * session keys) and a LiveThreshold, as `deepsentry live` does.
 *
 * Per partition, in a loop: fetch a batch from the partition's consumer, score it, publish its alerts to
 * `<prefix>.alerts` (message id = alert id, so a replay stores none twice) and hand them to the local sinks,
 * then — at most every `checkpointMs` — checkpoint the scorer and threshold state with the last stream
 * sequence (checkpoints.ts), and only then acknowledge the lines (AckAll on the last one).
 *
 * Taking a partition over: claim its checkpoint (fencing the previous owner), restore the state, and read
 * the partition from the stream sequence after the checkpoint's with a new consumer (`p<p>-<revision>`),
 * deleting the partition's older consumers. Lines the state already reflects are skipped by their stream
 * sequence, lines after it are scored again and give the same events (scoring is a pure function of state
 * and lines, lib/live/types.ts), hence the same alert ids.
 *
 * What it does is watched as a live monitor's is: `metrics` (lib/live/metrics.ts, plus the partition gauges
 * of metrics.ts) and `snapshot()` (the dashboard's data, with the owned partitions and their lag), served by
 * lib/live/server.ts.
 *
 * Order is what makes the scores equal a single process's: a new consumer delivers a partition's lines in
 * stream order, and a worker never lets one be skipped: on a reconnect, a redelivery of a line not yet
 * scored, or a gap in the consumer's delivery sequence, it drops the batch and reads again from its last
 * scored line with a new consumer.
 */
import * as os from 'node:os';
import type { NatsConnection } from '@nats-io/nats-core';
import { jetstream, AckPolicy, DeliverPolicy, type Consumer, type JetStreamClient, type JsMsg } from '@nats-io/jetstream';
import { DeepSentryError } from '../errors';
import { WebhookSink, type AlertSink } from '../live/sinks';
import { RecentActivity } from '../live/activity';
import { MonitorMetrics } from '../live/metrics';
import type { MonitorSnapshot } from '../live/monitor';
import type { MonitorService } from '../live/server';
import { LiveThreshold, type ThresholdOptions } from '../live/thresholds';
import { applyContext, eventId, type Alert, type RawLine, type ScorerOptions } from '../live/types';
import { DeepSentry, pickLoadOptions, type LoadOptions } from '../pipeline/model';
import { ModelScorer } from '../live/model_scorer';
import { checkModelDir } from '../live/engine';
import { CheckpointStore } from './checkpoints';
import { registerScaleMetrics } from './metrics';
import { Lease, Membership, assign } from './leases';
import type { KV } from '@nats-io/kv';
import { HDR_CLOCK, HDR_LINE, HDR_SOURCE, connectNats, openLeases, openTopology, partitionOf, topology, type Opened } from './topology';

/** Options of a ScaleWorker. */
export interface ScaleWorkerOptions extends ScorerOptions, LoadOptions {
  nats: string;
  stream?: string;
  /** model directory written by `deepsentry train` */
  model: string;
  /** Threshold mode and parameters (floor: the model's saved threshold). */
  threshold: ThresholdOptions;
  /** Local alert destinations (besides the alert stream): stdout, NDJSON file, webhook. */
  sinks?: AlertSink[];
  /** Lease TTL (ms) when this worker creates the lease bucket (default 10 s). */
  leaseTtlMs?: number;
  /** Least time between checkpoints of a partition, i.e. between its acks (default 1000 ms). */
  checkpointMs?: number;
  /** Most lines per fetch (default 1000). */
  fetchBatch?: number;
  /** Most time `stop()` spends handing the partitions over (default 15 s). */
  stopTimeoutMs?: number;
  /** Worker id (default host-pid-random). */
  id?: string;
  onNotice?: (message: string) => void;
}

/** What a worker's GET /api/stats returns: a monitor's snapshot over all its partitions, and each partition's. */
export interface WorkerSnapshot extends MonitorSnapshot {
  worker: string;
  stream: string;
  /** partitions of the stream (this worker owns `owned`) */
  partitions: number;
  owned: PartitionStats[];
  /** lines in the stream not yet delivered to this worker, over its owned partitions */
  lag: number;
}

/** Per-partition counters for metrics. */
export interface PartitionStats {
  partition: number;
  lastSeq: number;
  /** lines in the partition not yet delivered to this worker (the consumer's pending count) */
  lag: number;
  lines: number;
  alerts: number;
  openSessions: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class ScaleWorker implements MonitorService {
  readonly id: string;
  /** the live monitor's metrics (lines, events, scores, webhook…) and the partition gauges */
  readonly metrics: MonitorMetrics;
  /** per-second history and latest alerts, for the dashboard */
  readonly activity = new RecentActivity();
  private readonly startedAt = new Date();
  private readonly webhook: WebhookSink | null;
  /** totals since the worker started, over every partition it owned */
  nLines = 0;
  nEvents = 0;
  nAnomalies = 0;
  private readonly runners = new Map<number, PartitionRunner>();
  private readonly membership: Membership;
  readonly ckpts: CheckpointStore;
  readonly js: JetStreamClient;
  private beatTimer: NodeJS.Timeout | null = null;
  private beating: Promise<void> | null = null;
  private stopping = false;
  /** set by a reconnect: every runner reads again from its last scored line */
  reconnects = 0;
  private failure: Error | null = null;
  private failWaiters: ((e: Error) => void)[] = [];

  private constructor(
    readonly nc: NatsConnection,
    readonly opened: Opened & { leases: KV; leaseTtlMs: number },
    readonly model: DeepSentry,
    readonly o: ScaleWorkerOptions,
    id: string,
  ) {
    this.id = id;
    this.membership = new Membership(opened.leases, id);
    this.ckpts = new CheckpointStore(opened.ckpt, id);
    this.js = jetstream(nc, { timeout: 5000 });
    this.webhook = (o.sinks?.find((s) => s instanceof WebhookSink) as WebhookSink | undefined) ?? null;
    this.metrics = new MonitorMetrics(
      {
        scorerStats: () => this.sessionStats(),
        queuedLines: () => 0, // lines wait in the stream: the lag gauges count them
        threshold: () => this.thresholdNow() ?? Infinity,
        webhook: () => (this.webhook ? { sent: this.webhook.sent, failed: this.webhook.failed, dropped: this.webhook.dropped, overflowed: this.webhook.overflowed, queued: this.webhook.queued } : null),
        ready: () => this.ready,
      },
      { defaultMetrics: true },
    );
    registerScaleMetrics(this.metrics.registry, this);
  }

  /** Loads the model, connects, joins the group. */
  static async start(o: ScaleWorkerOptions): Promise<ScaleWorker> {
    checkModelDir(o.model);
    const id = (o.id ?? `${os.hostname()}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`).replace(/[^-_A-Za-z0-9]/g, '_');
    const model = await DeepSentry.load(o.model, pickLoadOptions(o));
    const nc = await connectNats(o.nats, `deepsentry worker ${id}`);
    let opened: Opened & { leases: KV; leaseTtlMs: number };
    try {
      const topo = topology(o.stream);
      opened = { ...(await openTopology(nc, topo)), ...(await openLeases(nc, topo, o.leaseTtlMs)) };
    } catch (e) {
      await nc.close();
      model.dispose();
      throw e;
    }
    const w = new ScaleWorker(nc, opened, model, o, id);
    void w.watchStatus();
    await w.beat();
    const every = Math.max(50, Math.floor(opened.leaseTtlMs / 3));
    w.beatTimer = setInterval(() => {
      if (w.beating !== null) return;
      // A beat that hangs (a request lost in a reconnect) must not stop the next ones: it is given up on
      // after a lease TTL (its lease operations are atomic, a late one does no harm).
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<void>((r) => (timer = setTimeout(r, opened.leaseTtlMs)));
      w.beating = Promise.race([w.beat(), limit]).finally(() => {
        clearTimeout(timer);
        w.beating = null;
      });
    }, every);
    w.notice(`worker ${id} joined stream ${opened.topo.stream} (${opened.partitions} partitions, lease ${opened.leaseTtlMs} ms)`);
    return w;
  }

  notice(msg: string): void {
    this.o.onNotice?.(msg);
  }

  private connected = true;

  private async watchStatus(): Promise<void> {
    for await (const s of this.nc.status()) {
      if (s.type === 'disconnect') this.connected = false;
      if (s.type === 'reconnect') {
        this.connected = true;
        this.reconnects++;
        this.notice('reconnected to NATS: reading every owned partition again from its last scored line');
      }
    }
  }

  /** Heartbeat, lease renewals, and rebalancing (every TTL/3). Connection errors are retried next time. */
  private async beat(): Promise<void> {
    if (this.stopping) return;
    try {
      for (const r of this.runners.values()) {
        if (!(await r.lease.renew())) {
          this.notice(`lost the lease of partition ${r.partition}: stopping it`);
          r.abort();
          this.runners.delete(r.partition);
        }
      }
      const members = await this.membership.beat({ partitions: [...this.runners.keys()] });
      if (this.stopping) return;
      const owners = assign(members, this.opened.partitions);
      for (const r of [...this.runners.values()]) {
        if (owners[r.partition] !== this.id) {
          this.runners.delete(r.partition);
          this.notice(`handing partition ${r.partition} to ${owners[r.partition]}`);
          void r.finish().then(() => r.lease.release());
        }
      }
      for (let p = 0; p < this.opened.partitions; p++) {
        if (owners[p] !== this.id || this.runners.has(p)) continue;
        const lease = await Lease.acquire(this.opened.leases, p, this.id);
        if (lease === null) continue; // its previous owner has not let go yet
        const r = new PartitionRunner(this, p, lease);
        this.runners.set(p, r);
        this.notice(`owns partition ${p}`);
        r.start().catch((e) => {
          // A partition given up (lease lost, claimed by another worker) ends quietly; anything else fails the worker.
          if (!r.isAborted) this.fail(e as Error);
        });
      }
    } catch (e) {
      if (e instanceof DeepSentryError) this.fail(e);
      // else: the server is unreachable; the next beat retries
    }
  }

  private fail(e: Error): void {
    if (this.failure) return;
    this.failure = e;
    for (const f of this.failWaiters.splice(0)) f(e);
  }

  /** Rejects when the worker fails (a state it cannot restore, a scorer error). */
  failed(): Promise<never> {
    return new Promise((_, reject) => {
      if (this.failure) reject(this.failure);
      else this.failWaiters.push(reject);
    });
  }

  /** Connected, not failed, not stopping. */
  get ready(): boolean {
    return !this.stopping && this.failure === null && !this.nc.isClosed() && this.connected;
  }

  /** Owned partitions and their counters. */
  stats(): PartitionStats[] {
    return [...this.runners.values()].map((r) => r.stats()).sort((a, b) => a.partition - b.partition);
  }

  /** Open, evicted and unparsed counts summed over the owned partitions' scorers. */
  private sessionStats(): { openSessions: number; evictedSessions: number; unparsedLines: number } {
    const t = { openSessions: 0, evictedSessions: 0, unparsedLines: 0 };
    for (const r of this.runners.values()) {
      const s = r.scorerStats();
      t.openSessions += s.openSessions;
      t.evictedSessions += s.evictedSessions;
      t.unparsedLines += s.unparsedLines;
    }
    return t;
  }

  /** The highest live threshold over the owned partitions (each has its own); null when none is set yet. */
  private thresholdNow(): number | null {
    let t: number | null = null;
    for (const r of this.runners.values()) {
      const v = r.threshold.current();
      if (Number.isFinite(v)) t = t === null ? v : Math.max(t, v);
    }
    return t;
  }

  /** Everything the dashboard shows (GET /api/stats). */
  snapshot(): WorkerSnapshot {
    const owned = this.stats();
    const rs = [...this.runners.values()];
    return {
      now: Math.floor(Date.now() / 1000),
      scorer: ModelScorer.NAME,
      source: `nats stream ${this.opened.topo.stream}`,
      startedAt: this.startedAt.toISOString(),
      ready: this.ready,
      lines: this.nLines,
      events: this.nEvents,
      anomalies: this.nAnomalies,
      droppedLines: 0,
      queuedLines: 0,
      threshold: this.thresholdNow(),
      thresholdMode: this.o.threshold.mode,
      warmingUp: rs.some((r) => r.threshold.warmingUp),
      sessions: this.sessionStats(),
      eventLoopDelayMs: this.metrics.loopDelayMs(),
      history: this.activity.history(),
      alerts: this.activity.alerts(),
      worker: this.id,
      stream: this.opened.topo.stream,
      partitions: this.opened.partitions,
      owned,
      lag: owned.reduce((n, s) => n + s.lag, 0),
    };
  }

  /** Leaves the group: finishes the batch in flight, checkpoints and acks every owned partition, releases. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    if (this.beatTimer) clearInterval(this.beatTimer);
    if (this.beating) await this.beating;
    const rs = [...this.runners.values()];
    this.runners.clear();
    // Hand over within `stopTimeoutMs` (default 15 s): with the server away, a last checkpoint cannot be
    // written, and waiting longer gains nothing (the next owner scores the lines after the last one again).
    const handedOver = Promise.all(rs.map(async (r) => {
      await r.finish();
      await r.lease.release();
    }));
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<void>((r) => (timer = setTimeout(r, this.o.stopTimeoutMs ?? 15_000)));
    await Promise.race([handedOver.then(() => this.membership.leave()), limit]);
    clearTimeout(timer);
    for (const r of rs) r.abort();
    for (const s of this.o.sinks ?? []) if (s.drain) await s.drain(10_000);
    for (const s of this.o.sinks ?? []) if (s.close) await s.close();
    await Promise.race([this.nc.drain().catch(() => undefined), sleep(2000)]);
    if (!this.nc.isClosed()) await this.nc.close().catch(() => undefined);
    this.metrics.close();
    this.model.dispose();
  }
}

/** One owned partition: restore, then fetch → score → alerts → checkpoint → ack, until finished or lost. */
class PartitionRunner {
  private scorer: ModelScorer;
  readonly threshold: LiveThreshold;
  private lastSeq = 0;
  private revision = 0;
  /** the checkpoint revision of this runner's claim: its chunk keys (checkpoints.ts) */
  private claim = 0;
  private consumer: Consumer | null = null;
  private expectDseq = 0;
  private seenReconnects = 0;
  private toAck: JsMsg | null = null;
  private dirty = false;
  private lastCheckpoint = 0;
  private stopRequested = false;
  private aborted = false;
  private done: Promise<void> | null = null;
  private nLines = 0;
  private nAlerts = 0;
  private lag = 0;
  private lastError = '';

  constructor(
    private readonly w: ScaleWorker,
    readonly partition: number,
    readonly lease: Lease,
  ) {
    const P = w.opened.partitions;
    const o = w.o;
    this.scorer = new ModelScorer(w.model, {
      ...(o.idleTimeoutMs !== undefined ? { idleTimeoutMs: o.idleTimeoutMs } : {}),
      ...(o.maxOpenSessions !== undefined ? { maxOpenSessions: o.maxOpenSessions } : {}),
      ...(o.windowLines !== undefined ? { windowLines: o.windowLines } : {}),
      ownsKey: (k) => partitionOf(k, P) === partition,
    });
    const floor = o.threshold.floor ?? w.model.threshold;
    this.threshold = new LiveThreshold({ ...o.threshold, floor });
  }

  scorerStats(): { openSessions: number; evictedSessions: number; unparsedLines: number } {
    return this.scorer.stats();
  }

  stats(): PartitionStats {
    return { partition: this.partition, lastSeq: this.lastSeq, lag: this.lag, lines: this.nLines, alerts: this.nAlerts, openSessions: this.scorer.stats().openSessions };
  }

  start(): Promise<void> {
    this.done = this.run();
    return this.done;
  }

  /** Stops after the batch in flight, with a last checkpoint and ack. */
  async finish(): Promise<void> {
    this.stopRequested = true;
    await this.done?.catch(() => undefined);
  }

  get isAborted(): boolean {
    return this.aborted;
  }

  /** The lease is lost: stop at once, write nothing more. */
  abort(): void {
    this.aborted = true;
    this.stopRequested = true;
  }

  private get subject(): string {
    return this.w.opened.topo.subject(this.partition);
  }

  private async run(): Promise<void> {
    const c = await this.retrying(() => this.w.ckpts.claim(this.partition));
    this.revision = c.revision;
    this.claim = c.revision;
    if (c.state !== null) {
      if (c.state.scorer !== this.scorer.name) throw new DeepSentryError('DS_CONFIG', `partition ${this.partition}'s checkpoint was written by scorer '${c.state.scorer}', not '${this.scorer.name}'`);
      await this.scorer.restore(c.state.scorerState);
      this.threshold.restore(c.state.threshold);
    }
    this.lastSeq = c.lastSeq;
    this.lastCheckpoint = Date.now();
    this.w.notice(`partition ${this.partition}: resumed after stream sequence ${this.lastSeq}`);
    await this.retrying(() => this.openConsumer());
    const batchMax = this.w.o.fetchBatch ?? 1000;
    while (!this.stopRequested) {
      if (this.seenReconnects !== this.w.reconnects || this.consumer === null) {
        this.seenReconnects = this.w.reconnects;
        await this.retrying(() => this.openConsumer());
        continue;
      }
      let msgs: JsMsg[] = [];
      let broken = false;
      try {
        const it = await this.consumer.fetch({ max_messages: batchMax, expires: 1000 });
        for await (const m of it) {
          if (m.info.deliverySequence !== this.expectDseq + 1 || (m.redelivered && m.seq > this.lastSeq)) {
            broken = true; // a line was skipped or comes out of order: read again from the last scored one
            break;
          }
          this.expectDseq = m.info.deliverySequence;
          msgs.push(m);
          this.lag = m.info.pending;
        }
      } catch (e) {
        broken = true;
        const msg = (e as Error).message;
        if (msg !== this.lastError) this.w.notice(`partition ${this.partition}: reading failed (${msg}); reading again from stream sequence ${this.lastSeq + 1}`);
        this.lastError = msg;
      }
      if (this.aborted) return;
      if (broken) {
        msgs = [];
        this.consumer = null;
        await sleep(100);
      }
      if (msgs.length > 0) await this.process(msgs);
      if (this.aborted) return;
      if (this.dirty && Date.now() - this.lastCheckpoint >= (this.w.o.checkpointMs ?? 1000)) await this.checkpoint();
    }
    if (!this.aborted && this.dirty) await this.checkpoint();
  }

  /** Retries an operation that fails while the server is away (bounded: 5 minutes). */
  private async retrying<T>(f: () => Promise<T>): Promise<T> {
    const until = Date.now() + 300_000;
    for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
      try {
        return await f();
      } catch (e) {
        if (e instanceof DeepSentryError || Date.now() > until || this.aborted) throw e;
        await sleep(delay);
      }
    }
  }

  /** A new consumer from the line after the last scored one; the partition's other consumers are deleted. */
  private async openConsumer(): Promise<void> {
    const { jsm, topo } = this.w.opened;
    const name = `p${this.partition}-${this.revision}-${Date.now().toString(36)}`;
    await jsm.consumers.add(topo.stream, {
      durable_name: name,
      filter_subject: this.subject,
      ack_policy: AckPolicy.All,
      ack_wait: 60e9,
      max_ack_pending: 100_000,
      inactive_threshold: 3600e9,
      ...(this.lastSeq > 0 ? { deliver_policy: DeliverPolicy.StartSequence, opt_start_seq: this.lastSeq + 1 } : { deliver_policy: DeliverPolicy.All }),
    });
    if (this.aborted) return;
    for await (const ci of jsm.consumers.list(topo.stream)) {
      // (the listing may hold an empty entry for a consumer deleted while it is read)
      if (ci && ci.name !== name && ci.name.startsWith(`p${this.partition}-`)) await jsm.consumers.delete(topo.stream, ci.name).catch(() => undefined);
    }
    this.consumer = await this.w.js.consumers.get(topo.stream, name);
    this.expectDseq = 0;
    this.toAck = null; // acks go to the consumer that delivered the line: the new one starts after lastSeq
  }

  private async process(msgs: JsMsg[]): Promise<void> {
    const lines: RawLine[] = [];
    const sources = new Map<number, string>();
    for (const m of msgs) {
      if (m.seq <= this.lastSeq) continue; // already in the state (a replay): acked with the batch
      const h = m.headers;
      // Headers come from any shipper: a value that is not a number is ignored, never a NaN clock.
      const clock = Number(h?.get(HDR_CLOCK) || NaN);
      const lineNo = Number(h?.get(HDR_LINE) || 0);
      const line: RawLine = { seq: m.seq, lineNo: Number.isFinite(lineNo) ? lineNo : 0, offset: 0, text: m.string() };
      if (Number.isFinite(clock)) line.clock = clock;
      lines.push(line);
      const src = h?.get(HDR_SOURCE);
      if (src) sources.set(m.seq, src);
    }
    if (lines.length > 0) {
      const t0 = performance.now();
      const events = await this.scorer.scoreLines(lines);
      const alerts: Alert[] = [];
      const alertIdx: number[] = [];
      const time = new Date().toISOString();
      const { metrics, activity } = this.w;
      const bucket = activity.bucket(lines.length);
      events.forEach((e, i) => {
        const threshold = this.threshold.observe(e.score);
        const anomaly = e.score > threshold;
        metrics.scores.observe(e.score);
        activity.observe(bucket, e.score, threshold, anomaly);
        if (!anomaly) return;
        const a: Alert = { id: eventId(e), time, source: sources.get(e.seq) ?? this.subject, seq: e.seq, lineNo: e.lineNo, offset: e.offset, session: e.session, score: e.score, threshold, isSessionEnd: e.isSessionEnd, line: '', window: [] };
        if (e.endReason) a.endReason = e.endReason;
        alerts.push(a);
        alertIdx.push(i);
      });
      if (alerts.length > 0) {
        // Windows and expected messages of all the alerted events in one batched prediction (as the monitor does).
        applyContext(alerts, await this.scorer.context(alertIdx));
        await this.retrying(() => Promise.all(alerts.map((a) => this.w.js.publish(this.w.opened.topo.alertSubject, JSON.stringify(a), { msgID: a.id }))));
        for (const s of this.w.o.sinks ?? []) s.write(alerts);
        activity.addAlerts(alerts);
      }
      // Latency here: from the batch's delivery to its alerts being published.
      const seconds = (performance.now() - t0) / 1000;
      metrics.latency.observe(seconds, lines.length);
      metrics.batchLines.observe(lines.length);
      metrics.lines.inc(lines.length);
      metrics.events.inc(events.length);
      metrics.anomalies.inc(alerts.length);
      this.w.nLines += lines.length;
      this.w.nEvents += events.length;
      this.w.nAnomalies += alerts.length;
      this.nAlerts += alerts.length;
      this.nLines += lines.length;
      this.lastSeq = lines[lines.length - 1]!.seq;
    }
    this.toAck = msgs[msgs.length - 1]!;
    this.dirty = true;
  }

  /** Checkpoint, then ack (AckAll: every line up to the last one). */
  private async checkpoint(): Promise<void> {
    const state = { scorer: this.scorer.name, scorerState: await this.scorer.snapshot(), threshold: this.threshold.snapshot() };
    const next = await this.retrying(() => this.w.ckpts.save(this.partition, this.revision, this.claim, this.lastSeq, state));
    if (next === null) {
      this.w.notice(`partition ${this.partition} was claimed by another worker: stopping it`);
      this.abort();
      return;
    }
    this.revision = next;
    this.lastCheckpoint = Date.now();
    this.dirty = false;
    const m = this.toAck;
    this.toAck = null;
    if (m !== null) await this.ack(m);
  }

  /**
   * Acks (AckAll) up to `m`, confirmed by the server, retried a few times across a reconnect. An ack that
   * still fails (the consumer was deleted by a takeover or a reset) is harmless: the lines are in the
   * checkpoint, and a redelivery is skipped by its stream sequence.
   */
  private async ack(m: JsMsg): Promise<void> {
    for (let attempt = 0, delay = 100; attempt < 6 && !this.aborted; attempt++, delay *= 2) {
      try {
        if (await m.ackAck({ timeout: 2000 })) return;
      } catch {
        // not confirmed: try again
      }
      await sleep(delay);
    }
  }
}
