/**
 * SessionScorer: the session bookkeeping of a live LineScorer, written once for every scorer that keeps its
 * open sessions in lib/logs' Sessionizer (NoveltyScorer in lib/live/novelty.ts, the trained model's
 * ModelScorer in model_scorer.ts). What a scorer learns and how it scores differ; this part must not:
 * the monitor's exact restarts rely on every scorer ending the same sessions at the same lines, and on a
 * snapshot/restore rebuilding its idle deadlines and eviction order exactly. So it lives here:
 *
 * - a line's way into a record: parsed by lib/logs/pipeline.ts parseLogLine, the function batch reading
 *   uses, so unparsed lines, bad timestamps and out-of-order lines are counted (and reported to an IssueLog
 *   when given) the same way in batch and live, and logs.outOfOrder `skip` holds in both;
 * - the Sessionizer (idle timeout, bound on open sessions, count windows) and the scorer's open sessions in the same
 *   least-recently-active order, with each session's last raw lines for event windows;
 * - the session clock: the lines' own timestamps (event time, so a replay after a restart ends the same
 *   sessions at the same lines); once the stream has been quiet for a whole idle timeout, `tick` moves it on
 *   by the wall time elapsed since the last batch, so idle sessions still end when nothing more arrives;
 * - the counters of `stats()` (open, evicted across restarts, unparsed lines);
 * - the session half of the JSON state, and rebuilding the Sessionizer from it.
 *
 * A subclass parses with its own format, scores a line between `session()` and `addLine()`, and turns an
 * ended session into its end event in `ended()`.
 */
import type { LogFormat, ParsedLine } from '../logs/formats';
import type { IssueLog } from '../logs/issues';
import { isBlank } from '../logs/lines';
import { parseLogLine, type ParseStats } from '../logs/pipeline';
import { DeepSentryError } from '../errors';
import type { LogConfig } from '../logs/config';
import { SessionKeyer, Sessionizer, type ClosedSession } from '../logs/sessions';
import type { EndReason, RawLine, ScorerStats } from './types';

/**
 * The session keyer of the live scorer for a model's log configuration: sessions by key (`auto` is `key`),
 * field or time. Count windows have no key to follow a session by, so they are refused. The publisher of a
 * partitioned stream (lib/scale/publisher.ts) keys lines with it too, so a session's lines meet in one partition.
 */
export function liveSessionKeyer(c: LogConfig, countWindows = false): SessionKeyer {
  const mode = c.session.mode === 'auto' ? 'key' : c.session.mode;
  if (mode === 'count' && !countWindows) {
    throw new DeepSentryError('DS_UNSUPPORTED', `the model's sessions are count windows; the live scorer needs sessions by key, field or time (set logs.session.mode when training)`);
  }
  return new SessionKeyer(mode, c.session);
}

/** What every session scorer keeps of one open session; a scorer extends it with its own state (previous message, history). */
export interface OpenSession {
  /**
   * Raw lines, oldest first: append-only, and replaced by its last windowLines−1 entries once it holds twice
   * windowLines, so events can keep a reference and an end index into it instead of a copy of their window.
   */
  lines: string[];
  /** The session's last line (an end event names it): its seq, line number and byte offset. */
  seq: number;
  lineNo: number;
  offset: number;
  /** Sessionizer clock when the last line was added (restore re-adds the session at it: same idle deadline). */
  clock: number | null;
  /** Time-window end (session mode `time`). */
  deadline?: number;
}

/** The session half of a session scorer's JSON state (see SessionScorer.snapshotSessions). */
export interface SessionsSnapshot<S extends OpenSession> {
  /** Latest line timestamp seen (the event-time clock), null before the first. */
  lastTs: number | null;
  /** Sessionizer clock (null: never advanced). */
  clock: number | null;
  /** Open sessions, least recently active first. */
  sessions: [string, S][];
  /** Sessions evicted so far, across restarts. */
  evicted: number;
  /** Lines that could not be parsed so far. */
  unparsed: number;
}

/** How a session scorer reads lines apart from its sessions' timing (all optional). */
export interface SessionScorerOptions {
  /** Skip a line whose timestamp is earlier than one seen before (logs.outOfOrder `skip`); default: keep it. */
  skipOutOfOrder?: boolean;
  /** Sessions are count windows of this many lines (the Sessionizer closes a window when it is full). */
  maxLines?: number | null;
  /**
   * Where bad lines are reported (unparsed, bad timestamp, out of order), as batch reading reports them; in
   * this thread only. Default: only counted.
   */
  issues?: IssueLog;
  /** The input's name in those reports (default `<stream>`). */
  source?: string;
}

/** The live end reason of a Sessionizer close reason (`end` is the end of input: a flush). */
function endReasonOf(reason: ClosedSession['reason']): EndReason {
  return reason === 'evicted' ? 'evicted' : reason === 'end' ? 'flush' : reason === 'window' ? 'window' : 'idle';
}

export abstract class SessionScorer<S extends OpenSession> {
  /**
   * Open sessions by key (the Sessionizer holds their least-recently-active order: Sessionizer.openKeys).
   */
  protected sessions = new Map<string, S>();
  /** the most recently active session and its key, or null: see `session` */
  private newest: S | null = null;
  /** `newest`'s key (two fields rather than an object made at nearly every line: lines of sessions interleave) */
  private newestKey = '';
  private sessionizer: Sessionizer;
  private lastTs: number | null = null;
  /**
   * Wall time of the last batch of lines (read only once lines came, which set it). A wall-clock number from the
   * start: set to 0 first, the field changed representation at the first batch, and V8 threw away the scorer's
   * optimised code.
   */
  private wallAtLastLine = Date.now();
  /** Lines not scored before the last restore (the counters below start from 0 at a restore). */
  private unparsedBase = 0;
  /** lib/logs' parse counters: lines parsed, not parsed, with a bad timestamp, out of order. */
  readonly parseStats: ParseStats = { candidates: 0, unparsed: 0, badTimestamp: 0, outOfOrder: 0 };
  /** Lines parsed and scored since this scorer was built or restored. */
  parsedLines = 0;
  private readonly skipOutOfOrder: boolean;
  private readonly maxLines: number | null;
  private readonly issues: IssueLog | null;
  private readonly source: string;
  /** Evictions before the last restore (the rebuilt Sessionizer counts from 0). */
  private evictedBase = 0;

  /**
   * @param windowLines raw lines kept per event as its window (0: none, for a caller that never reads windows)
   * @param idleTimeoutMs close a session after this long without a line (null: only at end of input)
   * @param maxOpen at most this many open sessions (the least recently active is evicted)
   */
  constructor(
    protected readonly windowLines: number,
    protected readonly idleTimeoutMs: number | null,
    protected readonly maxOpen: number,
    opts: SessionScorerOptions = {},
  ) {
    this.skipOutOfOrder = opts.skipOutOfOrder === true;
    this.maxLines = opts.maxLines ?? null;
    this.issues = opts.issues ?? null;
    this.source = opts.source ?? '<stream>';
    this.sessionizer = this.newSessionizer();
  }

  private newSessionizer(): Sessionizer {
    return new Sessionizer({ idleTimeoutMs: this.idleTimeoutMs, maxOpen: this.maxOpen, maxLines: this.maxLines }, (c) => this.closed(c));
  }

  /** Lines not scored so far: not parsed, a bad timestamp, or out of order when such lines are skipped. */
  private get unparsed(): number {
    const p = this.parseStats;
    return this.unparsedBase + p.unparsed + p.badTimestamp + (this.skipOutOfOrder ? p.outOfOrder : 0);
  }

  stats(): ScorerStats {
    return { openSessions: this.sessionizer.openCount, evictedSessions: this.evictedBase + this.sessionizer.stats.evicted, unparsedLines: this.unparsed };
  }

  /** Scores one line (called in input order); see `parseLine`, `session` and `addLine`. */
  protected abstract scoreLine(l: RawLine): void;

  /** Turns a session that ended (already removed from `sessions`) into the scorer's end event; `c` is the Sessionizer's record of it. */
  protected abstract ended(key: string, s: S, reason: EndReason, c: ClosedSession): void;

  /** Scores a batch of lines in order, then notes when it arrived (once per batch: its lines arrived together). */
  protected addLines(lines: RawLine[]): void {
    for (const l of lines) {
      if (l.clock !== undefined) this.advanceClock(l.clock);
      this.scoreLine(l);
    }
    this.linesArrived();
  }

  /** Notes when a batch of lines arrived (once per batch: its lines arrived together). */
  protected linesArrived(): void {
    this.wallAtLastLine = Date.now();
  }

  /**
   * Parses a line as batch reading does (lib/logs/pipeline.ts parseLogLine), and moves the session clock to
   * its timestamp (never backwards). Null for a blank line (skipped) or one the format cannot parse, whose
   * timestamp is bad, or that is out of order and such lines are skipped (counted in `unparsedLines`, never
   * given a fake score).
   */
  protected parseLine(format: LogFormat, l: RawLine): ParsedLine | null {
    const p = this.parseText(format, l);
    if (p !== null) this.lineParsed(p.timestamp);
    return p;
  }

  /** parseLine without counting the line or moving the clock: the caller then calls lineParsed or lineSetAside. */
  protected parseText(format: LogFormat, l: RawLine): ParsedLine | null {
    if (isBlank(l.text)) return null;
    return parseLogLine(format, l.text, this.source, l.lineNo, this.lastTs ?? -Infinity, this.skipOutOfOrder, this.issues, this.parseStats);
  }

  /**
   * A line parsed (here by parseLine, or in another thread with the same policy): counts it, and moves the
   * session clock to its timestamp.
   */
  protected lineParsed(ts: number | null): void {
    this.parsedLines++;
    if (ts !== null) this.advanceClock(ts);
  }

  /**
   * A line parsed and set aside (ModelScorer's setAside): counted, and its timestamp is the latest seen (the
   * out-of-order reference, as a parser in another thread sees every parsed line), but the sessions' clock does
   * not move: no session ends on it.
   */
  protected lineSetAside(ts: number | null): void {
    this.parsedLines++;
    if (ts !== null && (this.lastTs === null || ts > this.lastTs)) this.lastTs = ts;
  }

  /** Moves the event-time clock to `ts` (never backwards), ending the sessions idle by then. */
  private advanceClock(ts: number): void {
    if (this.lastTs === null || ts >= this.lastTs) {
      this.lastTs = ts;
      this.sessionizer.advance(ts);
      this.clockMoved(this.sessionizer.clock);
    }
  }

  /**
   * The session clock moved to `now` (after the sessions idle by then ended): a scorer with deadlines of its
   * own (the model scorer's count horizon) acts on them here.
   */
  protected clockMoved(_now: number): void {}

  /** Every open session ended (end of input, after their end events): a scorer closes what it kept after them. */
  protected allEnded(): void {}

  /**
   * The open session `key` (or `fresh()` for a new one, which `addLine` adds). The scorer scores the line
   * against it, then adds the line (`addLine`).
   */
  protected session(key: string, fresh: () => S): S {
    // Consecutive lines of one session are the common case: no lookup.
    if (this.newest !== null && this.newestKey === key) return this.newest;
    return this.sessions.get(key) ?? fresh();
  }

  /**
   * Adds line `l` to session `key` (from `session`): its raw line, its place, and the Sessionizer, which may
   * first evict the least recently active session (its end event then comes before this line's).
   * `deadline` is the end of the line's time window (sessions by time: SessionKeyer.windowEnd), else undefined.
   */
  protected addLine(key: string, s: S, l: RawLine, ts: number | null, deadline: number | undefined): void {
    if (this.windowLines > 0) {
      if (s.lines.length >= 2 * this.windowLines) s.lines = s.lines.slice(s.lines.length - (this.windowLines - 1));
      s.lines.push(l.text);
    }
    s.seq = l.seq;
    s.lineNo = l.lineNo;
    s.offset = l.offset;
    // (newest tested against null first: null is rare here — the newest session closed — and comparing it
    // with a session where V8 had only seen two sessions compared threw the optimised code away)
    if (this.newest === null || this.newest !== s) {
      this.sessions.set(key, s);
      this.newest = s;
      this.newestKey = key;
    }
    if (deadline !== undefined) s.deadline = deadline;
    this.sessionizer.add(key, l.seq, 0, ts, deadline);
    s.clock = this.clock();
  }

  /**
   * Whether a closed session's end is scored as an event. The live monitor scores every end (default); a
   * scorer that must agree with batch scoring (`deepsentry score`, the in-process API) overrides it with
   * lib/logs' sessionEnded: no end event for an evicted session, nor for one still open at the end of input
   * when sessions have an idle timeout (censored).
   */
  protected endScored(_c: ClosedSession): boolean {
    return true;
  }

  /** Sessionizer callback: a session closed (idle, evicted, end of input, time window). */
  private closed(c: ClosedSession): void {
    const s = this.sessions.get(c.key);
    if (s === undefined) return;
    this.sessions.delete(c.key);
    if (this.newest !== null && this.newest === s) this.newest = null; // null tested first, as in addLine
    if (this.endScored(c)) this.ended(c.key, s, endReasonOf(c.reason), c);
    else this.endedUnscored(c.key, s, endReasonOf(c.reason), c);
  }

  /** A session ended whose end is not scored (see endScored): the scorer may say so; default nothing. */
  protected endedUnscored(_key: string, _s: S, _reason: EndReason, _c: ClosedSession): void {}

  /**
   * Wall-clock time is `nowMs` and no line came: ends the sessions that are idle by then. Only a stream that
   * has been quiet for a whole idle timeout moves the clock by wall time: while lines flow, their timestamps
   * alone drive it, so a replay (a restart) ends the same sessions at the same lines.
   */
  protected advanceIdle(nowMs: number): void {
    if (this.lastTs === null) {
      // No timestamp seen yet: wall time is the clock of lines without one. With no session open there is
      // nothing to end, and moving the clock now would put it ahead of a log whose times lag the wall clock (a
      // monitor started on a quiet file, a replayed log): the clock never goes back, so none of its sessions
      // would end by idleness again.
      if (this.sessions.size === 0) return;
      this.sessionizer.advance(nowMs);
    } else {
      const quiet = nowMs - this.wallAtLastLine;
      if (this.idleTimeoutMs !== null && quiet >= this.idleTimeoutMs) this.sessionizer.advance(this.lastTs + quiet);
      else return;
    }
    this.clockMoved(this.sessionizer.clock);
  }

  /** Ends every open session (end of input). */
  protected endAll(): void {
    this.sessionizer.flush();
    this.allEnded();
  }

  private clock(): number | null {
    return Number.isFinite(this.sessionizer.clock) ? this.sessionizer.clock : null;
  }

  /** A session as it goes into a snapshot: only its last windowLines lines. A scorer copies its own mutable parts too. */
  protected snapshotSession(s: S): S {
    return { ...s, lines: s.lines.slice(Math.max(0, s.lines.length - this.windowLines)) };
  }

  /** The session half of the scorer's JSON state. */
  protected snapshotSessions(): SessionsSnapshot<S> {
    return {
      lastTs: this.lastTs,
      clock: this.clock(),
      sessions: [...this.sessionizer.openKeys()].map((k) => [k, this.snapshotSession(this.sessions.get(k) as S)]),
      evicted: this.stats().evictedSessions,
      unparsed: this.unparsed,
    };
  }

  /**
   * Restores the session half of a state (the scorer has checked its kind). Rebuilds the Sessionizer: each
   * open session is re-added in least-recently-active order at the clock of its last line, so idle deadlines
   * and the eviction order are as they were.
   */
  protected restoreSessions(s: SessionsSnapshot<S>): void {
    this.lastTs = s.lastTs;
    this.wallAtLastLine = Date.now();
    this.unparsedBase = (s.unparsed ?? 0) - (this.unparsed - this.unparsedBase);
    this.sessionizer = this.newSessionizer();
    this.sessions = new Map();
    this.newest = null;
    for (const [key, st] of s.sessions) {
      if (st.clock !== null) this.sessionizer.advance(st.clock);
      this.sessions.set(key, st);
      this.sessionizer.add(key, st.seq, 0, null, st.deadline);
    }
    if (s.clock !== null) this.sessionizer.advance(s.clock);
    this.evictedBase = (s.evicted ?? 0) - this.sessionizer.stats.evicted;
  }
}
