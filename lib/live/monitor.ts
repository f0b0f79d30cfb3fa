/**
 * The live monitor: lines in, judged events and alerts out. It owns everything that does not depend on how a
 * line is scored (that is the LineScorer's job, see types.ts):
 *
 * - **batching**: a line arriving at an idle monitor waits `batchDelayMs` (default 2 ms) for company, then the
 *   whole queue (up to `maxBatchLines`) goes to the scorer in one call; lines arriving while a call is running
 *   form the next batch, which starts as soon as the call returns. One call at a time, in input order.
 * - **backpressure and drops**: `push` waits while a few batches are queued (file and stdin sources slow down);
 *   `offer` refuses a whole request when it would not fit (HTTP answers 503) and counts its lines as dropped.
 * - **thresholds**: every event is judged against a LiveThreshold (fixed / rolling / EWMA) in order.
 * - **alerts** to sinks, **metrics**, a short in-memory history for the dashboard.
 * - **checkpoints** (with a StateStore): after a batch, at most every `checkpointMs`; see state.ts.
 * - **idle sessions**: every `tickMs` without a batch running, the scorer is told the wall-clock time so it can
 *   end idle sessions.
 * - **feedback** (`feedback`): the scorer learns sessions as normal on a copy of its model while it keeps
 *   scoring, and the copy is swapped in between two batches, so no line is scored twice or skipped.
 *
 * Scoring runs wherever the scorer runs it (the native addon's async path, or a worker thread with
 * WorkerScorer); the monitor itself does O(lines) bookkeeping per batch on the event loop.
 */
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { DeepSentryError, invalidParameterError } from '../errors';
import { MonitorMetrics } from './metrics';
import { RecentActivity, type SecondBucket } from './activity';

export type { SecondBucket };
import { NdjsonFileSink, WebhookSink, type AlertSink } from './sinks';
import type { FeedbackSummary } from '../pipeline/feedback';
import type { StateStore, Checkpoint } from './state';
import type { FileCursor } from './tail';
import { LiveThreshold, type ThresholdOptions } from './thresholds';
import { applyContext, eventId, type Alert, type JudgedEvent, type LineScorer, type RawLine, type ScoredEvent, type ScorerStats } from './types';

/** A line offered to the monitor by a source. */
export interface InputLine {
  text: string;
  /** Line number in the source (default: the monitor counts). */
  lineNo?: number;
  /** Byte offset in the source (default: the monitor counts bytes). */
  offset?: number;
  /** Where to resume after this line (file sources): stored in checkpoints. */
  cursor?: FileCursor;
}

/** Options of a LiveMonitor. Every field has a default except the threshold mode. */
export interface MonitorOptions {
  /** Threshold mode and parameters. `floor` defaults to the scorer's saved threshold. */
  threshold: ThresholdOptions;
  /** Name of the input in alerts: a file path, `stdin`, `http` (default `push`). */
  source?: string;
  /** How long a line arriving at an idle monitor waits for others to share its scorer call (default 2 ms). */
  batchDelayMs?: number;
  /** Most lines per scorer call (default: the scorer's `batchLines`, else 4096). */
  maxBatchLines?: number;
  /** Most lines waiting for the scorer (default 100 000): offer() refuses beyond it, push() waits (see readAheadLines). */
  maxQueuedLines?: number;
  /**
   * Most lines push() lets wait for the scorer before it waits itself (default 4 × maxBatchLines, at most
   * maxQueuedLines): a source that can wait (a file, stdin) reads only a few batches ahead, so its lines are
   * scored soon after they are read — far ahead, every line outlived the young generation of the garbage
   * collector and had to be collected from the old one.
   */
  readAheadLines?: number;
  /** Wall-clock idle check interval for sessions (default 1000 ms; 0 = never, sessions then end only by the scorer's own clock or at flush). */
  tickMs?: number;
  /** Alert destinations (stdout, NDJSON file, webhook). */
  sinks?: AlertSink[];
  /** Checkpoint store; with it the monitor resumes where it stopped. */
  state?: StateStore;
  /** Least time between checkpoints (default 1000 ms). */
  checkpointMs?: number;
  /** Events and alerts kept for the dashboard (default 50 alerts, 300 one-second buckets). */
  recentAlerts?: number;
  /** Also export prom-client's default process metrics (default false). */
  defaultMetrics?: boolean;
}

/** What GET /api/stats returns and the dashboard draws. */
export interface MonitorSnapshot {
  /** Unix time (s) of the snapshot: the dashboard's "now" (the history may have gaps when nothing came in). */
  now: number;
  scorer: string;
  source: string;
  startedAt: string;
  ready: boolean;
  lines: number;
  events: number;
  anomalies: number;
  droppedLines: number;
  queuedLines: number;
  threshold: number | null;
  thresholdMode: string;
  warmingUp: boolean;
  sessions: ScorerStats;
  /** The scorer's model version (1 as trained, +1 per feedback), when it has one. */
  modelVersion?: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
  history: SecondBucket[];
  alerts: Alert[];
}

/** A batch handed to the scorer, its answer not yet handled. */
interface Inflight {
  batch: Queued[];
  scored: Promise<ScoredEvent[]>;
  t0: number; // performance.now() when it was handed over
}

/** A line waiting for the scorer: the line the scorer gets (one object per line, none made per batch), and more. */
interface Queued extends RawLine {
  t: number; // performance.now() at acceptance
  src: InputLine; // its cursor (possibly a getter, see TailLine) is read only for a batch's last line
}

export interface LiveMonitor {
  on(event: 'event', fn: (e: JudgedEvent) => void): this;
  on(event: 'anomaly', fn: (a: Alert) => void): this;
  on(event: 'batch', fn: (info: { lines: number; events: number; ms: number }) => void): this;
  on(event: 'notice', fn: (message: string) => void): this;
  on(event: 'error', fn: (err: Error) => void): this;
}

export class LiveMonitor extends EventEmitter {
  readonly scorer: LineScorer;
  readonly threshold: LiveThreshold;
  readonly metrics: MonitorMetrics;
  readonly source: string;
  private readonly batchDelayMs: number;
  private readonly maxBatchLines: number;
  private readonly maxQueuedLines: number;
  private readonly readAheadLines: number;
  private readonly tickMs: number;
  private readonly checkpointMs: number;
  private readonly sinks: AlertSink[];
  private readonly webhook: WebhookSink | null;
  private readonly alertFile: NdjsonFileSink | null;
  private readonly state: StateStore | null;
  private readonly activity: RecentActivity;

  private queue: Queued[] = [];
  private qHead = 0;
  private seq = 0;
  private autoLineNo = 0;
  private autoOffset = 0;
  private lastCursor: FileCursor | null = null;
  private running = false; // the batch loop is active
  /** the next batch, handed to the scorer while the last one's alerts were raised (see startNextEarly) */
  private inflight: Inflight | null = null;
  private batchTimer: NodeJS.Timeout | null = null;
  private tickTimer: NodeJS.Timeout | null = null;
  private tickDue = false;
  private lastCheckpoint = 0;
  private dirtySinceCheckpoint = false;
  private suppressed = new Set<string>();
  private spaceWaiters: (() => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private started = false;
  private stopping = false;
  private stopped = false;
  private failure: Error | null = null;
  /** work the batch loop runs before its next batch, holding it (see betweenBatches) */
  private between: (() => Promise<void>)[] = [];
  /** the feedback running, if any (calls are serialised) */
  private feedbackChain: Promise<unknown> = Promise.resolve();
  private readonly startedAt = new Date();
  // counters for the snapshot (prom-client counters are for scraping)
  private nLines = 0;
  private nEvents = 0;
  private nAnomalies = 0;
  private nDropped = 0;

  constructor(scorer: LineScorer, opts: MonitorOptions) {
    super();
    this.scorer = scorer;
    const floor = opts.threshold.floor ?? scorer.savedThreshold;
    this.threshold = new LiveThreshold({ ...opts.threshold, ...(floor === undefined ? {} : { floor }) });
    this.source = opts.source ?? 'push';
    this.batchDelayMs = nonNegInt('batchDelayMs', opts.batchDelayMs ?? 2);
    this.maxBatchLines = posInt('maxBatchLines', opts.maxBatchLines ?? scorer.batchLines ?? 4096);
    this.maxQueuedLines = posInt('maxQueuedLines', opts.maxQueuedLines ?? 100_000);
    this.readAheadLines = Math.min(this.maxQueuedLines, posInt('readAheadLines', opts.readAheadLines ?? 4 * this.maxBatchLines));
    this.tickMs = nonNegInt('tickMs', opts.tickMs ?? 1000);
    this.checkpointMs = nonNegInt('checkpointMs', opts.checkpointMs ?? 1000);
    this.sinks = opts.sinks ?? [];
    this.webhook = (this.sinks.find((s) => s instanceof WebhookSink) as WebhookSink | undefined) ?? null;
    this.webhook?.deliveredListeners.push((a) => this.state?.journal([{ d: a.id }]));
    this.alertFile = (this.sinks.find((s) => s instanceof NdjsonFileSink) as NdjsonFileSink | undefined) ?? null;
    this.state = opts.state ?? null;
    this.activity = new RecentActivity(posInt('recentAlerts', opts.recentAlerts ?? 50));
    this.metrics = new MonitorMetrics(
      {
        scorerStats: () => this.scorer.stats(),
        queuedLines: () => this.queuedLines,
        threshold: () => this.threshold.current(),
        webhook: () => (this.webhook ? { sent: this.webhook.sent, failed: this.webhook.failed, dropped: this.webhook.dropped, overflowed: this.webhook.overflowed, queued: this.webhook.queued } : null),
        ready: () => this.ready,
      },
      { defaultMetrics: opts.defaultMetrics ?? false },
    );
  }

  /** Lines accepted and not yet scored. */
  get queuedLines(): number {
    return this.queue.length - this.qHead;
  }

  /** True between start() and stop(), while the monitor takes lines. */
  get ready(): boolean {
    return this.started && !this.stopping && this.failure === null;
  }

  /**
   * Restores the checkpoint (when there is a state store and a state file) and starts the idle ticks.
   * Returns the cursor a file source should resume from (null: start fresh).
   */
  async start(): Promise<FileCursor | null> {
    if (this.started) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'LiveMonitor.start() was called twice');
    let cursor: FileCursor | null = null;
    if (this.state) {
      this.state.lock();
      try {
        const c = this.state.load();
        if (c) {
          await this.restore(c);
          cursor = c.cursor;
        }
      } catch (err) {
        this.state.close(); // releases the lock: the caller may fix the cause and start again
        throw err;
      }
    }
    this.started = true;
    this.lastCheckpoint = performance.now();
    if (this.tickMs > 0) {
      this.tickTimer = setInterval(() => {
        this.tickDue = true;
        this.kick();
      }, this.tickMs);
      this.tickTimer.unref();
    }
    return cursor;
  }

  private async restore(c: Checkpoint): Promise<void> {
    if (c.scorer !== this.scorer.name) {
      throw new DeepSentryError('DS_CONFIG', `the state file ${this.state!.path} was written with scorer '${c.scorer}', not '${this.scorer.name}': delete it or use the same model`);
    }
    await this.scorer.restore(c.scorerState);
    this.threshold.restore(c.threshold);
    this.seq = c.seq;
    this.lastCursor = c.cursor;
    const j = this.state!.replayJournal(c);
    this.suppressed = j.raised;
    if (this.webhook) {
      const pending = c.webhookPending.filter((a) => !j.delivered.has(a.id));
      const pendingIds = new Set(pending.map((a) => a.id));
      for (const a of j.alerts) if (!j.delivered.has(a.id) && !pendingIds.has(a.id)) pending.push(a);
      this.webhook.write(pending);
    }
    this.notice(`resumed from ${this.state!.path}: line seq ${c.seq}, ${j.raised.size} alert(s) raised after that checkpoint will not be repeated`);
  }

  /**
   * Adds lines, waiting while readAheadLines are queued (backpressure). Resolves once they are queued, not scored.
   * Rejects if the monitor has failed or is stopping.
   */
  async push(lines: InputLine[] | string[] | string): Promise<void> {
    const arr = normalise(lines);
    let i = 0;
    while (i < arr.length) {
      this.checkOpen();
      const room = this.readAheadLines - this.queuedLines;
      if (room <= 0) {
        await new Promise<void>((resolve) => this.spaceWaiters.push(resolve));
        continue;
      }
      const n = Math.min(room, arr.length - i);
      this.enqueue(arr, i, i + n);
      i += n;
    }
  }

  /** Adds all lines if they fit, else none: those are counted as dropped and false is returned (HTTP: 503). */
  offer(lines: InputLine[] | string[] | string): boolean {
    const arr = normalise(lines);
    this.checkOpen();
    if (this.queuedLines + arr.length > this.maxQueuedLines) {
      this.nDropped += arr.length;
      this.metrics.dropped.inc(arr.length);
      return false;
    }
    this.enqueue(arr, 0, arr.length);
    return true;
  }

  private checkOpen(): void {
    if (this.failure) throw this.failure;
    if (!this.started) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'LiveMonitor: call start() before adding lines');
    if (this.stopping) throw new DeepSentryError('DS_CANCELLED', 'LiveMonitor is stopping: no more lines are accepted');
  }

  private enqueue(arr: InputLine[], from: number, to: number): void {
    // All or nothing: a bad element leaves the queue (and the line numbering) untouched.
    for (let k = from; k < to; k++) {
      const l = arr[k];
      if (typeof l?.text !== 'string') throw invalidParameterError(`lines[${k}]`, 'a string or {text: string}', l?.text ?? l);
    }
    const t = performance.now();
    for (let k = from; k < to; k++) {
      const l = arr[k]!;
      const lineNo = l.lineNo ?? ++this.autoLineNo;
      const offset = l.offset ?? this.autoOffset;
      if (l.offset === undefined) this.autoOffset += Buffer.byteLength(l.text) + 1;
      this.queue.push({ seq: ++this.seq, lineNo, offset, text: l.text, t, src: l });
    }
    this.nLines += to - from;
    this.metrics.lines.inc(to - from);
    this.kick();
  }

  /** Starts the batch loop if it is not running: at once when a batch is full, else after batchDelayMs. */
  private kick(): void {
    if (this.running || this.failure) return;
    if (this.queuedLines >= this.maxBatchLines || this.batchDelayMs === 0 || (this.tickDue && this.queuedLines === 0) || this.between.length > 0) {
      if (this.batchTimer) clearTimeout(this.batchTimer);
      this.batchTimer = null;
      void this.loop();
    } else if (this.queuedLines > 0 && !this.batchTimer) {
      this.batchTimer = setTimeout(() => {
        this.batchTimer = null;
        void this.loop();
      }, this.batchDelayMs);
    }
  }

  private async loop(): Promise<void> {
    if (this.running || this.failure) return;
    this.running = true;
    try {
      for (;;) {
        if (this.inflight) {
          await this.runBatch(); // started early (startNextEarly): nothing runs between it and the batch before
        } else if (this.between.length > 0) {
          await this.between.shift()!();
        } else if (this.queuedLines > 0) {
          await this.runBatch();
        } else if (this.tickDue) {
          this.tickDue = false;
          const events = await this.scorer.tick(Date.now());
          if (events.length > 0) {
            await this.handleEvents(events, 0);
            this.dirtySinceCheckpoint = true;
          }
        } else break;
        await this.maybeCheckpoint(false);
        // An in-thread scorer resolves without a macrotask: yield so HTTP, timers and file reads get their turn.
        await new Promise((r) => setImmediate(r));
      }
    } catch (err) {
      this.fail(err as Error);
    } finally {
      this.running = false;
      const w = this.idleWaiters;
      this.idleWaiters = [];
      for (const f of w) f();
    }
  }

  /** Takes the next batch off the queue and hands it to the scorer (see runBatch). */
  private startBatch(): Inflight {
    const n = Math.min(this.queuedLines, this.maxBatchLines);
    const batch = this.queue.slice(this.qHead, this.qHead + n);
    this.qHead += n;
    if (this.qHead > 65536 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead);
      this.qHead = 0;
    }
    this.wakeSpaceWaiters();
    const t0 = performance.now();
    let scored: Promise<ScoredEvent[]>;
    try {
      scored = this.scorer.scoreLines(batch);
    } catch (err) {
      scored = Promise.reject(err as Error);
    }
    // A full next batch is already queued: the next call takes exactly these lines (only startBatch moves
    // qHead), so a scorer in a worker gets them ready (packed, handed over, decoded) while this call runs
    // instead of between the two calls.
    if (this.scorer.prepare && this.queuedLines >= this.maxBatchLines) {
      this.scorer.prepare(this.queue.slice(this.qHead, this.qHead + this.maxBatchLines));
    }
    return { batch, scored, t0 };
  }

  /**
   * Called by handleEvents once it has asked the scorer all it needs about a batch's events: with a scorer
   * that answers calls in order (one with `prepare`, see types.ts), the next full batch goes to it now, so it
   * scores while this thread raises the alerts — unless something must happen between the two batches (a
   * checkpoint that is due, work waiting in `between`): that waits for the batch after.
   */
  private startNextEarly(): void {
    if (!this.scorer.prepare || this.inflight || this.failure || this.between.length > 0 || this.queuedLines < this.maxBatchLines) return;
    if (this.state && performance.now() - this.lastCheckpoint >= this.checkpointMs) return;
    const b = this.startBatch();
    b.scored.catch(() => undefined); // awaited (and its failure reported) by the next runBatch
    this.inflight = b;
  }

  private async runBatch(): Promise<void> {
    const b = this.inflight ?? this.startBatch();
    this.inflight = null;
    const batch = b.batch;
    let events: ScoredEvent[];
    try {
      events = await b.scored;
    } catch (err) {
      const first = batch[0]!;
      const last = batch[batch.length - 1]!;
      const code = err instanceof DeepSentryError ? err.code : 'DS_MODEL';
      throw new DeepSentryError(code, `scorer '${this.scorer.name}' failed on lines ${first.lineNo}..${last.lineNo} of ${this.source}: ${(err as Error).message}`, { cause: err });
    }
    const now = performance.now();
    await this.handleEvents(events, batch.length, () => this.startNextEarly());
    // lines accepted together (one push or offer) share their latency: one observation for each run of them
    for (let i = 0; i < batch.length; ) {
      const t = batch[i]!.t;
      let j = i + 1;
      while (j < batch.length && batch[j]!.t === t) j++;
      this.metrics.latency.observe((now - t) / 1000, j - i);
      i = j;
    }
    this.metrics.batchLines.observe(batch.length);
    const lastQ = batch[batch.length - 1]!;
    const cursor = lastQ.src.cursor;
    if (cursor) this.lastCursor = cursor;
    this.dirtySinceCheckpoint = true;
    this.emit('batch', { lines: batch.length, events: events.length, ms: now - b.t0 });
  }

  /**
   * Judges events in order, raises alerts, feeds metrics and history. `asked` runs once the scorer has been
   * asked everything about these events (their alerts' context), before the answer is awaited.
   */
  private async handleEvents(events: ScoredEvent[], lines: number, asked?: () => void): Promise<void> {
    const alerts: Alert[] = [];
    const alertIdx: number[] = [];
    const time = new Date().toISOString();
    const bucket = this.activity.bucket(lines);
    const emitEvents = this.listenerCount('event') > 0;
    for (let i = 0; i < events.length; i++) {
      const e = events[i]!;
      const threshold = this.threshold.observe(e.score);
      const anomaly = e.score > threshold;
      this.metrics.scores.observe(e.score);
      this.activity.observe(bucket, e.score, threshold, anomaly);
      if (emitEvents) this.emit('event', judgedEvent(e, threshold, anomaly));
      if (!anomaly) continue;
      this.nAnomalies++;
      this.metrics.anomalies.inc();
      const id = eventId(e);
      if (this.suppressed.size > 0 && this.suppressed.delete(id)) continue; // raised before a restart
      const a: Alert = {
        id,
        time,
        source: this.source,
        seq: e.seq,
        lineNo: e.lineNo,
        offset: e.offset,
        session: e.session,
        score: e.score,
        threshold,
        isSessionEnd: e.isSessionEnd,
        line: '',
        window: [],
      };
      if (!this.scorer.context) {
        a.window = e.window; // may be computed on read (a view of the session's lines): read once
        a.line = a.window[a.window.length - 1] ?? '';
      }
      if (e.endReason) a.endReason = e.endReason;
      if (!this.scorer.context && e.expected !== undefined) a.expected = e.expected; // with context() it comes batched below
      alerts.push(a);
      alertIdx.push(i);
    }
    this.nEvents += events.length;
    this.metrics.events.inc(events.length);
    if (alerts.length === 0) {
      asked?.();
      return;
    }
    if (this.scorer.context) {
      const context = this.scorer.context(alertIdx);
      asked?.();
      applyContext(alerts, await context);
    } else asked?.();
    // Durable first: the alert file, then the journal; then the rest (see state.ts for why this order).
    this.alertFile?.write(alerts);
    this.state?.journal(alerts.map((a) => ({ a })));
    for (const s of this.sinks) if (s !== this.alertFile) s.write(alerts);
    this.activity.addAlerts(alerts);
    for (const a of alerts) this.emit('anomaly', a);
  }

  /**
   * Runs `fn` between two batches, holding the batch loop (and ticks) until it is done: nothing else calls
   * the scorer meanwhile. Resolves with the seq of the last line handed to the scorer before it.
   */
  private betweenBatches<T>(fn: () => Promise<T>): Promise<{ value: T; seq: number }> {
    return new Promise((resolve, reject) => {
      if (this.failure || this.stopped) {
        reject(this.failure ?? new DeepSentryError('DS_CANCELLED', 'LiveMonitor is stopped'));
        return;
      }
      this.between.push(async () => {
        try {
          const seq = this.seq - this.queuedLines;
          resolve({ value: await fn(), seq });
        } catch (err) {
          reject(err as Error);
        }
      });
      if (!this.running) this.kickNow();
    });
  }

  /**
   * Learns sessions the scorer saw recently as normal (LineScorer.feedback: on a copy of its model, saved as
   * a new version when it came from a directory) and swaps the new model in between two batches: lines up to
   * `lastSeqOldModel` were scored by the old model, every later one by the new. Open sessions, the threshold,
   * counters and checkpoints carry on. Calls are serialised; on any failure the old model keeps scoring.
   */
  async feedback(sessions: string[], source = 'feedback'): Promise<FeedbackSummary & { version: number; lastSeqOldModel: number; liveThreshold: number | null }> {
    const s = this.scorer;
    if (!s.feedback || !s.swapModel) throw new DeepSentryError('DS_UNSUPPORTED', `the '${s.name}' scorer does not learn from feedback (the trained model's scorer does)`);
    const run = async () => {
      this.checkOpen();
      const t0 = performance.now();
      try {
        const summary = await s.feedback!({ sessions, source, from: `live ${this.source}` });
        const { value: version, seq } = await this.betweenBatches(() => s.swapModel!());
        this.metrics.feedback.inc({ result: 'ok' });
        const thr = this.threshold.current();
        const sec = ((performance.now() - t0) / 1000).toFixed(1);
        this.notice(`feedback: ${summary.sessions.length} session(s) learnt as normal (${summary.sessions.map((x) => `${x.session} ${x.before.toPrecision(4)} → ${x.after.toPrecision(4)}`).join(', ')}), model version ${version}${summary.model ? ` written to ${summary.model}` : ''}, scoring from line seq ${seq + 1} (${sec} s)`);
        return { ...summary, version, lastSeqOldModel: seq, liveThreshold: Number.isFinite(thr) ? thr : null };
      } catch (err) {
        this.metrics.feedback.inc({ result: 'failed' });
        throw err;
      }
    };
    const p = this.feedbackChain.then(run, run);
    this.feedbackChain = p.catch(() => undefined);
    return p;
  }

  /** Called by the loop between batches (so the scorer's state matches the cursor), and by stop(). */
  private async maybeCheckpoint(force: boolean): Promise<void> {
    if (!this.state || this.failure || this.inflight) return; // the scorer's state must match the cursor
    if (!force && (!this.dirtySinceCheckpoint || performance.now() - this.lastCheckpoint < this.checkpointMs)) return;
    this.lastCheckpoint = performance.now();
    this.dirtySinceCheckpoint = false;
    const seq = this.seq - this.queuedLines; // the last line handed to the scorer
    const cursor = this.lastCursor;
    const scorerState = await this.scorer.snapshot();
    this.state.save({
      scorer: this.scorer.name,
      cursor,
      seq,
      scorerState,
      threshold: this.threshold.snapshot(),
      webhookPending: this.webhook ? this.webhook.pending() : [],
      ...(this.alertFile ? { alertFile: { path: this.alertFile.path, size: this.alertFile.size() } } : {}),
    });
  }

  /** Resolves when every queued line has been scored and judged. */
  async idle(): Promise<void> {
    for (;;) {
      if (this.failure) throw this.failure;
      if (!this.running && this.queuedLines === 0 && !this.batchTimer) return;
      if (!this.running) this.kickNow();
      await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
    }
  }

  private kickNow(): void {
    if (this.batchTimer) clearTimeout(this.batchTimer);
    this.batchTimer = null;
    void this.loop();
  }

  /** Ends every open session now and judges the end events (finite input is over). */
  async flushSessions(): Promise<void> {
    await this.idle();
    this.running = true;
    try {
      const events = await this.scorer.flush();
      await this.handleEvents(events, 0);
      this.dirtySinceCheckpoint = true;
    } finally {
      this.running = false;
      if (!this.stopping) this.kick();
    }
  }

  /**
   * Stops: refuses new lines, scores the queued ones, optionally ends open sessions (`flushSessions`, for
   * finite input; with a state file they are better kept for the restart), waits up to `drainTimeoutMs`
   * (default 10 s) for the webhook to deliver, then aborts its requests in flight (what is undelivered stays in
   * the checkpoint's webhookPending), writes a last checkpoint and closes sinks and scorer.
   */
  async stop(opts: { flushSessions?: boolean; drainTimeoutMs?: number; closeScorer?: boolean } = {}): Promise<void> {
    if (this.stopped) return;
    this.stopping = true;
    if (this.tickTimer) clearInterval(this.tickTimer);
    this.tickTimer = null;
    this.tickDue = false;
    for (const w of this.spaceWaiters.splice(0)) w();
    let err: Error | null = null;
    try {
      if (!this.failure) {
        await this.idle();
        if (opts.flushSessions) await this.flushSessions();
      }
    } catch (e) {
      err = e as Error;
    }
    // One deadline for all sinks: the drain timeout bounds the whole shutdown's wait for deliveries.
    await Promise.all(this.sinks.map((s) => s.drain?.(opts.drainTimeoutMs ?? 10_000)));
    if (this.webhook) await this.webhook.close();
    if (!this.failure) await this.maybeCheckpoint(true);
    for (const s of this.sinks) if (s !== this.webhook && s.close) await s.close();
    this.state?.close();
    this.metrics.close();
    if (opts.closeScorer !== false) await this.scorer.close();
    this.stopped = true;
    if (err) throw err;
    if (this.failure) throw this.failure;
  }

  private wakeSpaceWaiters(): void {
    if (this.spaceWaiters.length === 0) return;
    const w = this.spaceWaiters;
    this.spaceWaiters = [];
    for (const f of w) f();
  }

  private fail(err: Error): void {
    if (this.failure) return;
    this.failure = err;
    this.wakeSpaceWaiters();
    if (this.listenerCount('error') > 0) this.emit('error', err);
  }

  private notice(msg: string): void {
    this.emit('notice', msg);
  }

  /** Everything the dashboard shows. */
  snapshot(): MonitorSnapshot {
    const thr = this.threshold.current();
    return {
      now: Math.floor(Date.now() / 1000),
      scorer: this.scorer.name,
      source: this.source,
      startedAt: this.startedAt.toISOString(),
      ready: this.ready,
      lines: this.nLines,
      events: this.nEvents,
      anomalies: this.nAnomalies,
      droppedLines: this.nDropped,
      queuedLines: this.queuedLines,
      threshold: Number.isFinite(thr) ? thr : null,
      thresholdMode: this.threshold.mode,
      warmingUp: this.threshold.warmingUp,
      sessions: this.scorer.stats(),
      ...(this.scorer.modelVersion !== undefined ? { modelVersion: this.scorer.modelVersion } : {}),
      eventLoopDelayMs: this.metrics.loopDelayMs(),
      history: this.activity.history(),
      alerts: this.activity.alerts(),
    };
  }
}

/** A plain JudgedEvent from a scorer's event (which may compute `window` on read). */
function judgedEvent(e: ScoredEvent, threshold: number, anomaly: boolean): JudgedEvent {
  const j: JudgedEvent = { seq: e.seq, lineNo: e.lineNo, offset: e.offset, session: e.session, score: e.score, isSessionEnd: e.isSessionEnd, window: e.window, threshold, anomaly };
  if (e.endReason !== undefined) j.endReason = e.endReason;
  if (e.expected !== undefined) j.expected = e.expected;
  return j;
}

function normalise(lines: InputLine[] | string[] | string): InputLine[] {
  if (typeof lines === 'string') return [{ text: lines }];
  if (!Array.isArray(lines)) throw invalidParameterError('lines', 'a string or an array of strings / {text}', lines);
  return (lines as (InputLine | string)[]).map((l) => (typeof l === 'string' ? { text: l } : l));
}

function posInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 1) throw invalidParameterError(name, 'a positive integer', v);
  return v;
}
function nonNegInt(name: string, v: number): number {
  if (!Number.isInteger(v) || v < 0) throw invalidParameterError(name, 'a non-negative integer', v);
  return v;
}
