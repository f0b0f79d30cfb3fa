/**
 * The trained model behind the live monitor's `LineScorer` seam (lib/live/types.ts). It parses with the
 * model's own log configuration, keeps the open sessions in a Sessionizer (idle timeout, bound on open
 * sessions), and scores each line as it arrives by the window of the session's last W−1 messages and the line's
 * own message — all the windows of one `scoreLines` call in one batched detector call. A session's end (idle
 * timeout, eviction, end of input, time window) is scored as the end event after its last messages.
 *
 * Its sessions, their clock (event time; wall time once the stream is quiet) and their half of the snapshot are
 * SessionScorer's (lib/live/session_scorer.ts), shared with NoveltyScorer so that both end sessions and
 * restart alike. Events compute their window and `expected` (the known message nearest the detector's prediction: one more
 * prediction) only when read, which the monitor does only for the events it alerts on.
 */
import { DeepSentryError } from '../errors';
import type { LogConfig } from '../logs/config';
import { configuredFormat, type LogFormat } from '../logs/formats';
import { sessionEnded, SessionKeyer, type ClosedSession } from '../logs/sessions';
import { SessionScorer, type OpenSession, type SessionsSnapshot } from '../live/session_scorer';
import type { EndReason, EventContext, FeedbackRequest, LineScorer, RawLine, ScoredEvent, ScorerOptions } from '../live/types';
import { END_MESSAGE, PAD_MESSAGE } from '../models/detector';
import { learnRecent, lineageOf, RECENT_DEFAULTS, RecentSessions, type FeedbackSummary } from './feedback';
import { DeepSentry, pickLoadOptions, type LoadOptions } from './model';

/** Options of the model scorer. */
export interface ModelScorerOptions extends ScorerOptions, LoadOptions {
  /**
   * Score only the sessions whose key passes (in-process only: a function does not cross to a worker
   * thread). A partitioned worker (lib/scale) scores the keys of its partition: a line naming sessions of
   * several partitions reaches each of them, and each scores its own.
   */
  ownsKey?: (key: string) => boolean;
  /**
   * Score session ends as batch scoring does (`deepsentry score`, lib/logs' sessionEnded): no end event for an
   * evicted session, nor, at the end of input (`flush`), for one that has timestamps when sessions have an idle
   * timeout (censored: the input stopped before the timeout said it was over). Such a session still closes
   * with an end event, of score -Infinity (no score: it never exceeds a threshold nor raises a max), so the
   * caller knows it closed. Default false: the live monitor scores every end. The in-process API
   * (lib/pipeline/session.ts) sets it.
   */
  censorEnds?: boolean;
  /**
   * Keep the sessions scored recently (every open one and this many ended ones, lib/pipeline/feedback.ts
   * RecentSessions) so that `feedback` can learn some of them as normal. Default 0: none kept, no feedback.
   */
  feedbackSessions?: number;
}

/** This module's path: a worker thread builds the model scorer from it (`createModelScorer`, see lib/live/worker.ts). */
export const MODEL_SCORER_MODULE = __filename;

/**
 * The session keyer of the live scorer for a model's log configuration: sessions by key (`auto` is `key`),
 * field or time. Count windows have no key to follow a session by, so they are refused. The publisher of a
 * partitioned stream (lib/scale/publisher.ts) keys lines with it too, so a session's lines meet in one partition.
 */
export function liveSessionKeyer(c: LogConfig): SessionKeyer {
  const mode = c.session.mode === 'auto' ? 'key' : c.session.mode;
  if (mode === 'count') {
    throw new DeepSentryError('DS_UNSUPPORTED', `the model's sessions are count windows; the live scorer needs sessions by key, field or time (set logs.session.mode when training)`);
  }
  return new SessionKeyer(mode, c.session);
}

interface OpenState extends OpenSession {
  /** masked messages of the session's last W−1 lines (texts, not ids: ids of new messages depend on arrival order) */
  history: string[];
  /** lines per masked message, for the count relations judged at the session's end (model.countModel) */
  counts?: Record<string, number>;
}

/** The JSON state of a ModelScorer (see snapshot). */
interface ModelScorerSnapshot extends SessionsSnapshot<OpenState> {
  kind: 'model';
  modelHash: string;
}

/**
 * An event whose context is computed only when read: `window` copies the session's last lines, `expected`
 * runs a detector prediction (ModelScorer.context does it for all the alerted events of a call at once). The
 * monitor (and the worker thread's side of WorkerScorer) read them only for the events they alert on.
 */
class ModelEvent implements ScoredEvent {
  score = 0;
  /** added to the window's score: an end event's weighted count surprise (the window cache holds scores without it) */
  extra = 0;
  readonly endReason?: EndReason;
  /** the window's ids joined with commas (set by ModelScorer.finish; the key of its caches) */
  key = '';
  /** the expected message once predicted (null: none) */
  predicted: string | null | undefined = undefined;
  /** an end that is not scored (ModelScorerOptions.censorEnds): score stays -Infinity */
  unscored = false;
  constructor(
    readonly seq: number,
    readonly lineNo: number,
    readonly offset: number,
    readonly session: string,
    readonly isSessionEnd: boolean,
    endReason: EndReason | undefined,
    /** the event's window is lines[end − span, end) (the array is only appended to after this) */
    private readonly lines: string[],
    private readonly end: number,
    private readonly span: number,
    /** the W ids the detector scored */
    readonly ids: Int32Array,
    private readonly owner: ModelScorer,
  ) {
    if (endReason !== undefined) this.endReason = endReason;
  }
  get window(): string[] {
    return this.lines.slice(Math.max(0, this.end - this.span), this.end);
  }
  get expected(): string | undefined {
    if (this.predicted === undefined) this.owner.predictExpected([this]);
    return this.predicted ?? undefined;
  }
}

/** At most this many window scores are remembered (about 100 bytes each); the cache starts over when full. */
const SCORE_CACHE_MAX = 100_000;

export class ModelScorer extends SessionScorer<OpenState> implements LineScorer {
  /** The name of every ModelScorer (its checkpoints carry it). */
  static readonly NAME = 'bilstm';
  readonly name = ModelScorer.NAME;
  readonly savedThreshold: number;
  private readonly format: LogFormat;
  private readonly keyer: SessionKeyer;
  private readonly W: number;
  /** weight of the count relations' surprise on end events (0: the model has none, or scoring.counts is 0) */
  private countWeight: number;
  /** the sessions scored recently, for feedback (null: not kept) */
  private readonly recent: RecentSessions | null;
  /** a model that learnt feedback, waiting for swapModel */
  private pending: DeepSentry | null = null;
  /** events of the current call, in order */
  private out: ModelEvent[] = [];
  /** scores of windows already scored, by their ids joined with commas (see finish) */
  private readonly scoreCache = new Map<string, number>();
  /** expected messages of windows already predicted, by the same key (null: none) */
  private readonly expectedCache = new Map<string, string | null>();
  /** events of the last call (what `context` indices refer to) */
  private last: ModelEvent[] = [];

  private readonly ownsKey: ((key: string) => boolean) | undefined;
  /** see ModelScorerOptions.censorEnds */
  private readonly censorEnds: boolean;

  constructor(
    /** the model scoring now (swapModel replaces it) */
    public model: DeepSentry,
    opts: Omit<ModelScorerOptions, keyof LoadOptions> = {},
  ) {
    const c = model.logConfig;
    const format = configuredFormat(c);
    const keyer = liveSessionKeyer(c);
    const W = model.detector.config.window;
    const idle = opts.idleTimeoutMs === undefined ? (c.session.idleTimeoutMs ?? 30_000) : opts.idleTimeoutMs;
    super(opts.windowLines ?? W, idle, opts.maxOpenSessions ?? c.session.maxOpen);
    this.savedThreshold = model.threshold;
    this.format = format;
    this.keyer = keyer;
    this.W = W;
    this.ownsKey = opts.ownsKey;
    this.censorEnds = opts.censorEnds === true;
    this.countWeight = model.countModel ? model.config.scoring.counts : 0;
    const keep = opts.feedbackSessions ?? 0;
    this.recent = keep > 0 ? new RecentSessions({ ...RECENT_DEFAULTS, sessions: keep }) : null;
  }

  /** The W ids of a window: the history (padded at the start) and the target id. */
  private window(history: string[], target: number): Int32Array {
    const w = new Int32Array(this.W).fill(PAD_MESSAGE);
    const n = Math.min(history.length, this.W - 1);
    const o = history.length - n;
    for (let i = 0; i < n; i++) w[this.W - 1 - n + i] = this.model.messageId(history[o + i]);
    w[this.W - 1] = target;
    return w;
  }

  async scoreLines(lines: RawLine[]): Promise<ScoredEvent[]> {
    this.addLines(lines);
    return this.finish();
  }

  protected scoreLine(l: RawLine): void {
    const p = this.parseLine(this.format, l);
    if (p === null) return;
    const ts = p.timestamp;
    const masked = this.model.masker.mask(p.message).masked;
    const id = this.model.messageId(masked);
    const keys = this.keyer.keys(p.message, p.fields, p.sessionKey, ts);
    for (const key of keys) {
      if (this.ownsKey !== undefined && !this.ownsKey(key)) continue;
      this.recent?.add(key, masked);
      const s = this.session(key, () => ({ history: [], lines: [], seq: 0, lineNo: 0, offset: 0, clock: null }));
      const window = this.window(s.history, id);
      s.history.push(masked);
      if (s.history.length > this.W - 1) s.history.shift();
      if (this.countWeight > 0) {
        const c = (s.counts ??= {});
        c[masked] = (c[masked] ?? 0) + 1;
      }
      // Events keep (s.lines, end) rather than a copy of the window per line (see OpenSession.lines).
      this.addLine(this.keyer, key, s, l, ts);
      this.out.push(new ModelEvent(l.seq, l.lineNo, l.offset, key, false, undefined, s.lines, s.lines.length, this.windowLines, window, this));
    }
  }

  protected override endScored(c: ClosedSession): boolean {
    return !this.censorEnds || sessionEnded(c.reason, this.idleTimeoutMs, c.lastTs);
  }

  /** An evicted or censored session (censorEnds): its end event without a score (-Infinity; see finish). */
  protected override endedUnscored(key: string, s: OpenState, endReason: EndReason): void {
    this.recent?.end(key);
    const e = new ModelEvent(s.seq, s.lineNo, s.offset, key, true, endReason, s.lines, s.lines.length, this.windowLines, this.window(s.history, END_MESSAGE), this);
    e.score = -Infinity;
    e.predicted = null;
    e.unscored = true;
    this.out.push(e);
  }

  /** A session ended: its end event, the window of its last messages and END_MESSAGE. */
  protected ended(key: string, s: OpenState, endReason: EndReason): void {
    this.recent?.end(key);
    const e = new ModelEvent(s.seq, s.lineNo, s.offset, key, true, endReason, s.lines, s.lines.length, this.windowLines, this.window(s.history, END_MESSAGE), this);
    // As scoreSessions does in batch: the count relations' surprise goes on the end event.
    if (this.countWeight > 0 && s.counts) {
      const ids: number[] = [];
      for (const [m, n] of Object.entries(s.counts)) for (let i = 0; i < n; i++) ids.push(this.model.messageId(m));
      e.extra = this.countWeight * this.model.countSurprise(ids);
    }
    this.out.push(e);
  }

  /**
   * Scores the windows collected since the last call and hands the events out: each distinct window not
   * scored before goes through the detector, all of them in one batched call. A window's score depends on
   * its W ids only (the model is fixed, a message's vector never changes once computed), and on HDFS-like
   * logs most windows repeat, so most lines skip the detector (the profile was ~70% BiLSTM + scoring).
   */
  private finish(): ScoredEvent[] {
    const batch = this.out;
    this.out = [];
    const W = this.W;
    const cache = this.scoreCache;
    const fresh = new Map<string, number>(); // window key -> row of the detector call
    const rows = new Int32Array(batch.length).fill(-1);
    const keys: string[] = [];
    this.last = batch;
    for (let i = 0; i < batch.length; i++) {
      const e = batch[i];
      if (e.unscored) continue;
      const key = e.ids.join(',');
      e.key = key;
      const known = cache.get(key);
      if (known !== undefined) {
        e.score = known;
        continue;
      }
      let r = fresh.get(key);
      if (r === undefined) {
        r = keys.length;
        fresh.set(key, r);
        keys.push(key);
      }
      rows[i] = r;
    }
    if (keys.length > 0) {
      const all = new Int32Array(keys.length * W);
      for (let i = 0; i < batch.length; i++) if (rows[i] >= 0) all.set(batch[i].ids, rows[i] * W);
      const { scores } = this.model.scoreWindows(all, keys.length, false);
      for (let i = 0; i < batch.length; i++) if (rows[i] >= 0) batch[i].score = scores[rows[i]];
      if (cache.size + keys.length > SCORE_CACHE_MAX) cache.clear();
      keys.forEach((k, r) => cache.set(k, scores[r]));
    }
    for (const e of batch) if (e.extra !== 0) e.score = Math.fround(e.score + e.extra);
    return batch;
  }

  /**
   * Window and expected message of events of the last call, by index: the windows not predicted before go
   * through one batched prediction (per event, the prediction and its setup cost ~1 ms: a third of the
   * monitor's time on hdfs-dev with an adaptive threshold alerting a few hundred times).
   */
  async context(indices: number[]): Promise<EventContext[]> {
    const events = indices.map((i) => {
      const e = this.last[i];
      if (e === undefined) throw new DeepSentryError('DS_OUT_OF_RANGE', `no event ${i} in the last scorer result (${this.last.length} events)`);
      return e;
    });
    this.predictExpected(events);
    return events.map((e) => (e.predicted === undefined || e.predicted === null ? { window: e.window } : { window: e.window, expected: e.predicted }));
  }

  /** Sets `predicted` of these events: windows not predicted before in one batched prediction. */
  predictExpected(events: ModelEvent[]): void {
    const todo = new Map<string, ModelEvent[]>();
    for (const e of events) {
      if (e.predicted !== undefined) continue;
      const key = e.key || e.ids.join(',');
      const known = this.expectedCache.get(key);
      if (known !== undefined) {
        e.predicted = known;
        continue;
      }
      const group = todo.get(key);
      if (group === undefined) todo.set(key, [e]);
      else group.push(e);
    }
    if (todo.size === 0) return;
    const groups = [...todo.values()];
    const all = new Int32Array(groups.length * this.W);
    groups.forEach((g, i) => all.set(g[0].ids, i * this.W));
    const { expected } = this.model.scoreWindows(all, groups.length, true);
    if (this.expectedCache.size + groups.length > SCORE_CACHE_MAX) this.expectedCache.clear();
    [...todo.keys()].forEach((key, i) => {
      const x = expected[i] ?? null;
      this.expectedCache.set(key, x);
      for (const e of groups[i]) e.predicted = x;
    });
  }

  async tick(nowMs: number): Promise<ScoredEvent[]> {
    this.advanceIdle(nowMs);
    return this.finish();
  }

  async flush(): Promise<ScoredEvent[]> {
    this.endAll();
    return this.finish();
  }

  /** The history is appended to and shifted in place: a snapshot takes a copy. */
  protected override snapshotSession(s: OpenState): OpenState {
    return { ...super.snapshotSession(s), history: s.history.slice(), ...(s.counts ? { counts: { ...s.counts } } : {}) };
  }

  async snapshot(): Promise<ModelScorerSnapshot> {
    return {
      kind: 'model',
      modelHash: this.model.dataHash,
      ...this.snapshotSessions(),
    };
  }

  async restore(state: unknown): Promise<void> {
    const s = state as ModelScorerSnapshot;
    if (typeof s !== 'object' || s === null || s.kind !== 'model' || !Array.isArray(s.sessions)) {
      throw new DeepSentryError('DS_CONFIG', 'the checkpointed scorer state is not a model scorer state');
    }
    if (s.modelHash !== this.model.dataHash) throw new DeepSentryError('DS_CONFIG', 'the checkpoint was written with a different model (training data hash differs)');
    this.restoreSessions(s);
    this.recent?.restored(this.sessions.keys());
    this.out = [];
    this.last = [];
  }

  /** The model's version: 1 as trained, +1 per feedback (lib/pipeline/feedback.ts lineageOf). */
  get modelVersion(): number {
    return lineageOf(this.model).version;
  }

  /**
   * Learns `req.sessions` (scored recently) as normal on a copy of the model (learnRecent), saved to the
   * model's directory when it has one; this scorer keeps scoring with its model until `swapModel`.
   */
  async feedback(req: FeedbackRequest): Promise<FeedbackSummary> {
    if (this.recent === null) throw new DeepSentryError('DS_UNSUPPORTED', 'this scorer keeps no recent sessions (feedbackSessions is 0): nothing to learn from');
    if (this.pending !== null) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'a feedback is waiting to be swapped in: call swapModel first');
    const { model, summary } = await learnRecent(this.model, this.recent, req);
    this.pending = model;
    return summary;
  }

  /**
   * Puts the model of the last `feedback` in place of the current one, between two calls: open sessions keep
   * their state (their history is message texts), only the window caches start over. Returns the version now scoring.
   */
  async swapModel(): Promise<number> {
    const next = this.pending;
    if (next === null) throw new DeepSentryError('DS_INVALID_ARGUMENT', 'no feedback is waiting to be swapped in');
    if (next.detector.config.window !== this.W) throw new DeepSentryError('DS_MODEL', `the new model's window (${next.detector.config.window}) is not the scorer's (${this.W})`);
    this.pending = null;
    const old = this.model;
    this.model = next;
    this.countWeight = next.countModel ? next.config.scoring.counts : 0;
    this.scoreCache.clear();
    this.expectedCache.clear();
    this.last = [];
    old.dispose();
    return this.modelVersion;
  }

  async close(): Promise<void> {
    this.sessions.clear();
    this.pending?.dispose();
    this.model.dispose();
  }
}

/** The ScorerFactory of lib/live for trained models: loads the model directory and wraps it. */
export async function createModelScorer(modelDir: string, options: ModelScorerOptions = {}): Promise<ModelScorer> {
  const model = await DeepSentry.load(modelDir, pickLoadOptions(options));
  return new ModelScorer(model, options);
}
