/**
 * The seam between the live monitor and whatever scores lines.
 *
 * The monitor (lib/live/monitor.ts) owns everything that does not depend on how a line is scored: reading
 * sources, batching, thresholds, alerts, metrics, checkpoints. A `LineScorer` owns the rest: parsing,
 * masking, sessions (their idle timeout and the bound on open sessions) and the score itself. The trained
 * model's engine implements this interface; so does the simple `NoveltyScorer` (lib/live/novelty.ts) that
 * needs no model.
 *
 * Contract, which the monitor relies on for "no loss, no duplicate" restarts:
 * - calls never overlap: the monitor awaits each call before making the next;
 * - `scoreLines` sees lines in input order and returns events in the order they happened;
 * - scoring is a pure function of (state, lines): the same snapshot fed the same lines gives the same events,
 *   however the lines are cut into batches, so replaying lines after a restart reproduces the same alerts;
 * - every event names the `seq` of an input line (for a session end: the session's last line), so that
 *   (seq, session, isSessionEnd) identifies an event across restarts.
 */
import type { FeedbackSummary } from '../pipeline/feedback';

/** One raw input line as handed to a scorer. */
export interface RawLine {
  /** The monitor's running line number across the whole run (restored from a checkpoint): unique per line. */
  seq: number;
  /** 1-based line number in its source (the current file for `--follow`). */
  lineNo: number;
  /** Byte offset of the line's start in its source. */
  offset: number;
  /** The line, without its newline. */
  text: string;
  /**
   * Event time of the whole stream at this line (ms), when the line comes from one partition of a stream cut
   * by session key (lib/scale): the latest timestamp the publisher had seen on any partition. The scorer moves
   * its session clock to it before the line, so sessions end idle exactly when they would in one process.
   */
  clock?: number;
}

/** Why a session ended; see ScoredEvent.endReason. */
export type EndReason = 'idle' | 'evicted' | 'flush' | 'window' | 'counts';

/** One scored event: a line inside a session, or the end of a session. */
export interface ScoredEvent {
  /** `seq` of the line this event is about (for a session end: the session's last line). */
  seq: number;
  /** That line's number and byte offset in its source. */
  lineNo: number;
  offset: number;
  /** Session key (e.g. an HDFS block id). A line naming several sessions gives one event per session. */
  session: string;
  /**
   * Anomaly score: higher is more anomalous. Compared with the threshold by the monitor. -Infinity on an end
   * event whose end is not scored (only from a model scorer with `censorEnds`, which the in-process API uses).
   */
  score: number;
  /** True for the event that closes a session (idle timeout, eviction, end of input). */
  isSessionEnd: boolean;
  /**
   * Why a session ended (only on end events): `idle` timeout, `evicted` (too many sessions were open),
   * `flush` (end of input), `window` (a time window closed); `counts`: not a session's end but its key's, once
   * quiet for the count horizon — the count relations' judgement of the key's sessions counted together
   * (lib/models/counts.ts countHorizon; emitted only when a relation is broken, after those sessions' own ends).
   */
  endReason?: EndReason;
  /** The lines that led to this event, oldest first, the event's own line last (raw text). */
  window: string[];
  /** What the scorer expected instead: the nearest known message to its prediction, when it has one. */
  expected?: string;
}

/** Counters a scorer keeps about its sessions and input; exported as metrics. */
export interface ScorerStats {
  /** Sessions open now. */
  openSessions: number;
  /** Sessions closed early because the bound on open sessions was reached. */
  evictedSessions: number;
  /**
   * Lines not scored: not parsed, a missing or bad timestamp, or out of order when logs.outOfOrder is `skip`
   * (counted, skipped, never given a fake score; lib/logs/pipeline.ts parseLogLine, as in batch scoring).
   * Lines the splitter drops (invalid UTF-8, NUL byte, over-long: lib/logs/lines.ts) never reach the scorer.
   */
  unparsedLines: number;
}

/**
 * Scores raw log lines. May be asynchronous and should keep heavy work off the caller's event loop (native
 * async calls, or run it in a worker with `WorkerScorer`).
 */
export interface LineScorer {
  /** Short name for logs and metrics, e.g. `novelty` or `bilstm`. */
  readonly name: string;
  /** The threshold saved with the model, if any: the live threshold's floor. */
  readonly savedThreshold?: number;
  /** Scores a batch of lines (in input order); returns the events they cause, in order. */
  scoreLines(lines: RawLine[]): Promise<ScoredEvent[]>;
  /**
   * Tells the scorer that wall-clock time is now `nowMs` with no new line: sessions idle for longer than the
   * idle timeout end and their end events are returned.
   */
  tick(nowMs: number): Promise<ScoredEvent[]>;
  /** Ends every open session (finite input is over); returns their end events. */
  flush(): Promise<ScoredEvent[]>;
  /** Current counters (cheap, synchronous: read by /metrics). */
  stats(): ScorerStats;
  /** JSON-serialisable state (open sessions, learned statistics) for a checkpoint. */
  snapshot(): Promise<unknown>;
  /** Restores a state from `snapshot()`. Throws DS_CONFIG if it does not fit this scorer. */
  restore(state: unknown): Promise<void>;
  /** Releases resources (a worker, native memory). */
  close(): Promise<void>;
  /**
   * Optional, for scorers whose events are expensive to move (a worker thread): when present, the events of
   * the last scoreLines/tick/flush call may come with an empty `window` and no `expected`, and the monitor
   * asks for them only for the events it alerts on, by their index in that call's result, before its next
   * call.
   */
  context?(indices: number[]): Promise<EventContext[]>;
  /**
   * Optional, for a scorer that can get lines ready while it scores others (a worker thread: pack, hand over and
   * decode): `lines` are what its next scoreLines call will most likely be given (the same RawLine objects, in
   * order). Nothing is scored before that call; a call with other lines is answered as if prepare had not been
   * called. A scorer with `prepare` answers calls in the order they are made: the monitor may make its next
   * scoreLines call while its `context` call about the last one is still pending.
   */
  prepare?(lines: RawLine[]): void;
  /** The model's version, for a scorer whose model learns from feedback (1 as trained, +1 per feedback). */
  readonly modelVersion?: number;
  /**
   * Optional: the most lines per call this scorer is best fed with, when the monitor is not told (its
   * `maxBatchLines`; otherwise 4096).
   */
  readonly batchLines?: number;
  /**
   * Optional, for a scorer whose model learns from feedback (the trained model's): learns sessions it scored
   * recently as normal, on a copy of its model (saved as a new version when the model came from a directory),
   * while it goes on scoring with the model it has; may run while other calls are made. The copy scores from
   * `swapModel()` on, which the monitor calls between two batches.
   */
  feedback?(req: FeedbackRequest): Promise<FeedbackSummary>;
  /** Puts the model of the last `feedback` in place (open sessions kept); returns its version. */
  swapModel?(): Promise<number>;
}

/** What a LineScorer's `feedback` learns (lib/pipeline/feedback.ts learnRecent). */
export interface FeedbackRequest {
  /** session keys to learn as normal */
  sessions: string[];
  /** where the marks came from, e.g. `POST /feedback` (recorded in the model's lineage) */
  source?: string;
  /** the input the sessions were read from (the monitor's source) */
  from: string;
}

/** The context of one event, fetched on demand (see LineScorer.context). */
export interface EventContext {
  window: string[];
  expected?: string;
  /** a `counts` end: the count relation its key's sessions break most (as sessions.csv's `reason` gives it) */
  countRelation?: string;
}

/** Options every scorer factory understands; a factory may take more. */
export interface ScorerOptions {
  /** Close a session after this long without a line (ms). Default 30 s; null = only at end of input. */
  idleTimeoutMs?: number | null;
  /** At most this many open sessions; the least recently active is evicted (and scored as ended). */
  maxOpenSessions?: number;
  /** Raw lines kept per event as its context window. */
  windowLines?: number;
}

/**
 * Builds the scorer for a model directory. The CLI calls the one registered in lib/live/engine.ts; a service
 * may pass its own.
 */
export type ScorerFactory = (modelDir: string, options: ScorerOptions) => Promise<LineScorer>;

/** An event judged against the live threshold. */
export interface JudgedEvent extends ScoredEvent {
  /** The threshold the score was compared with. */
  threshold: number;
  anomaly: boolean;
}

/** An alert: an anomalous event with everything an operator needs to look at it. */
export interface Alert {
  /** Stable across restarts: `${seq}:${session}`, `${seq}:end:${session}` or `${seq}:counts:${session}`; webhook receivers dedupe on it. */
  id: string;
  /** Wall-clock time the alert was raised (ISO 8601). */
  time: string;
  /** Where the line came from: a file path, `stdin` or `http`. */
  source: string;
  seq: number;
  lineNo: number;
  offset: number;
  session: string;
  score: number;
  threshold: number;
  isSessionEnd: boolean;
  endReason?: EndReason;
  /** The raw line (the session's last line for an end event). */
  line: string;
  window: string[];
  expected?: string;
  /** endReason `counts`: the count relation the key's sessions break most */
  countRelation?: string;
}

/** Builds the stable id of an event. */
export function eventId(e: Pick<ScoredEvent, 'seq' | 'session' | 'isSessionEnd' | 'endReason'>): string {
  // A key's count judgement comes after its last session's end, at the same last line: its own id.
  return e.isSessionEnd ? `${e.seq}:${e.endReason === 'counts' ? 'counts' : 'end'}:${e.session}` : `${e.seq}:${e.session}`;
}

/** Fills alerts' window, line and expected message from their events' contexts (LineScorer.context), in order. */
export function applyContext(alerts: Alert[], ctx: EventContext[]): void {
  alerts.forEach((a, k) => {
    const c = ctx[k]!;
    a.window = c.window;
    a.line = c.window[c.window.length - 1] ?? '';
    if (c.expected !== undefined) a.expected = c.expected;
    if (c.countRelation !== undefined) a.countRelation = c.countRelation;
  });
}
